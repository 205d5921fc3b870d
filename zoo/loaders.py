"""Turn a zoo entry into a ready object: the module in eval mode with gradients off, on its device, wrapped
as a Denoiser where it is one, with the metadata the pages need (a LoadedModel is a core.labs.samplers.ImageModel).

A loaded model may be shared by every session (Streamlit's resource cache), so nothing here or downstream
ever mutates it after `load_model` returns.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from core import jsondata
from core.cost import MeteredNetwork
from core.diffusion.denoisers import PREDICTION_TYPES, Denoiser, model_denoiser
from core.diffusion.schedules import (
    DIFFUSERS_NAMES,
    TIMESTEP_SPACINGS,
    ZERO_SNR_ALPHA_BAR,
    NoiseSchedule,
    make_schedule,
    zero_terminal_snr,
)
from core.labs.samplers import FolderScheduler
from core.runs.checkpoints import ATLAS_FILE
from core.text import plain_label
from core.training.budget import count_parameters
from zoo.architectures import (
    MAX_TRAIN_STEPS,
    build,
    check_flops,
    check_size,
    fix_legacy_keys,
    forward_flops,
    state_size,
    unet_outline,
)
from zoo.errors import CheckpointError, ChecksumError, HubError, ZooError
from zoo.hub import cached_files, fetch, sha256_of, validate_repo_id, validate_revision
from zoo.paths import open_inside
from zoo.registry import ModelEntry, ScheduleSpec
from zoo.weights import load_into, open_weights, read_state_dict, stored_size

# diffusers' names for the schedules the engine knows
DIFFUSERS_SCHEDULES = {theirs: ours for ours, theirs in DIFFUSERS_NAMES.items()}


@dataclass(frozen=True)
class LoadedModel:
    entry: ModelEntry
    module: torch.nn.Module
    device: torch.device
    files: Mapping[str, Path]
    schedule: NoiseSchedule | None
    denoiser: Denoiser | None
    param_count: int
    file_bytes: int  # its weights file's
    load_seconds: float
    flops_per_image: int | None = None  # one evaluation of one image by a denoiser (core/cost.py); None otherwise
    scheduler: FolderScheduler | None = None  # what its own scheduler_config.json asks of sampling (not the Atlas's)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def title(self) -> str:
        return self.entry.title

    @property
    def data(self) -> str | None:
        return self.entry.data

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.entry.sample_shape

    @property
    def null_label(self) -> int | None:
        return self.entry.null_label

    @property
    def num_classes(self) -> int:
        return self.entry.num_classes

    @property
    def supports_guidance(self) -> bool:
        return self.entry.num_classes > 0 and self.null_label is not None

    @property
    def weights_sha256(self) -> dict[str, str]:
        """The sha256 of each of its weights files (the manifest's pin where it has one; else hashed once per
        file, size and time, and kept), by file name: what a result's record names (core/labs/provenance.py).
        A local model's files are read once, through their checked handles, and never again by path: none here
        (the record takes its state dict's fingerprint)."""
        if self.entry.local:
            return {}
        weights = [f for f in self.files if f.endswith(WEIGHT_SUFFIXES)] or list(self.files)
        out = {}
        for f in weights:
            path = Path(self.files[f])
            stat = path.stat() if f not in self.entry.sha256 and path.is_file() else None
            out[f] = self.entry.sha256.get(f) or (
                _file_sha256(str(path), stat.st_size, stat.st_mtime_ns) if stat else ""
            )
        return out


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """A weights file's sha256, kept for its size and time (a file replaced is hashed again)."""
    del size, mtime_ns  # the key
    return sha256_of(Path(path))


def availability(entry: ModelEntry) -> str:
    """bundled | bundled files missing | cached | needs the Hub | local (local checks only, never the network)."""
    if entry.local:
        return "local"
    if entry.path is not None:
        return "bundled" if all((entry.path / f).is_file() for f in entry.files) else "bundled files missing"
    paths = cached_files(str(entry.repo), entry.files, revision=entry.revision)
    return "cached" if all(paths.values()) else "needs the Hub"


def resolve_files(entry: ModelEntry) -> dict[str, Path]:
    """Local paths of an entry's files: its bundled folder (checked against pinned sha256), the Hub cache, or
    a local entry's folder (each of those files is checked as it is opened: zoo/paths.open_inside)."""
    if entry.path is None:
        return fetch(str(entry.repo), entry.files, revision=entry.revision, sha256=entry.sha256)
    if entry.local:
        return {name: entry.path / name for name in entry.files}
    paths = {}
    for name in entry.files:
        path = entry.path / name
        if not path.is_file():
            raise ZooError(f"Bundled model {entry.name!r} is missing {name}; run `python -m zoo verify`.")
        if name in entry.sha256 and sha256_of(path) != entry.sha256[name]:
            raise ChecksumError(f"Bundled file {entry.name}/{name} does not match its pinned sha256.")
        paths[name] = path
    return paths


def read_json(path: Path, what: str, roots: Sequence[Path] | None = None) -> dict[str, Any]:
    """A JSON object from a config file (opened by `open_inside` with `roots`, of at most core/jsondata's MAX_BYTES
    and MAX_DEPTH levels), or a CheckpointError naming `what` and the file."""
    with open_inside(path, roots) as handle:
        if os.fstat(handle.fileno()).st_size > jsondata.MAX_BYTES:
            too_big = f"is over {jsondata.MAX_BYTES // 2**20} MB, too big for a config"
            raise CheckpointError(f"{what}: {path.name} {too_big}.")
        try:
            data = jsondata.loads(handle.read(jsondata.MAX_BYTES + 1)[: jsondata.MAX_BYTES].decode("utf-8"))
        except jsondata.TooDeep as e:
            raise CheckpointError(f"{what}: {path.name} {e}; no config does.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{what}: {path.name} is not valid JSON ({plain_label(e, 80)}).") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{what}: {path.name} does not hold a JSON object.")
    return data


def _pick(files: Mapping[str, Path], suffix: str) -> Path | None:
    return next((p for name, p in files.items() if name.endswith(suffix)), None)


def _what(entry: ModelEntry) -> str:
    """The entry as messages name it (a local one by its title: its name holds a server path)."""
    return entry.title if entry.local else f"Model {entry.name!r}"


def build_module(entry: ModelEntry, files: Mapping[str, Path]) -> tuple[torch.nn.Module, int, int | None]:
    """The entry's network with its weights, the weights file's size in bytes, and (a denoiser's) the FLOPs of
    one evaluation of one image. Its size and cost are known before anything real is built: counted from the
    config on the meta device (capped), the size checked against the weights file's header where that states
    it, so a small config cannot make the server build a huge network, nor junk weights a big one, nor a small
    network cost minutes an image. Every file is read through `open_inside` (a local entry's roots)."""
    what = _what(entry)
    weights = files["model.safetensors"] if entry.format == "hub-mixin" else files[entry.weight_files[0]]
    if entry.format in ("diffusers-unet", "diffusers-pipeline"):
        config_name = posixpath.join(posixpath.dirname(entry.weight_files[0]), "config.json")  # beside the weights
        if config_name not in files:
            raise ZooError(f"{what} lists no {config_name}.")
        architecture, config = "unet2d", read_json(files[config_name], what, entry.roots)
    elif entry.format == "hub-mixin":
        architecture, config = str(entry.architecture), read_json(files["config.json"], what, entry.roots)
    else:
        architecture, config = str(entry.architecture), entry.config
    expected = state_size(architecture, config, what)
    check_size(expected, what)
    flops = None
    if entry.family in ("pixel", "latent"):
        flops = forward_flops(architecture, config, entry.sample_shape, what)
        check_flops(flops, what)
    with open_weights(weights, entry.roots) as handle:  # read from this handle only, whatever the path becomes
        stored = stored_size(handle, weights.name)
        if stored is not None and stored != expected and entry.state_dict_key is None:
            raise CheckpointError(
                f"{what}: {weights.name} holds {stored:,} numbers, but its config describes a network of "
                f"{expected:,}; the weights and the config do not belong together."
            )
        module = build(architecture, config, what)
        state = read_state_dict(handle, weights.name, entry.state_dict_key)
        size = os.fstat(handle.fileno()).st_size
    fix_legacy_keys(module, state)
    load_into(module, state, f"{weights.name} of {what}")
    return module, size, flops


def schedule_from_scheduler_config(config: Mapping[str, Any], what: str) -> tuple[NoiseSchedule, str]:
    """A diffusers scheduler_config.json as an engine schedule, and the prediction type it names (epsilon if
    none; checked): a flow-matching scheduler (FlowMatchEulerDiscreteScheduler and kin) is the flow path with
    its `shift`, and its model predicts the velocity (resolution-dependent shifting is not applied: the grid
    is the atlas's). At most MAX_TRAIN_STEPS training steps, however they are declared."""
    steps = config.get("num_train_timesteps", config.get("timesteps", 1000))
    if not isinstance(steps, int) or isinstance(steps, bool) or not 2 <= steps <= MAX_TRAIN_STEPS:
        raise ZooError(f"{what}: num_train_timesteps must be a whole number from 2 to {MAX_TRAIN_STEPS:,}.")
    if is_flow_scheduler(config):
        shift = config.get("shift", 1.0)
        if not isinstance(shift, (int, float)) or isinstance(shift, bool) or not 0 < shift <= 100:
            raise ZooError(f"{what}: shift must be a number in (0, 100].")
        return make_schedule("flow", steps, shift=float(shift)), "flow_prediction"
    kind = DIFFUSERS_SCHEDULES.get(str(config.get("beta_schedule", "linear")))
    if config.get("trained_betas"):  # exact betas, named after the kind the config says they came from
        given = config["trained_betas"]
        if not isinstance(given, list) or not 2 <= len(given) <= MAX_TRAIN_STEPS:
            count = f"{len(given):,} values" if isinstance(given, list) else type(given).__name__
            raise ZooError(f"{what}: trained_betas must list 2 to {MAX_TRAIN_STEPS:,} numbers (it holds {count}).")
        try:
            betas = torch.tensor(given, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as e:
            raise ZooError(f"{what}: trained_betas is not a list of numbers.") from e
        if betas.ndim != 1:
            raise ZooError(f"{what}: trained_betas is not a list of numbers.")
        name = kind if "beta_schedule" in config and kind else "trained"
        return _zero_snr(NoiseSchedule(betas, name), config), _prediction(config, what)
    if kind is None:
        raise ZooError(f"{what}: beta_schedule {config.get('beta_schedule')!r} is not one the atlas knows.")
    start, end = config.get("beta_start"), config.get("beta_end")
    if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in (start, end)):
        raise ZooError(f"{what}: beta_start and beta_end must be numbers.")
    return _zero_snr(make_schedule(kind, steps, start, end), config), _prediction(config, what)


def _zero_snr(schedule: NoiseSchedule, config: Mapping[str, Any]) -> NoiseSchedule:
    """The schedule rescaled to zero terminal SNR where the config asks (`rescale_betas_zero_snr`), its last
    alpha_bar 1e-20 for diffusers' 0 (core/diffusion/schedules.zero_terminal_snr). diffusers' Euler and
    DPM-Solver put 2^-24 there, above the alpha_bar before it: not a schedule; `folder_scheduler` says so."""
    if config.get("rescale_betas_zero_snr") is not True:
        return schedule
    return NoiseSchedule(zero_terminal_snr(schedule.betas, ZERO_SNR_ALPHA_BAR), schedule.name)


def _class(config: Mapping[str, Any]) -> str:
    return plain_label(str(config.get("_class_name") or "DDPMScheduler"), 60)


# diffusers' scheduler classes the Atlas follows: the sampler that runs each one's loop, its default spacing
FOLLOWED = {
    "DDPMScheduler": ("ddpm", "leading"),
    "DDIMScheduler": ("ddim", "leading"),
    "EulerDiscreteScheduler": ("euler", "linspace"),
    "DPMSolverMultistepScheduler": ("dpmpp_2m", "linspace"),
    "FlowMatchEulerDiscreteScheduler": ("euler", "uniform-time"),
}
# fields that change a scheduler's loop in ways the Atlas does not follow, with the value that leaves it alone
_UNFOLLOWED = {
    "use_karras_sigmas": False,
    "use_exponential_sigmas": False,
    "use_beta_sigmas": False,
    "use_lu_lambdas": False,
    "euler_at_final": False,
    "use_dynamic_shifting": False,
    "shift_terminal": None,
    "invert_sigmas": False,
    "stochastic_sampling": False,
    "timestep_type": "discrete",
}


def folder_scheduler(config: Mapping[str, Any], what: str) -> FolderScheduler:
    """What a diffusers scheduler config asks of sampling (core/labs/samplers.FolderScheduler), for DDPM, DDIM,
    Euler, DPM-Solver (multistep) and flow-matching Euler configs; any field the Atlas cannot follow, or another
    scheduler class, is named in a sentence of `unfollowed`. Checked: a bad value is a ZooError naming it."""
    cls = _class(config)
    sampler, spacing = FOLLOWED.get(cls, ("dpmpp_2m", "trailing"))
    unfollowed = (
        []
        if cls in FOLLOWED
        else [
            f"_class_name {cls} is not a scheduler the Atlas follows; sampled "
            "with DPM-Solver++(2M) on the config's spacing instead"
        ]
    )
    for name, neutral in _UNFOLLOWED.items():
        if name in config and config[name] != neutral:
            unfollowed.append(f"{name} {plain_label(str(config[name]), 20)} is not followed")
    flow = is_flow_scheduler(config)
    if not flow:
        spacing = config.get("timestep_spacing", spacing)
        if spacing not in TIMESTEP_SPACINGS:
            raise ZooError(f"{what}: timestep_spacing must be one of {', '.join(TIMESTEP_SPACINGS)}.")
    else:
        unfollowed.append("the flow scheduler's own sigmas are not reproduced: its grid is even in the flow time t")
    offset = config.get("steps_offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= 100:
        raise ZooError(f"{what}: steps_offset must be a whole number from 0 to 100.")
    options: dict[str, Any] = {}
    to_zero, one_more = True, False
    if cls == "DDPMScheduler":
        variance = config.get("variance_type", "fixed_small")
        if variance in ("fixed_small", "fixed_large"):
            options["variance"] = variance.removeprefix("fixed_")
        else:
            unfollowed.append(f"variance_type {plain_label(str(variance), 20)} is not followed (fixed_small used)")
    elif cls == "DDIMScheduler":
        options = {"eta": 0.0, "direction": "model"}
        if spacing != "leading":
            unfollowed.append(
                f"timestep_spacing {spacing}: diffusers' DDIM steps from t to t - T // steps, not to its next "
                "timestep; the Atlas's grid goes through the timesteps (the same where steps divides T, trailing)"
            )
        to_zero = config.get("set_alpha_to_one", True) is not False
    elif cls == "EulerDiscreteScheduler":
        to_zero = config.get("final_sigmas_type", "zero") == "zero"
        if spacing == "linspace":
            unfollowed.append(
                "timestep_spacing linspace: diffusers' Euler timesteps are not rounded, the Atlas's "
                "are (the same where T - 1 is a multiple of steps - 1)"
            )
    elif cls == "DPMSolverMultistepScheduler":
        order, algorithm = config.get("solver_order", 2), config.get("algorithm_type", "dpmsolver++")
        sampler = {1: "ddim", 2: "dpmpp_2m", 3: "dpmpp_3m"}.get(order, "dpmpp_2m")
        one_more = spacing != "trailing"
        to_zero = config.get("final_sigmas_type", "zero") == "zero"
        if algorithm != "dpmsolver++":
            unfollowed.append(f"algorithm_type {plain_label(str(algorithm), 20)} is not followed (dpmsolver++ used)")
        solver_type = config.get("solver_type", "midpoint")
        if (order == 2 and solver_type != "midpoint") or (order == 3 and solver_type != "heun"):
            unfollowed.append(f"solver_type {plain_label(str(solver_type), 20)} is not followed at order {order}")
        if not to_zero and config.get("lower_order_final", True):
            unfollowed.append(
                "lower_order_final with final_sigmas_type sigma_min: under 15 steps diffusers' last "
                "step is first order, the Atlas's is not"
            )
        if config.get("variance_type") is not None:
            unfollowed.append(f"variance_type {plain_label(str(config['variance_type']), 20)} is not followed")
    clip, threshold = None, None
    if cls in ("DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler") and config.get("thresholding"):
        ratio, top = config.get("dynamic_thresholding_ratio", 0.995), config.get("sample_max_value", 1.0)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (ratio, top)):
            raise ZooError(f"{what}: dynamic_thresholding_ratio and sample_max_value must be numbers.")
        if not 0 < ratio <= 1 or not 1 <= top <= 1e6:
            raise ZooError(f"{what}: dynamic_thresholding_ratio must lie in (0, 1] and sample_max_value in [1, 1e6].")
        threshold = (float(ratio), float(top))
    elif cls in ("DDPMScheduler", "DDIMScheduler") and config.get("clip_sample", True):  # diffusers' default: on
        clip = config.get("clip_sample_range", 1.0)
        if not isinstance(clip, (int, float)) or isinstance(clip, bool) or not 0 < clip <= 1e6:
            raise ZooError(f"{what}: clip_sample_range must be a positive number.")
        clip = float(clip)
    if config.get("rescale_betas_zero_snr") is True and cls in (
        "EulerDiscreteScheduler",
        "DPMSolverMultistepScheduler",
    ):
        unfollowed.append(
            f"rescale_betas_zero_snr: {cls} puts its last alpha_bar at 2^-24, above the one before it; the Atlas's "
            "is 1e-20 (the first step's x0 estimate moves by about 2^-12 of x_t)"
        )
    followed = []
    if config.get("trained_betas"):
        followed.append("its trained betas")
    if config.get("rescale_betas_zero_snr") is True:
        followed.append("zero terminal SNR")
    if not flow and (config.get("prediction_type") or "epsilon") != "epsilon":
        followed.append(f"{config['prediction_type']} prediction")
    return FolderScheduler(
        scheduler=cls,
        sampler=sampler,
        options=tuple(options.items()),
        spacing=spacing,
        steps_offset=offset if spacing == "leading" else 0,
        one_more=one_more,
        to_zero=to_zero,
        clip=clip,
        thresholding=threshold,
        followed=tuple(followed),
        unfollowed=tuple(unfollowed),
    )


def _prediction(config: Mapping[str, Any], what: str) -> str:
    prediction = config.get("prediction_type") or "epsilon"
    if prediction not in PREDICTION_TYPES[:3]:  # a flow model's is not named: its scheduler says it
        shown = plain_label(str(prediction), 30)
        raise ZooError(f"{what}: prediction_type {shown} is not one of {', '.join(PREDICTION_TYPES[:3])}.")
    return prediction


def is_flow_scheduler(config: Mapping[str, Any]) -> bool:
    """Whether a scheduler config is one of diffusers' flow-matching schedulers."""
    return "FlowMatch" in str(config.get("_class_name", ""))


def load_model(
    entry: ModelEntry, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> LoadedModel:
    """Fetch (if needed), build, verify and wrap one zoo entry. Raises a ZooError subclass on any failure."""
    start = time.perf_counter()
    files = resolve_files(entry)
    module, file_bytes, flops = build_module(entry, files)
    device = torch.device(device)
    module = module.to(device).eval().requires_grad_(False)  # built in float32; fp16 weights were upcast on load
    if dtype != torch.float32:
        module = module.to(dtype=dtype)
    schedule, denoiser, folder = None, None, None
    if entry.family in ("pixel", "latent"):
        assert entry.schedule is not None and entry.prediction_type is not None
        if entry.schedule.kind is None:
            config_path = _pick(files, "scheduler_config.json")
            if config_path is None:
                raise ZooError(f"{_what(entry)} reads its schedule from a scheduler config it does not list.")
            what = _what(entry)
            config = read_json(config_path, what, entry.roots)
            schedule, _ = schedule_from_scheduler_config(config, what)
            if not (config_path.parent / ATLAS_FILE).is_file():  # ours carries a schedule, not a sampling choice
                folder = folder_scheduler(config, what)
            if folder is not None and entry.sampler is not None:  # a few-step model: the sampler it was made for
                made_for = f"made for {entry.sampler.steps} step" + "s" * (entry.sampler.steps != 1)
                folder = replace(
                    folder,
                    sampler=entry.sampler.name,
                    options=folder.options if folder.sampler == entry.sampler.name else (),
                    followed=(*folder.followed, made_for),
                    steps=entry.sampler.steps,
                )
        else:
            schedule = entry.schedule.build()
        network = MeteredNetwork(module, entry.name, flops or 0)  # each call timed, and bounded by the job's deadline
        denoiser = model_denoiser(network, schedule, entry.prediction_type, entry.num_classes or None)
    return LoadedModel(
        entry=entry,
        module=module,
        device=device,
        files=files,
        schedule=schedule,
        denoiser=denoiser,
        param_count=count_parameters(module),
        file_bytes=file_bytes,
        load_seconds=time.perf_counter() - start,
        flops_per_image=flops,
        scheduler=folder,
    )


def _first_available(repo_id: str, revision: str, candidates: list[list[str]]) -> dict[str, Path]:
    last: HubError | None = None
    for names in candidates:
        try:
            return fetch(repo_id, names, revision=revision)
        except HubError as e:  # the repo answered but lacks this layout: try the next one
            last = e
    assert last is not None
    raise last


def hub_unet_entry(repo_id: str, revision: str = "main") -> ModelEntry:
    """Describe a Hub repo a user typed that holds a diffusers UNet2DModel (pipeline layout or a bare folder).

    Fetches the small config files to learn the layout, shape, schedule and prediction type.
    """
    repo_id, revision = validate_repo_id(repo_id), validate_revision(revision)
    configs = _first_available(repo_id, revision, [["unet/config.json"], ["config.json"]])
    prefix = "unet/" if "unet/config.json" in configs else ""
    unet_config = read_json(next(iter(configs.values())), repo_id)
    check_size(state_size("unet2d", unet_config, repo_id), repo_id)  # before any weight is downloaded
    shape, classes = unet_outline(unet_config, repo_id)
    weights = _first_available(
        repo_id,
        revision,
        [[f"{prefix}diffusion_pytorch_model.safetensors"], [f"{prefix}diffusion_pytorch_model.bin"]],
    )
    try:
        scheduler = _first_available(
            repo_id, revision, [["scheduler/scheduler_config.json"], ["scheduler_config.json"]]
        )
    except HubError:
        scheduler = {}
    files = [f"{prefix}config.json", *weights, *scheduler]
    prediction = "epsilon"
    if scheduler:  # checked now, before any weight is downloaded
        _, prediction = schedule_from_scheduler_config(read_json(next(iter(scheduler.values())), repo_id), repo_id)
    return ModelEntry(
        name=repo_id,
        title=repo_id,
        description=f"Typed by the user: {repo_id}@{revision}",
        family="pixel",
        format="diffusers-pipeline" if prefix else "diffusers-unet",
        files=tuple(files),
        repo=repo_id,
        revision=revision,
        sample_shape=shape,
        prediction_type=prediction,
        schedule=ScheduleSpec() if scheduler else ScheduleSpec("linear", 1000, 1e-4, 0.02),
        num_classes=classes,
    )
