"""Where a result came from, carried in the file that holds it (as A1111's "PNG info"): the model (name, source,
sha256 of its weights), every sampler setting, the device, dtype, torch and Atlas versions. `record` makes it
from (model, settings), the one way every exporter does; `read` finds it again in a PNG (a tEXt chunk), a GIF
(a comment extension), a CSV (a first comment line) or a JSON file (a field), and `settings_from` turns it back
into the `SamplerSettings` that draw the same images from the same seed.

A file someone sends is data: it is read within a size, parsed as JSON (core/jsondata.py), checked field by field
into a sentence, and nothing in it is ever unpickled or evaluated.
"""

from __future__ import annotations

import functools
import io
import json
import math
import struct
import weakref
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core import jsondata
from core.data import images
from core.diffusion.guidance import METHODS, Guidance
from core.diffusion.samplers import SAMPLERS
from core.errors import BadInputError
from core.labs.samplers import TYPED, ImageModel, SamplerSettings
from core.limits import max_upload_bytes
from core.text import plain_label

KEY = "atlas"  # the PNG text keyword, the JSON field and the CSV comment's tag
FORMAT = "diffusion-atlas-settings/1"
MAX_RECORD_BYTES = 256 * 1024  # a record is a few kB; a text chunk beyond this is not ours
GUIDANCE_FIELDS = ("method", "scale", "interval", "rescale", "eta", "momentum", "threshold")
_PNG = b"\x89PNG\r\n\x1a\n"
_BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark


@functools.cache
def atlas_version() -> str:
    """The code version run records keep (core/runs/writer.code_version: the git commit, '-dirty' for changes)."""
    from core.runs.writer import code_version

    return code_version()


def record(
    model: ImageModel | str | None,
    settings: SamplerSettings,
    *,
    spec: str | None = None,
    study: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The settings a result was made with, as plain JSON values. `model` is the sampled model (a zoo model, a
    local or Hub one), or a sentence naming a model that is no file (an exact mixture); `spec` what it was named
    by (a `zoo compare` argument); `study` what a page varied beyond one run (a guidance sweep's series)."""
    out: dict[str, Any] = {"format": FORMAT, "model": _model_part(model, spec), "settings": settings_part(settings)}
    device = getattr(model, "device", None)
    module = getattr(model, "module", None)
    params = next(module.parameters(), None) if isinstance(module, torch.nn.Module) else None
    out["device"] = str(device) if device is not None else "cpu"
    out["dtype"] = str(params.dtype if params is not None else torch.get_default_dtype()).removeprefix("torch.")
    out["torch"] = torch.__version__
    out["atlas"] = atlas_version()
    if study:
        out["study"] = dict(study)
    return out


_FINGERPRINTS: weakref.WeakKeyDictionary[torch.nn.Module, str] = weakref.WeakKeyDictionary()


def _fingerprint(module: torch.nn.Module) -> str:
    """core/models/fingerprint.weights_fingerprint, once per module (models are never changed in place)."""
    if module not in _FINGERPRINTS:
        from core.models.fingerprint import weights_fingerprint

        _FINGERPRINTS[module] = weights_fingerprint(module)
    return _FINGERPRINTS[module]


def _model_part(model: ImageModel | str | None, spec: str | None) -> dict[str, Any]:
    if model is None or isinstance(model, str):
        return {"name": model, "source": None, "sha256": {}}
    part: dict[str, Any] = {
        "name": model.name,
        "title": model.title,
        "source": getattr(getattr(model, "entry", None), "source", None),
        "sha256": dict(getattr(model, "weights_sha256", None) or {}),
    }
    if not part["sha256"] and isinstance(module := getattr(model, "module", None), torch.nn.Module):
        part["weights_fingerprint"] = _fingerprint(module)  # a local model or one with no file: its state dict's
    if spec is not None:
        part["spec"] = spec
    return part


def settings_part(s: SamplerSettings) -> dict[str, Any]:
    """Every field of the settings (the guidance as one object: its method and settings, interval included)."""
    g = s.guiding
    return {
        "sampler": s.sampler,
        "options": dict(s.options),
        "steps": s.steps,
        "nfe": s.nfe,
        "spacing": s.spacing,
        "grid": None if s.grid is None else [float(v) for v in s.grid],
        "noise_until": s.noise_until,
        "max_sigma": s.max_sigma,
        "seed": s.seed,
        "batch": s.batch,
        "class": s.label,
        "spread_classes": s.spread_classes,
        "guidance": guidance_part(g),
        "guide": s.guide,
        "clip": s.clip,
        "clip_range": s.clip_range,
        "thresholding": None if s.thresholding is None else list(s.thresholding),
        "steps_offset": s.steps_offset,
        "one_more": s.one_more,
        "to_zero": s.to_zero,
    }


def guidance_part(g: Guidance) -> dict[str, Any]:
    """A guidance method and all its settings (core/diffusion/guidance.Guidance's fields)."""
    return {f: (list(v) if isinstance(v := getattr(g, f), tuple) else v) for f in GUIDANCE_FIELDS}


def series_part(name: str, guidance: Guidance, scales: Sequence[float]) -> dict[str, Any]:
    """One series of a guidance study: its name, method with settings, and the scales it ran."""
    return {"name": name, "guidance": guidance_part(guidance), "scales": [float(w) for w in scales]}


# ---- writing ----------------------------------------------------------------------------------------------------


def text(records: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """One record, or a list of them (one per model of a comparison), as one line of ASCII JSON."""
    return json.dumps(records, ensure_ascii=True, separators=(",", ":"), default=str)


def png(image: np.ndarray, records: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> bytes:
    """A PNG of `image` carrying the records in a tEXt chunk named "atlas"."""
    return images.png_bytes(image, {KEY: text(records)})


def gif(frames: list[np.ndarray], records: Mapping[str, Any] | Sequence[Mapping[str, Any]], **kwargs: Any) -> bytes:
    """An animated GIF (core/data/images.gif_bytes) carrying the records in a comment extension."""
    return images.gif_bytes(frames, comment=text(records), **kwargs)


def csv(table: str, records: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """A CSV table with the records as its first line, a comment: `# atlas: {...}` (pandas reads the table with
    `comment="#"`; `read` reads the records)."""
    return f"# {KEY}: {text(records)}\n{table}"


# ---- reading ----------------------------------------------------------------------------------------------------


def read(data: bytes, name: str = "The file") -> list[dict[str, Any]]:
    """The records a PNG, GIF, CSV or JSON file carries (one per model), or BadInputError with a sentence: not
    one of those, too large, no record, or a record that is not ours. Nothing is unpickled or evaluated."""
    name = plain_label(name, 80)
    if not isinstance(data, (bytes, bytearray)):
        raise BadInputError(f"{name} is not a file.")
    if len(data) > (limit := max_upload_bytes()):
        raise BadInputError(f"{name} is {len(data) / 2**20:.1f} MB; files up to {limit / 2**20:g} MB are accepted.")
    data = bytes(data)
    if data.startswith(_BOM):  # a CSV or JSON saved again by a spreadsheet or an editor
        data = data[len(_BOM) :]
    if data.startswith(_PNG):
        found = _png_text(data, name)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        found = _gif_comment(data, name)
    elif data.lstrip()[:1] in (b"{", b"["):
        found = _json_records(data, name)
    elif data.startswith(f"# {KEY}: ".encode()):
        found = data.split(b"\n", 1)[0][len(KEY) + 4 :].decode("ascii", "replace")
    else:
        raise BadInputError(f"{name} is not a PNG, GIF, CSV or JSON file that the Atlas wrote.")
    if found is None:
        raise BadInputError(f"{name} carries no Atlas settings (it was not exported by the Atlas).")
    if isinstance(found, str):
        if len(found) > MAX_RECORD_BYTES:
            raise BadInputError(f"{name}'s settings are {len(found):,} characters; a record is a few thousand.")
        try:
            found = jsondata.loads(found)
        except ValueError as e:
            raise BadInputError(f"{name}'s settings are not valid JSON ({e}).") from None
    records = found if isinstance(found, list) else [found]
    if not records or not all(isinstance(r, dict) and r.get("format") == FORMAT for r in records):
        raise BadInputError(f"{name}'s settings are not in the Atlas's format ({FORMAT}).")
    return records


def _png_text(data: bytes, name: str) -> str | None:
    """The "atlas" text chunk (tEXt, zTXt or iTXt) of a PNG, read chunk by chunk without decoding the image."""
    pos = len(_PNG)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise BadInputError(f"{name} is cut short (a PNG chunk runs past its end).")
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword, _, rest = body.partition(b"\0")
            if keyword == KEY.encode():
                if length > MAX_RECORD_BYTES:
                    raise BadInputError(f"{name}'s settings chunk is {length:,} bytes; a record is a few thousand.")
                return _chunk_text(kind, rest, name)
        if kind == b"IEND":
            break
        pos += 12 + length
    return None


def _chunk_text(kind: bytes, rest: bytes, name: str) -> str:
    if kind == b"tEXt":
        return rest.decode("latin-1")
    if kind == b"zTXt":
        return _inflate(rest[1:], name).decode("latin-1")
    compressed = rest[:1] == b"\1"
    _lang, _, rest = rest[2:].partition(b"\0")
    _translated, _, rest = rest.partition(b"\0")
    return (_inflate(rest, name) if compressed else rest).decode("utf-8", "replace")


def _inflate(data: bytes, name: str) -> bytes:
    """zlib data inflated to MAX_RECORD_BYTES at most (a small bomb stays small)."""
    try:
        out = zlib.decompressobj().decompress(data, MAX_RECORD_BYTES + 1)
    except zlib.error:
        raise BadInputError(f"{name}'s settings chunk is not valid compressed text.") from None
    if len(out) > MAX_RECORD_BYTES:
        raise BadInputError(f"{name}'s settings chunk unpacks past {MAX_RECORD_BYTES:,} bytes; a record is smaller.")
    return out


def _gif_comment(data: bytes, name: str) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            comment = img.info.get("comment")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise BadInputError(f"{name} is not a GIF that can be read.") from None
    if not comment:
        return None
    return comment.decode("ascii", "replace") if isinstance(comment, bytes) else str(comment)


def _json_records(data: bytes, name: str) -> Any:
    """A record, a list of them, or an object holding them in its "atlas" field (`zoo compare`'s results.json)."""
    try:
        parsed = jsondata.loads(data)
    except ValueError as e:
        raise BadInputError(f"{name} is not valid JSON ({plain_label(str(e), 120)}).") from None
    wrapped = isinstance(parsed, dict) and KEY in parsed and parsed.get("format") != FORMAT  # a record's own
    found = parsed[KEY] if wrapped else parsed  # "atlas" field is its code version
    if not isinstance(found, (dict, list)):  # JSON holds the record itself, never text to parse again
        raise BadInputError(f"{name}'s settings are not in the Atlas's format ({FORMAT}).")
    return found


# ---- back to settings ---------------------------------------------------------------------------------------------


def settings_from(rec: Mapping[str, Any]) -> SamplerSettings:
    """The `SamplerSettings` a record holds, each field checked (type and range) into a sentence: an unknown
    sampler or guidance method, an option the sampler does not take, a value of the wrong type."""
    s = rec.get("settings")
    if not isinstance(s, dict):
        raise BadInputError("The file's record holds no sampler settings.")
    sampler = s.get("sampler")
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        shown = plain_label(str(sampler), 40)
        raise BadInputError(f"The file asks for sampler {shown!r}, which is not one of the Atlas's samplers.")
    spec = SAMPLERS[sampler]
    options = s.get("options") or {}
    if not isinstance(options, dict):
        raise BadInputError("The file's sampler options are not a set of named values.")
    parsed = spec.parse_options(options)
    spacing = _get(s, "spacing", str)
    from core.diffusion.schedules import SPACINGS

    if spacing not in (*SPACINGS, TYPED):
        raise BadInputError(f"The file's spacing {plain_label(spacing, 40)!r} is not one the Atlas knows.")
    grid = s.get("grid")
    if grid is not None:
        if not isinstance(grid, list) or not all(_is_number(v) for v in grid) or not 2 <= len(grid) <= 1001:
            raise BadInputError("The file's typed grid is not a list of noise levels.")
        grid = tuple(float(v) for v in grid)
    return SamplerSettings(
        sampler=sampler,
        steps=_get(s, "steps", int, low=1),
        spacing=spacing,
        grid=grid,
        options=parsed,
        noise_until=_get(s, "noise_until", int, none=True, low=0),
        max_sigma=_get(s, "max_sigma", float, none=True, low=0.0),
        seed=_get(s, "seed", int, low=0, high=2**63 - 1),
        batch=_get(s, "batch", int, low=1),
        label=_get(s, "class", int, none=True, low=0),
        guidance=_guidance(s.get("guidance")),
        guide=_get(s, "guide", str, none=True),
        spread_classes=_get(s, "spread_classes", bool, default=False),
        clip=_get(s, "clip", bool, default=True),
        clip_range=_get(s, "clip_range", float, default=1.0, low=0.0),
        thresholding=_pair(s.get("thresholding"), "thresholding"),
        steps_offset=_get(s, "steps_offset", int, default=0, low=0),
        one_more=_get(s, "one_more", bool, default=False),
        to_zero=_get(s, "to_zero", bool, default=True),
    )


MAX_SERIES = 20  # a study's series, and each one's scales, are a handful
MAX_SCALES = 100


def series_from(rec: Mapping[str, Any]) -> list[tuple[str, Guidance, tuple[float, ...]]]:
    """A guidance study's series (`series_part`'s): each one's name, guidance method with its settings, and
    scales, checked into a sentence."""
    study = rec.get("study")
    series = study.get("series") if isinstance(study, dict) else None
    if not isinstance(series, list) or not 1 <= len(series) <= MAX_SERIES:
        raise BadInputError(f"The file's record holds no guidance series (1 to {MAX_SERIES} of them).")
    out = []
    for part in series:
        if not isinstance(part, dict):
            raise BadInputError("The file's guidance series are not sets of named values.")
        name = _get(part, "name", str)
        scales = part.get("scales")
        if not isinstance(scales, list) or not 1 <= len(scales) <= MAX_SCALES or not all(map(_is_number, scales)):
            raise BadInputError(f"The file's series {plain_label(name, 60)!r} has no list of scales.")
        out.append((name, _guidance(part.get("guidance")), tuple(float(w) for w in scales)))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_MISSING = object()


def _get(s: Mapping[str, Any], key: str, kind: type, *, none: bool = False, default: Any = _MISSING, **bounds: Any):
    """s[key] as `kind` (None allowed where `none`; `default` where it is missing), within `low`..`high`."""
    if key not in s:
        if default is not _MISSING:
            return default
        if none:
            return None
        raise BadInputError(f"The file's settings have no {key}.")
    value = s[key]
    if value is None and none:
        return None
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: _is_number(value),
        bool: isinstance(value, bool),
        str: isinstance(value, str) and len(value) <= 300,
    }[kind]
    if not ok:
        raise BadInputError(f"The file's {key} should be {_KINDS[kind]}, not {plain_label(repr(value), 40)}.")
    low, high = bounds.get("low"), bounds.get("high")
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadInputError(f"The file's {key} ({value}) is out of range.")
    return float(value) if kind is float else value


_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a short text"}


def _pair(value: Any, key: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2 or not all(_is_number(v) for v in value):
        raise BadInputError(f"The file's {key} should be two numbers.")
    return float(value[0]), float(value[1])


def _guidance(g: Any) -> Guidance:
    if g is None:
        return Guidance()
    if not isinstance(g, dict):
        raise BadInputError("The file's guidance is not a set of named values.")
    method = g.get("method", "cfg")
    if not isinstance(method, str) or method not in METHODS:
        shown = plain_label(str(method), 40)
        raise BadInputError(f"The file asks for guidance {shown!r}; the Atlas has {', '.join(METHODS)}.")
    fields = {k: _get(g, k, float) for k in ("scale", "rescale", "eta", "momentum", "threshold") if k in g}
    return Guidance(method=method, interval=_pair(g.get("interval"), "guidance interval"), **fields)


def describe(rec: Mapping[str, Any]) -> str:
    """One short line: "tiny-cond · DPM-Solver++(2M), 20 trailing steps · seed 0 · 16 images"."""
    model = rec.get("model") if isinstance(rec.get("model"), dict) else {}
    s = rec.get("settings") if isinstance(rec.get("settings"), dict) else {}
    parts = [plain_label(str(model.get("name")), 60), f"{s.get('sampler')}, {s.get('steps')} {s.get('spacing')} steps"]
    parts += [f"seed {s.get('seed')}", f"{s.get('batch')} images"]
    return " · ".join(plain_label(p, 80) for p in parts)
