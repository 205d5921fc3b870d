"""TensorBoard event files as a run: a person's own training (diffusers' examples log through accelerate's
TensorBoard tracker, i.e. `torch.utils.tensorboard.SummaryWriter`) shown beside the bundled runs.

Layout read: a folder holding files named `events.out.tfevents.*`, directly or in subfolders at most two levels
down (accelerate writes `<output_dir>/logs/<project>/events...`, and `add_hparams` one more folder below that);
links to folders are not followed. Each file is opened through core/paths.open_inside (with the reader's roots:
a file, or a link, that leads out of them is a note, never read) and read from that handle; its records are read
in chunks and checked here (events.py), each parsed with TensorBoard's own `Event` protobuf;
nothing keeps every point: each series is thinned as it is read (thinned.py), so memory stays bounded whatever
the file's size. `TensorBoardReader` remembers where each file was left, so reading a growing run again reads
only what was appended.

What becomes of what was logged:

- Scalars (`add_scalar`'s simple values, or TF2's scalar tensors): every tag is a metric, named as written
  ("train/loss"). One record per step holds "step", "seconds" (the step's wall time minus the run's first
  scalar wall time, as our own logs count) and each tag's value at that step. When event files lie in several
  folders, each tag is prefixed with its folder's path below the folder they all share ("eval/loss" from
  `eval/events...`), so two writers' tags never merge. A tag named "step" or "seconds" is kept as
  "step (logged)" / "seconds (logged)" (diffusers' examples log "step" too). The page opens on "loss": when no
  tag is called "loss" and exactly one ends in "/loss", a "loss" column repeats it.
- Images: the first tag that holds images (in file order) becomes the sample grids over steps, each shrunk as it
  is read to at most MAX_SAMPLE_SIDE pixels a side (kept as encoded PNG/JPEG bytes); other image tags are named
  in a note.
- Hyper-parameters written by `add_hparams` (accelerate's `init_trackers(config=...)`) land in config["hparams"].
- Several event files in one folder (a resumed run) are merged in name order, which is their creation order;
  as TensorBoard does after a restart, a later file's first step drops the earlier files' points from that
  step on, in every series of that folder, and within a series a step at or before the newest drops the
  points from it on.

Limits, each noted when hit: ATLAS_MAX_LOG_SCALARS scalar points (core/limits.py; shared by the tags, each
thinned to an even spread with its first and last points and the range of what was thinned away; the "loss"
alias not counted), ATLAS_MAX_LOG_IMAGES images per run (spread evenly), ATLAS_MAX_LOG_MB read of each event
file (its first MB), images of at most MAX_IMAGE_PIXELS, MAX_TAGS scalar tags, and the search for event files
(MAX_EVENT_FILES files, MAX_ENTRIES_SCANNED folder entries). A truncated or corrupt file gives a note and the
records before the damage.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, BinaryIO

from PIL import Image

from core.errors import AtlasError
from core.limits import max_log_bytes, max_log_images, max_log_scalars
from core.paths import open_inside
from core.runs.events import Cursor, records
from core.runs.record import Run
from core.runs.thinned import Thinned
from core.text import plain_label

EVENT_PREFIX = "events.out.tfevents."
MAX_DEPTH = 2  # subfolders below the run folder that may hold event files
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = 2048 * 2048  # decoded once to be shrunk: ~12 MB for a moment
MAX_SAMPLE_SIDE = 360  # a kept grid's longest side: the width the Training logs page shows it at
MAX_EVENT_FILES = 100
MAX_ENTRIES_SCANNED = 10_000  # directory entries looked at while searching; a photo folder is not a run
MAX_TAGS = 1_000  # scalar tags read per run, and other tags named per run
_RESERVED = ("step", "seconds")  # the reader's own columns
_IMAGE_FORMATS = ("PNG", "JPEG")


def _walk_event_files(folder: Path, stop_at_first: bool = False, depth: int = MAX_DEPTH) -> tuple[list[Path], bool]:
    """Files named `events.out.tfevents.*` in `folder` and its subfolders up to `depth` below, in path order,
    and whether the search was cut short (over MAX_ENTRIES_SCANNED entries or MAX_EVENT_FILES files). Links to
    folders are never followed; a link named like an event file is listed, and opening it decides
    (core/paths.open_inside: read where it leads inside the roots, a note where it leads out)."""
    found: list[Path] = []
    budget = MAX_ENTRIES_SCANNED
    level = [folder]
    for below_root in range(depth + 1):
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
                    link = entry.is_symlink()
                    if entry.name.startswith(EVENT_PREFIX) and (link or entry.is_file(follow_symlinks=False)):
                        if len(found) == MAX_EVENT_FILES:
                            return sorted(found), True
                        found.append(Path(entry.path))
                        if stop_at_first:
                            return found, False
                    elif below_root < depth and not link and entry.is_dir(follow_symlinks=False):
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


def is_writer_folder(folder: str | Path) -> bool:
    """Whether event files lie directly in `folder`: a writer's own folder (SummaryWriter's `runs/<date>_<host>/`)."""
    folder = Path(folder)
    return folder.is_dir() and bool(_walk_event_files(folder, stop_at_first=True, depth=0)[0])


def writer_folders(folder: str | Path) -> list[Path]:
    """The writers' folders in `folder`, in path order: each highest folder (at most MAX_DEPTH down) that holds
    event files directly (SummaryWriter's `runs/<date>_<host>/`); the add_hparams folders below one are its own."""
    parents = sorted({path.parent for path in _walk_event_files(Path(folder))[0]})
    return [p for p in parents if not any(q in p.parents for q in parents)]


def tensorboard_root(folder: str | Path) -> Path | None:
    """Where to read the TensorBoard run `folder` holds: its logs/ subfolder when that holds event files
    (accelerate's logging_dir; `add_hparams` writes one folder below the project's, within reach from logs/ but
    not from the output folder), else `folder` itself when it holds some; None when it holds none."""
    folder = Path(folder)
    for candidate in (folder / "logs", folder):
        if is_tensorboard_folder(candidate):
            return candidate
    return None


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


def _shrunk(data: bytes) -> tuple[bytes | str]:
    """A logged image as one at most MAX_SAMPLE_SIDE pixels a side (the bytes themselves when it already is, else a
    PNG), or why it cannot be shown; as a 1-tuple, a kept point's values (thinned.Thinned's `keep`)."""
    why = _image_ok(data)
    if why is not None:
        return (why,)
    try:
        with Image.open(io.BytesIO(data)) as img:
            if max(img.size) <= MAX_SAMPLE_SIDE:
                return (data,)
            img.draft("RGB", (MAX_SAMPLE_SIDE, MAX_SAMPLE_SIDE))  # a JPEG decodes at a fraction of its size
            if img.mode not in ("RGB", "RGBA", "L"):
                img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
            img.thumbnail((MAX_SAMPLE_SIDE, MAX_SAMPLE_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
            out = io.BytesIO()
            img.save(out, "PNG", compress_level=1)  # fast; a small grid is small anyway
            return (out.getvalue(),)
    except (OSError, ValueError, SyntaxError):
        return ("not a readable PNG or JPEG",)


@functools.cache
def _tb() -> SimpleNamespace:
    """TensorBoard's pieces used here, imported once when first needed (they take a fifth of a second)."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.hparams import metadata
    from tensorboard.util import tensor_util

    return SimpleNamespace(DecodeError=DecodeError, Event=Event, hparams=metadata, tensor_util=tensor_util)


def _metric_name(tag: str, prefix: str) -> str:
    name = f"{prefix}{tag}"
    return f"{name} (logged)" if name in _RESERVED else name


def _megabytes(n: int) -> str:
    return f"{n / 2**20:,.1f}" if n >= 2**20 else f"{n / 2**20:.2g}"


@dataclass
class _File:
    """What is known of one event file: where reading it stands and what stopped it."""

    prefix: str  # its folder's path below the folder all the run's event files share, "" or ending in "/"
    cursor: Cursor = field(default_factory=Cursor)
    stat: tuple[int, int] = (0, 0)  # size and modification time when last read
    stepped: bool = False  # a point of it was read (the restart rule applied)
    broken: str | None = None  # a record it could not use: reading stays stopped there
    refused: str | None = None  # why it was not opened the last time (core/paths.open_inside's sentence)


class TensorBoardReader:
    """A folder of TensorBoard event files read into a `Run`, again and again as it grows: each `read()` reads only
    the bytes appended since the last one (the whole folder again only when a file was replaced, shrank, or a new
    one sorts before those read) and returns the same Run while nothing changed. Safe to share between threads.

    Each read opens each file afresh through core/paths.open_inside with `roots` (None: any regular file), checked
    as opened and read from that handle: a file that leads out of the roots, or a link put in its place while it
    is opened, is not read, and the run's notes say so."""

    def __init__(
        self,
        folder: str | Path,
        source: str = "runs folder",
        name: str | None = None,
        *,
        roots: Sequence[Path] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.source, self.name = source, name
        self.roots = None if roots is None else tuple(roots)
        self._lock = threading.Lock()
        self._seen: tuple[Any, ...] | None = None  # the files and their stats at the last read
        self._run: Run | None = None
        self._reset(None)

    def _reset(self, base: Path | None) -> None:
        self._base = base
        self._files: dict[Path, _File] = {}
        self._scalars: dict[str, Thinned] = {}  # by metric name
        self._by_tag: dict[tuple[str, str], Thinned] = {}  # the same, by (prefix, tag) as logged
        self._owner: dict[str, str] = {}  # series name -> the prefix of the folder it came from
        self._plugins: dict[tuple[str, str], str] = {}  # (prefix, tag) -> plugin, as its first value said
        self._image_tag: str | None = None
        self._images: Thinned | None = None
        self._other_images: set[str] = set()
        self._other_tags: set[str] = set()
        self._hparams: dict[str, Any] = {}
        self._tags_cut = False

    def read(self) -> Run:
        with self._lock:
            files, cut = _walk_event_files(self.folder)
            stats: dict[Path, tuple[int, int]] = {}
            for path in files:
                try:
                    stat = path.stat()
                except OSError:  # removed while we looked
                    continue
                stats[path] = (stat.st_size, stat.st_mtime_ns)
            seen = (tuple(stats.items()), cut, max_log_bytes(), max_log_scalars(), max_log_images())
            if self._run is not None and seen == self._seen:
                return self._run
            base = Path(os.path.commonpath([p.parent for p in stats])) if stats else self.folder
            if self._seen is None or seen[2:] != self._seen[2:] or self._must_restart(base, stats):
                self._reset(base)
            for path, stat in stats.items():
                self._read_file(path, stat)
            self._seen = seen
            self._run = self._build(list(stats), cut)
            return self._run

    def _must_restart(self, base: Path, stats: dict[Path, tuple[int, int]]) -> bool:
        """Whether what was read no longer leads to what is there: the shared folder moved, a file read went or
        shrank, or a new file sorts before one read in its folder (the merge follows name order)."""
        if base != self._base:
            return True
        for path, known in self._files.items():
            stat = stats.get(path)
            if stat is None or stat[0] < known.cursor.offset or stat[0] < known.stat[0]:
                return True
        for path in stats.keys() - self._files.keys():
            if any(p.parent == path.parent and p.name > path.name for p in self._files):
                return True
        return False

    def _read_file(self, path: Path, stat: tuple[int, int]) -> None:
        tb = _tb()
        state = self._files.get(path)
        if state is None:
            sub = path.parent.relative_to(self._base).as_posix()
            state = self._files[path] = _File(prefix="" if sub == "." else f"{sub}/")
        if stat == state.stat:
            return
        try:
            handle = open_inside(path, self.roots)
        except AtlasError as e:  # outside the roots, gone, not a file, or a link swapped in: tried again next read
            state.refused = str(e).removesuffix(".")
            return
        state.stat, state.refused = stat, None
        with handle:
            self._read_records(handle, state, tb)

    def _read_records(self, handle: BinaryIO, state: _File, tb: SimpleNamespace) -> None:
        """The file's records from where its cursor stands, thinned into the run's series."""
        try:
            for data in records(handle, state.cursor, max_log_bytes()):
                try:
                    event = tb.Event.FromString(data)
                except tb.DecodeError:  # a record whose checksum passes but that is no Event
                    state.broken = "a record that is not a TensorBoard event"
                    break
                if event.HasField("summary"):
                    try:
                        self._take(event, state, tb)
                    except Exception as e:  # a value no reader expects (a tensor that is no array, ...): stop here
                        state.broken = f"a value it could not read ({e.__class__.__name__})"
                        break
            else:
                state.broken = None
        except OSError as e:
            state.broken = f"an error reading it ({e.__class__.__name__})"

    def _take(self, event: Any, state: _File, tb: SimpleNamespace) -> None:
        """Thin one event's values into the series they belong to."""
        prefix, step = state.prefix, event.step
        for value in event.summary.value:
            kind = value.WhichOneof("value")
            if kind == "simple_value":  # add_scalar's: the bulk of a long log, so the first and shortest way
                self._scalar(state, value.tag, step, event.wall_time, value.simple_value)
                continue
            if kind == "image":
                self._image(state, value.tag, step, value.image.encoded_image_string)
                continue
            key = (prefix, value.tag)
            plugin = value.metadata.plugin_data.plugin_name  # TF2 names it on a tag's first value only
            if plugin:
                if key in self._plugins or len(self._plugins) < MAX_TAGS:
                    self._plugins[key] = plugin
            else:
                plugin = self._plugins.get(key, "")
            if kind == "tensor" and plugin == "scalars":
                array = tb.tensor_util.make_ndarray(value.tensor)
                if array.size == 1 and array.dtype.kind in "biuf":
                    self._scalar(state, value.tag, step, event.wall_time, float(array.item()))
            elif kind == "tensor" and plugin == "images":
                strings = value.tensor.string_val  # TF2's image summary: width, height, then each encoded image
                self._image(state, value.tag, step, strings[2] if len(strings) > 2 else b"")
            elif plugin == tb.hparams.PLUGIN_NAME:
                if value.tag == tb.hparams.SESSION_START_INFO_TAG:
                    self._read_hparams(value.metadata.plugin_data.content)
            elif kind is not None and len(self._other_tags) < MAX_TAGS:
                self._other_tags.add(f"{prefix}{value.tag}")

    def _restart_rule(self, state: _File, step: int) -> None:
        """A file's first point drops what earlier files of its folder hold from its step on (a resumed run)."""
        state.stepped = True
        for name, series in self._scalars.items():
            if self._owner[name] == state.prefix:
                series.drop_from(step)
        if self._images is not None and self._owner[self._image_tag] == state.prefix:
            self._images.drop_from(step)

    def _scalar(self, state: _File, tag: str, step: int, wall: float, value: float) -> None:
        series = self._by_tag.get((state.prefix, tag))
        if series is None:
            name = _metric_name(tag, state.prefix)
            if len(self._scalars) == MAX_TAGS:
                self._tags_cut = True
                return
            share = max_log_scalars() // (len(self._scalars) + 1)
            for other in self._scalars.values():
                other.shrink_to(share)
            series = self._scalars[name] = self._by_tag[state.prefix, tag] = Thinned(share, "dd", envelope=1)
            self._owner[name] = state.prefix
        if not state.stepped:
            self._restart_rule(state, step)
        series.add(step, wall, value)

    def _image(self, state: _File, tag: str, step: int, data: bytes) -> None:
        name = f"{state.prefix}{tag}"
        if self._image_tag is None:
            self._image_tag, self._owner[name] = name, state.prefix
            self._images = Thinned(max_log_images(), "O", keep=_shrunk)
        if name == self._image_tag:
            if not state.stepped:
                self._restart_rule(state, step)
            self._images.add(step, data)
        elif len(self._other_images) < MAX_TAGS:
            self._other_images.add(name)

    def _read_hparams(self, content: bytes) -> None:
        """Hyper-parameters from the hparams plugin's session-start record, as plain values."""
        try:
            info = _tb().hparams.parse_session_start_info_plugin_data(content)
        except Exception:  # hparams are a nicety: a malformed record must not stop the run
            return
        for key, value in info.hparams.items():
            kind = value.WhichOneof("kind")
            ok = kind in ("number_value", "string_value", "bool_value")
            self._hparams[key] = getattr(value, kind) if ok else None

    def _file_notes(self, path: Path) -> list[str]:
        state = self._files[path]
        shown = plain_label(path.relative_to(self.folder).as_posix(), 80)
        notes = []
        if state.refused is not None:
            notes.append(state.refused)
        elif state.broken is not None:
            notes.append(f"{shown}: reading stopped at {state.broken}; the records before it were kept")
        elif state.cursor.stop in ("truncated", "corrupt"):
            notes.append(f"{shown}: reading stopped at a {state.cursor.stop} record; the records before it were kept")
        elif state.cursor.stop == "limit":
            notes.append(
                f"{shown}: read the first {_megabytes(max_log_bytes())} MB of {_megabytes(state.stat[0])} MB "
                "(ATLAS_MAX_LOG_MB, the limit per event file)"
            )
        return notes

    def _build(self, files: list[Path], cut: bool) -> Run:
        notes: list[str] = []
        if cut:
            notes.append(
                f"only {len(files)} event files were read: the search stops after {MAX_EVENT_FILES} files or "
                f"{MAX_ENTRIES_SCANNED:,} folder entries"
            )
        if not files:
            notes.append("no TensorBoard event files (events.out.tfevents.*) here")
        for path in files:
            notes += self._file_notes(path)
        scalars = {name: series for name, series in self._scalars.items() if len(series)}
        if files and not scalars:
            notes.append("no scalars were logged")
        if self._tags_cut:
            notes.append(f"only the first {MAX_TAGS:,} scalar tags were read")
        metrics, walls = _records(scalars)
        thinned = {name: series for name, series in scalars.items() if series.stride > 1}
        if thinned:
            seen = sum(series.seen for series in scalars.values())
            name, series = max(thinned.items(), key=lambda item: item[1].stride)
            notes.append(
                f"{seen:,} scalar points, more than the {max_log_scalars():,} read per run: each tag keeps an even "
                f"spread, its first and last points among them (one point in every {series.stride} of "
                f"{plain_label(name)}, {len(series):,} of {series.seen:,})"
            )
        tags_seen: dict[str, Any] = {"scalars": sorted(scalars), "images": sorted(self._image_names())}
        envelopes = {name: series.ranges() for name, series in thinned.items()}
        ends = [tag for tag in scalars if tag.endswith("/loss")]
        if "loss" not in scalars and len(ends) == 1:  # the alias the page opens on; not counted against the cap
            tags_seen["loss"] = ends[0]
            if ends[0] in envelopes:
                envelopes["loss"] = envelopes[ends[0]]
            for row in metrics:
                if ends[0] in row:
                    row["loss"] = row[ends[0]]
        samples = self._samples(notes)
        if self._other_tags:
            notes.append(f"{len(self._other_tags)} tags of other kinds (tensors, histograms, audio) were not read")
        config: dict[str, Any] = {
            "kind": "tensorboard",
            "event_files": [f.relative_to(self.folder).as_posix() for f in files],
            "tags": tags_seen,
        }
        if walls:
            config["wall_seconds"] = round(max(walls) - min(walls), 2)
        if self._hparams:
            config["hparams"] = dict(self._hparams)
        return Run(
            name=self.name or self.folder.name,
            source=self.source,
            config=config,
            metrics=metrics,
            samples=samples,
            notes=notes,
            folder=self.folder,
            envelopes=envelopes,
        )

    def _image_names(self) -> list[str]:
        have = self._images is not None and len(self._images)
        return ([self._image_tag] if have else []) + sorted(self._other_images)

    def _samples(self, notes: list[str]) -> list[tuple[int, Path | bytes]]:
        """The kept grids of the image tag shown, and notes on what was thinned, skipped or not shown."""
        if self._images is None or not len(self._images):
            return []
        tag = plain_label(self._image_tag)
        if self._images.stride > 1:
            notes.append(
                f"more than {max_log_images()} images were logged under {tag}: {len(self._images)} of them, "
                "spread over the run, are shown"
            )
        samples, skipped = [], []
        for step, image in self._images.points():
            if isinstance(image, bytes):
                samples.append((step, image))
            else:
                skipped.append(f"step {step:,}: {image}")
        if skipped:
            more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
            notes.append(f"{len(skipped)} logged images were skipped, e.g. {skipped[0]}{more}")
        if self._other_images:
            others = ", ".join(plain_label(t) for t in sorted(self._other_images))
            notes.append(f"only the images of {tag} are shown; also logged: {others}")
        return samples


def _records(scalars: dict[str, Thinned]) -> tuple[list[dict[str, Any]], list[float]]:
    """One dict per step kept by any tag (step order): "step", "seconds" and each tag's value there; and the
    first and last wall times of the points kept."""
    rows: dict[int, dict[str, Any]] = {}
    first_wall: dict[int, float] = {}
    last = float("-inf")
    for name, series in scalars.items():
        for step, wall, value in series.points():
            last = max(last, wall)
            row = rows.get(step)
            if row is None:
                row = rows[step] = {"step": step, "seconds": 0.0}
            row[name] = value
            if wall < first_wall.get(step, float("inf")):
                first_wall[step] = wall
    if not rows:
        return [], []
    start = min(first_wall.values())
    for step, row in rows.items():
        row["seconds"] = first_wall[step] - start
    return [rows[step] for step in sorted(rows)], [start, last]


def read_tensorboard_run(
    folder: str | Path, source: str = "runs folder", name: str | None = None, *, roots: Sequence[Path] | None = None
) -> Run:
    """Read a folder of TensorBoard event files into a Run once (see the module's docstring for what becomes what;
    `TensorBoardReader` reads a growing one again from where it stopped; `roots` as there). Anything missing,
    damaged, over a limit or outside the roots becomes a note, never an exception."""
    return TensorBoardReader(folder, source, name, roots=roots).read()
