"""Post-hoc EMA of a run's checkpoints: the snapshots its training saved (phema-<r>.safetensors in every
checkpoint folder, core/training/posthoc_ema.py), and the EMA of any length at a checkpoint's step rebuilt from
them as a model that samples like any other (`posthoc_model`) or as a checkpoint folder (`python -m zoo
posthoc-ema`).

Every file is opened once through core/paths.open_inside (`roots` None on the command line, the allowed roots in
the app) and read without unpickling; a snapshot's length, exponent and step come from its safetensors header and
are checked before its tensors are read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from core.errors import AtlasError
from core.runs.checkpoints import ATLAS_FILE, as_json
from core.runs.ours import saved_checkpoints
from core.runs.record import checkpoint_step
from core.training.posthoc_ema import FILE_PREFIX, Fit, coefficients, combine, gamma_of
from zoo.errors import BadInputError, CheckpointError
from zoo.loaders import LoadedModel, load_model, read_json
from zoo.local import local_entry
from zoo.paths import fd_path
from zoo.weights import load_into, open_weights, read_state_dict

MAX_SNAPSHOTS = 256  # read into memory together for one rebuild


@dataclass(frozen=True)
class Snapshot:
    """One stream's weights saved at one step."""

    step: int
    sigma_rel: float
    gamma: float
    path: Path


def snapshots_in(folders: Iterable[Path], roots: Sequence[Path] | None) -> list[Snapshot]:
    """The post-hoc EMA snapshots of checkpoint folders (a run's checkpoints/step_N/), in step order; a file whose
    header does not say a length, exponent and step that agree is a CheckpointError naming it."""
    found = []
    for folder in folders:
        for path in sorted(Path(folder).glob(f"{FILE_PREFIX}*.safetensors")):
            found.append(_header(path, roots))
    return sorted(found, key=lambda s: (s.step, s.sigma_rel))


def run_snapshots(folder: Path, roots: Sequence[Path] | None) -> list[Snapshot]:
    """The snapshots of the whole run that the checkpoint `folder` (RUN/checkpoints/step_N) belongs to."""
    if checkpoint_step(Path(folder)) is None:
        raise CheckpointError(f"{Path(folder).name} is not a run's checkpoint (RUN/checkpoints/step_N).")
    return snapshots_in([f for _, f in saved_checkpoints(Path(folder).parent.parent)], roots)


def _header(path: Path, roots: Sequence[Path] | None) -> Snapshot:
    what = f"{path.parent.name}/{path.name}"
    with open_weights(path, roots) as handle:
        try:
            with safe_open(fd_path(handle), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as e:  # safetensors raises its own error types for every kind of damage
            raise CheckpointError(f"{what} is damaged or not a safetensors file ({e}).") from e
    try:
        sigma_rel, gamma, step = float(meta["sigma_rel"]), float(meta["gamma"]), int(meta["step"])
        ok = math.isfinite(gamma) and step >= 1 and math.isclose(gamma_of(sigma_rel), gamma, rel_tol=1e-6)
    except (KeyError, ValueError, TypeError, ArithmeticError, AtlasError):  # AtlasError: a length out of range
        ok = False
    if not ok:
        raise CheckpointError(f"{what} does not say a post-hoc EMA length, exponent and step that agree.")
    folder_step = checkpoint_step(path.parent)
    if folder_step is not None and folder_step != step:
        raise CheckpointError(f"{what} says step {step:,} but lies in the checkpoint of step {folder_step:,}.")
    return Snapshot(step, sigma_rel, gamma, path)


def fit(snapshots: Sequence[Snapshot], step: int, sigma_rel: float) -> Fit:
    """The coefficients that rebuild the EMA of length `sigma_rel` at `step` from `snapshots`."""
    return coefficients([(s.step, s.gamma) for s in snapshots], step, sigma_rel)


def rebuilt_states(
    snapshots: Sequence[Snapshot], step: int, lengths: Sequence[float], roots: Sequence[Path] | None
) -> dict[float, tuple[dict[str, torch.Tensor], Fit]]:
    """The weights of each EMA length at `step` (and how well its profile was fitted), each snapshot read once."""
    fits = {r: fit(snapshots, step, r) for r in lengths}
    used = [k for k in range(len(snapshots)) if any(f.coefficients[k] != 0 for f in fits.values())]
    if len(used) > MAX_SNAPSHOTS:
        raise CheckpointError(f"This rebuild would read {len(used)} snapshots; at most {MAX_SNAPSHOTS} are read.")
    states = {}
    for k in used:
        with open_weights(snapshots[k].path, roots) as handle:
            states[k] = read_state_dict(handle, snapshots[k].path.name)
    return {
        r: (combine([states[k] for k in used], [float(f.coefficients[k]) for k in used]), f) for r, f in fits.items()
    }


def length_label(sigma_rel: float) -> str:
    return f"EMA σ_rel {sigma_rel:.3f}"


def posthoc_models(
    folder: Path,
    snapshots: Sequence[Snapshot],
    lengths: Sequence[float],
    *,
    roots: Sequence[Path] | None,
    device: str = "cpu",
) -> dict[float, tuple[LoadedModel, Fit]]:
    """The checkpoint `folder` with its weights replaced by each rebuilt EMA length (at the folder's step, from
    the snapshots taken up to it): models that sample, are measured and exported like the checkpoint itself."""
    step = checkpoint_step(Path(folder))
    if step is None:
        raise CheckpointError(f"{Path(folder).name} is not a run's checkpoint (RUN/checkpoints/step_N).")
    entry = local_entry(str(folder), trusted=roots is None)
    out = {}
    for r, (state, f) in rebuilt_states(snapshots, step, lengths, roots).items():
        model = load_model(
            replace(entry, name=f"{entry.name}#phema={r:.4f}", title=f"{entry.title}, {length_label(r)}"), device
        )
        load_into(model.module, state, model.title)
        out[r] = (model, f)
    return out


def describe(snapshots: Sequence[Snapshot]) -> str:
    """'2 streams (σ_rel 0.050, 0.100) at 8 steps (500-4,000)' or 'none'."""
    if not snapshots:
        return "none"
    lengths = sorted({s.sigma_rel for s in snapshots})
    steps = sorted({s.step for s in snapshots})
    return (
        f"{len(lengths)} stream{'s' * (len(lengths) > 1)} (σ_rel {', '.join(f'{r:.3f}' for r in lengths)}) at "
        f"{len(steps)} step{'s' * (len(steps) > 1)} ({steps[0]:,}-{steps[-1]:,})"
    )


def save_rebuilt(model: LoadedModel, length: float, fit: Fit, folder: Path, out: Path) -> Path:
    """Write a rebuilt model as a checkpoint folder `out` that loads like its checkpoint `folder` (here, in
    diffusers): the same config.json and scheduler_config.json, the rebuilt weights (float32) under the same file
    name, and atlas.json saying which EMA it holds. `out` must not exist yet."""
    out.mkdir(parents=True)
    for name, path in model.files.items():
        if name.endswith(".safetensors"):
            (out / Path(name).name).write_bytes(safetensors_bytes(_cpu_state(model.module)))
        else:
            (out / Path(name).name).write_bytes(path.read_bytes())
    atlas = read_json(folder / ATLAS_FILE, folder.name) if (folder / ATLAS_FILE).is_file() else {}
    atlas |= {
        "weights": "post-hoc EMA",
        "posthoc_ema_rebuilt": {
            "sigma_rel": length,
            "gamma": gamma_of(length),
            "step": checkpoint_step(folder),
            "profile_error": fit.profile_error,
            "snapshots_used": int((fit.coefficients != 0).sum()),
        },
    }
    (out / ATLAS_FILE).write_bytes(as_json(atlas))
    return out


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in module.state_dict().items()}


def rebuild(folder: Path, lengths: Sequence[float], out: Path, log=print) -> list[dict[str, object]]:
    """`python -m zoo posthoc-ema RUN@STEP --lengths ...`: each length rebuilt at the checkpoint `folder` and
    written as OUT/ema-<length>/ (a checkpoint folder: `zoo compare` and the pages take it, diffusers loads it);
    returns a row per length. Nothing is written unless every length can be rebuilt."""
    if not lengths:
        raise BadInputError("Name at least one EMA length (--lengths 0.05,0.1).")
    for length in lengths:
        gamma_of(length)  # a sentence for a length out of range, before any work
    targets = {r: out / f"ema-{r:.3f}" for r in lengths}
    if len(set(targets.values())) < len(targets):
        raise BadInputError("Two lengths round to the same folder name (3 decimals); name distinct lengths.")
    if taken := [p for p in targets.values() if p.exists()]:
        raise BadInputError(f"{taken[0]} exists already; choose another --out.")
    snaps = run_snapshots(folder, None)
    log(f"{folder}: snapshots {describe([s for s in snaps if s.step <= (checkpoint_step(folder) or 0)])}")
    rows = []
    for r, (model, f) in posthoc_models(folder, snaps, lengths, roots=None).items():
        save_rebuilt(model, r, f, folder, targets[r])
        used = int((f.coefficients != 0).sum())
        rows.append(
            {
                "sigma_rel": r,
                "gamma": round(gamma_of(r), 4),
                "profile_error": f.profile_error,
                "snapshots": used,
                "folder": str(targets[r]),
            }
        )
        fitted = f"profile error {f.profile_error:.2%} from {used} snapshots"
        log(f"σ_rel {r:g} (γ {gamma_of(r):.2f}): {fitted} -> {targets[r]}")
    return rows
