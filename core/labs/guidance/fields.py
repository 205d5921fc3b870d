"""The latent model's guided fields: the conditional field, the reference one (unconditional, or autoguidance's
weaker model) and the guided one, for any guidance method, over the plane of the standardised latents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from core.device import torch_threads
from core.diffusion.fields import DriftField, drift_field, mesh
from core.diffusion.guidance import Guidance
from core.errors import BadInputError
from core.labs.guidance.sweep import same_latent
from core.labs.latent import NUM_CLASSES, LatentDiffusion

GRID_STEPS = 20  # CFG++'s scale follows the step it is in: the fields take it from a 20-step grid


def latent_fields(
    model: LatentDiffusion,
    label: int,
    guidance: float | Guidance,
    sigmas: Sequence[float],
    points: torch.Tensor,
    side: int = 20,
    guide: LatentDiffusion | None = None,
) -> list[tuple[str, DriftField]]:
    """The conditional (class `label`), reference and guided drift fields of the latent model at the noise
    levels `sigmas`, on a mesh over the standardised latent `points` [N, 2] (their central 98% on each axis),
    in latent units. A scale alone is CFG; the reference is the unconditional field, or for autoguidance the
    weaker model `guide`'s conditional one. A field is one evaluation per point, so APG's running update plays
    no part (momentum 0); CFG++ takes its scale from a GRID_STEPS-step grid."""
    if not 0 <= label < NUM_CLASSES:
        raise BadInputError(f"The class must be 0-{NUM_CLASSES - 1}.")
    g = guidance if isinstance(guidance, Guidance) else Guidance(scale=float(guidance))
    g = replace(g, momentum=0.0)
    T1 = model.schedule.num_steps - 1
    times = (model.schedule.sigma_to_t(torch.as_tensor(sigmas, dtype=torch.float64)) / T1).clamp(1e-6, 1)
    _, grid = mesh(points.quantile(0.01, dim=0), points.quantile(0.99, dim=0), side)  # where the digits are
    size = len(times) * len(grid)
    weak = None if guide is None else same_latent(model, guide)
    if g.method == "auto":
        if guide is None:
            raise BadInputError("Autoguidance needs a guide: a weaker latent model.")
        reference = ("guide (weaker model): class " + str(label), guide.conditioned(label, size, 1.0))
    else:
        reference = ("unconditional", model.conditioned(None, size, 1.0))
    steps = model.schedule.capped_sigmas(GRID_STEPS)
    panels = [
        (f"conditional: class {label}", model.conditioned(label, size, 1.0)),
        reference,
        (f"guided: {g.label()}", model.conditioned(label, size, g, guide=weak, sigmas=steps)),
    ]
    with torch_threads(1):
        return [
            (title, drift_field(d, model.schedule, grid, times).rescaled(model.mean.double(), model.std.double()))
            for title, d in panels
        ]
