"""TensorBoard event files as a run: a person's own training (diffusers' examples log through accelerate's
TensorBoard tracker, i.e. `torch.utils.tensorboard.SummaryWriter`) shown beside the bundled runs.

Layout read: a folder holding files named `events.out.tfevents.*`, directly or in subfolders at most two levels
down (accelerate writes `<output_dir>/logs/<project>/events...`, and `add_hparams` one more folder below that).
Every file is read with TensorBoard's own reader (`EventAccumulator`); nothing here parses records or protobufs.

What becomes of what was logged:

- Scalars: every tag is a metric, named as written ("train/loss"). One record per step holds "step", "seconds"
  (the step's wall time minus the run's first scalar wall time, as our own logs count) and each tag's value at
  that step. When event files lie in several folders, each tag is prefixed with its folder's path below the
  folder they all share ("eval/loss" from `eval/events...`), so two writers' tags never merge. A tag named
  "step" or "seconds" is kept as "step (logged)" / "seconds (logged)" (diffusers' examples log "step" too).
  The page opens on "loss": when no tag is called "loss" and exactly one ends in "/loss", a "loss" column
  repeats it.
- Images: the first tag that holds images (in file order) becomes the sample grids over steps, each kept as
  its encoded PNG/JPEG bytes; other image tags are named in a note.
- Hyper-parameters written by `add_hparams` (accelerate's `init_trackers(config=...)`) land in config["hparams"].
- Several event files in one folder (a resumed run) are merged in name order, which is their creation order;
  as TensorBoard does after a restart, a later file's first step drops the earlier files' points from that
  step on, in every tag of that folder.

Limits, each noted when hit: ATLAS_MAX_LOG_SCALARS scalar points (core/limits.py; thinned to every k-th
step, the last step kept; the "loss" alias not counted), ATLAS_MAX_LOG_IMAGES images per run (spread evenly),
images of at most MAX_IMAGE_PIXELS, and the search for event files (MAX_EVENT_FILES files, MAX_ENTRIES_SCANNED
folder entries). A truncated or corrupt file gives a note and the records before the damage: TensorBoard's
reader stops there without raising and only says so in its log, so that log is listened to while reading.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from core.limits import max_log_images, max_log_scalars
from core.runs.record import Run, evenly
from core.text import plain_label

EVENT_PREFIX = "events.out.tfevents."
MAX_DEPTH = 2  # subfolders below the run folder that may hold event files
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = 2048 * 2048  # a grid this size is ~12 MB decoded; the page may animate all of them
MAX_EVENT_FILES = 100
MAX_ENTRIES_SCANNED = 10_000  # directory entries looked at while searching; a photo folder is not a run
_RESERVED = ("step", "seconds")  # the reader's own columns
_IMAGE_FORMATS = ("PNG", "JPEG")


def _walk_event_files(folder: Path, stop_at_first: bool = False) -> tuple[list[Path], bool]:
    """Regular files named `events.out.tfevents.*` in `folder` and its subfolders up to MAX_DEPTH below, in
    path order, and whether the search was cut short (over MAX_ENTRIES_SCANNED entries or MAX_EVENT_FILES
    files). Symlinks are never followed: a run's files must lie inside it (zoo/paths.py allows only some roots)."""
    found: list[Path] = []
    budget = MAX_ENTRIES_SCANNED
    level = [folder]
    for depth in range(MAX_DEPTH + 1):
        below: list[Path] = []
        for directory in level:
            try:
                with os.scandir(directory) as listing:
                    entries = sorted(itertools.islice(listing, budget + 1), key=lambda e: e.name)
            except OSError:
                continue
            budget -= len(entries)
            if budget < 0:
                return sorted(found), True
            for entry in entries:
                try:
                    if entry.is_symlink():
                        continue
                    if entry.name.startswith(EVENT_PREFIX) and entry.is_file(follow_symlinks=False):
                        if len(found) == MAX_EVENT_FILES:
                            return sorted(found), True
                        found.append(Path(entry.path))
                        if stop_at_first:
                            return found, False
                    elif depth < MAX_DEPTH and entry.is_dir(follow_symlinks=False):
                        below.append(Path(entry.path))
                except OSError:
                    continue
        level = below
    return sorted(found), False


def event_files(folder: str | Path) -> list[Path]:
    """The event files of a TensorBoard run folder (see the module's docstring), in path order."""
    return _walk_event_files(Path(folder))[0]


def is_tensorboard_folder(folder: str | Path) -> bool:
    """Whether `folder` holds TensorBoard event files, directly or at most MAX_DEPTH subfolders down."""
    folder = Path(folder)
    return folder.is_dir() and bool(_walk_event_files(folder, stop_at_first=True)[0])


def tensorboard_root(folder: str | Path) -> Path | None:
    """Where to read the TensorBoard run `folder` holds: its logs/ subfolder when that holds event files
    (accelerate's logging_dir; `add_hparams` writes one folder below the project's, within reach from logs/ but
    not from the output folder), else `folder` itself when it holds some; None when it holds none."""
    folder = Path(folder)
    for candidate in (folder / "logs", folder):
        if is_tensorboard_folder(candidate):
            return candidate
    return None


class _Collect(logging.Handler):
    """Keeps the reader's log records that mean lost data: its warnings, and the debug line it writes when it
    stops at a truncated or corrupt record ("Truncated record in PATH (...)")."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING or message.startswith("Truncated record"):
            self.messages.append(message)


_LOG_LOCK = threading.Lock()  # the reader's logger is global: one read at a time listens to it


@contextlib.contextmanager
def _reader_log() -> Iterator[_Collect]:
    """Listen to TensorBoard's logger while reading (its level raised to debug, not passed on to the root
    logger meanwhile), then put it back as it was."""
    from tensorboard.util import tb_logging

    logger = tb_logging.get_logger()
    handler = _Collect()
    with _LOG_LOCK:
        level, propagate = logger.level, logger.propagate
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        try:
            yield handler
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


def _damage_note(message: str, name: str) -> str:
    if message.startswith("Truncated record"):
        # The reader's reason ends the message: "... failed event crc32 check)" or "... has truncated record in data)".
        detail = "a corrupt record" if message.rstrip(")").endswith("crc32 check") else "a truncated record"
        return f"{name}: reading stopped at {detail}; the records before it were kept"
    return f"{name}: {plain_label(message, 160)}"


def _hparams(accumulator: Any) -> dict[str, Any]:
    """Hyper-parameters from the hparams plugin's session-start record, as plain values; {} when absent."""
    from tensorboard.plugins.hparams import metadata

    try:
        content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME)
    except KeyError:
        return {}
    values: dict[str, Any] = {}
    for tag, data in content.items():
        if tag != metadata.SESSION_START_INFO_TAG:
            continue
        info = metadata.parse_session_start_info_plugin_data(data)
        for key, value in info.hparams.items():
            kind = value.WhichOneof("kind")
            values[key] = getattr(value, kind) if kind in ("number_value", "string_value", "bool_value") else None
    return values


def _image_ok(data: bytes) -> str | None:
    """None for an encoded PNG/JPEG of a sane size; else why not (its header is read, not the pixels)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, (width, height) = img.format, img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return "not a readable PNG or JPEG"
    if fmt not in _IMAGE_FORMATS:
        return f"a {fmt} image (PNG or JPEG expected)"
    if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        return f"{width}x{height} pixels, above the limit of {MAX_IMAGE_PIXELS:,} pixels"
    return None


def _merge(
    stores: tuple[dict[str, dict[int, Any]], ...],
    owner: dict[str, str],
    folder: str,
    new: tuple[dict[str, list[tuple[int, Any]]], ...],
) -> None:
    """Add one event file's series (scalars, images: name -> points) from the event folder `folder`. As
    TensorBoard does after a restart, the file's first step drops the points that earlier files of the same
    folder hold from that step on, in every series of that folder."""
    steps = [step for series in new for points in series.values() for step, _ in points]
    if steps:
        first = min(steps)
        for store in stores:
            for name, series in store.items():
                if owner[name] == folder:
                    for step in [s for s in series if s >= first]:
                        del series[step]
    for store, series in zip(stores, new, strict=True):
        for name, points in series.items():
            owner[name] = folder
            store.setdefault(name, {}).update(points)


def _every(steps: list[int], stride: int) -> list[int]:
    """Every stride-th step from the first, the last step standing in for the final pick (so it is shown)."""
    kept = steps[::stride]
    return kept if kept[-1] == steps[-1] else [*kept[:-1], steps[-1]]


def _records(scalars: dict[str, dict[int, tuple[float, float]]], notes: list[str]) -> list[dict[str, Any]]:
    """One dict per step (step order): "step", "seconds" and each tag's value, thinned to the operator's cap."""
    steps = sorted({step for series in scalars.values() for step in series})
    if not steps:
        return []
    per_step = dict.fromkeys(steps, 0)
    for series in scalars.values():
        for step in series:
            per_step[step] += 1
    total, cap = sum(per_step.values()), max_log_scalars()
    stride = max(1, -(-total // cap))
    kept = _every(steps, stride)
    while sum(per_step[s] for s in kept) > cap:
        stride += 1
        kept = _every(steps, stride)
    if stride > 1:
        notes.append(
            f"{total:,} scalar points, more than the {cap:,} read per run: one step in every "
            f"{stride} is shown ({len(kept):,} of {len(steps):,} steps, the last one kept)"
        )
    start = min(wall for series in scalars.values() for wall, _ in series.values())
    rows: dict[int, dict[str, Any]] = {step: {"step": step, "seconds": 0.0} for step in kept}
    first_wall: dict[int, float] = {}
    for tag, series in scalars.items():
        for step, (wall, value) in series.items():
            row = rows.get(step)
            if row is None:
                continue
            row[tag] = value
            if wall < first_wall.get(step, float("inf")):
                first_wall[step] = wall
    for step, row in rows.items():
        row["seconds"] = first_wall[step] - start
    return list(rows.values())


def _metric_name(tag: str, prefix: str) -> str:
    name = f"{prefix}{tag}"
    return f"{name} (logged)" if name in _RESERVED else name


def read_tensorboard_run(folder: str | Path, source: str = "runs folder", name: str | None = None) -> Run:
    """Read a folder of TensorBoard event files into a Run (see the module's docstring for what becomes what).
    Anything missing, damaged or over a limit becomes a note, never an exception."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    folder = Path(folder)
    files, cut = _walk_event_files(folder)
    notes: list[str] = []
    if cut:
        notes.append(
            f"only {len(files)} event files were read: the search stops after {MAX_EVENT_FILES} files or "
            f"{MAX_ENTRIES_SCANNED:,} folder entries"
        )
    if not files:
        notes.append("no TensorBoard event files (events.out.tfevents.*) here")
    # Event folders below the one that holds them all give their tags a prefix: their path below it.
    base = Path(os.path.commonpath([f.parent for f in files])) if files else folder
    most_images = max_log_images()
    guidance = {ea.SCALARS: 0, ea.IMAGES: most_images + 1, ea.TENSORS: 1, ea.AUDIO: 1}
    guidance |= {ea.HISTOGRAMS: 1, ea.COMPRESSED_HISTOGRAMS: 1}
    scalars: dict[str, dict[int, tuple[float, float]]] = {}
    images: dict[str, dict[int, bytes]] = {}
    owner: dict[str, str] = {}  # series name -> the event folder (prefix) it came from
    hparams: dict[str, Any] = {}
    other_tags: set[str] = set()
    for path in files:
        shown = plain_label(path.relative_to(folder).as_posix(), 80)
        sub = path.parent.relative_to(base).as_posix()
        prefix = "" if sub == "." else f"{sub}/"
        accumulator = ea.EventAccumulator(str(path), size_guidance=guidance)
        with _reader_log() as log:
            try:
                accumulator.Reload()
            except Exception as e:  # a record that passes its checksum but is no Event, an I/O error mid-file:
                # what was read before stays, the rest of this file is lost, the page goes on
                notes.append(f"{shown}: reading stopped ({e.__class__.__name__}); the records before it were kept")
        notes += [_damage_note(m, shown) for m in log.messages]
        tags = accumulator.Tags()
        new_scalars = {
            _metric_name(tag, prefix): [(e.step, (e.wall_time, e.value)) for e in accumulator.Scalars(tag)]
            for tag in tags.get(ea.SCALARS, [])
        }
        new_images = {
            f"{prefix}{tag}": [(e.step, e.encoded_image_string) for e in accumulator.Images(tag)]
            for tag in tags.get(ea.IMAGES, [])
        }
        _merge((scalars, images), owner, prefix, (new_scalars, new_images))
        for kind in (ea.TENSORS, ea.HISTOGRAMS, ea.AUDIO):
            other_tags.update(f"{prefix}{tag}" for tag in tags.get(kind, []))
        try:
            hparams |= _hparams(accumulator)
        except Exception as e:  # hparams are a nicety: a malformed record must not stop the run
            notes.append(f"{shown}: its hyper-parameters could not be read ({e.__class__.__name__})")

    tags_seen = {"scalars": sorted(scalars), "images": sorted(images)}
    if files and not scalars:
        notes.append("no scalars were logged")
    metrics = _records(scalars, notes)
    ends = [tag for tag in scalars if tag.endswith("/loss")]
    if "loss" not in scalars and len(ends) == 1:  # the alias the page opens on; not counted against the cap
        tags_seen["loss"] = ends[0]
        for row in metrics:
            if ends[0] in row:
                row["loss"] = row[ends[0]]

    samples: list[tuple[int, Path | bytes]] = []
    image_tag = next((tag for tag, series in images.items() if series), None)
    if image_tag is not None:
        steps = sorted(images[image_tag].items())
        if len(steps) > most_images:
            notes.append(
                f"more than {most_images} images were logged under {plain_label(image_tag)}: {most_images} of them, "
                "spread over the run, are shown"
            )
        skipped: list[str] = []
        for step, data in evenly(steps, most_images):
            why = _image_ok(data)
            if why is None:
                samples.append((step, data))
            else:
                skipped.append(f"step {step:,}: {why}")
        if skipped:
            more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
            notes.append(f"{len(skipped)} logged images were skipped, e.g. {skipped[0]}{more}")
        others = [plain_label(t) for t in images if t != image_tag]
        if others:
            notes.append(f"only the images of {plain_label(image_tag)} are shown; also logged: {', '.join(others)}")
    if other_tags:
        notes.append(f"{len(other_tags)} tags of other kinds (tensors, histograms, audio) were not read")

    walls = [wall for series in scalars.values() for wall, _ in series.values()]
    config: dict[str, Any] = {
        "kind": "tensorboard",
        "event_files": [f.relative_to(folder).as_posix() for f in files],
        "tags": tags_seen,
    }
    if walls:
        config["wall_seconds"] = round(max(walls) - min(walls), 2)
    if hparams:
        config["hparams"] = hparams
    return Run(
        name=name or folder.name,
        source=source,
        config=config,
        metrics=metrics,
        samples=samples,
        notes=notes,
        folder=folder,
    )
