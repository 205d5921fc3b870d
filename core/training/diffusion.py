"""A generic denoiser-training loop (DDPM's objective, any prediction target), with live callbacks.

Each step draws a batch x_0 (and conditioning) from a `BatchFn`, a time t, noise eps, forms
x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps and regresses the model's output on eps, x_0 or
v = sqrt(ab_t) eps - sqrt(1 - ab_t) x_0 (Ho et al. 2020, Algorithm 1; Salimans & Ho 2022 for v).
t is a training step 0 .. T-1, or with `continuous_time` any real number in [0, T-1] whose alpha_bar comes
from `NoiseSchedule.t_to_sigma`, the interpolation `DiscreteTimeDenoiser` inverts at sampling time.

The trainer owns its model, optimizer (AdamW), optional EMA copy and post-hoc EMA streams (posthoc_ema.py),
generator and step count, and changes them only between steps, so a caller may interrupt it between callbacks
(Streamlit's Stop) and call `train` again later to continue with the same optimizer state. Metrics are the run-log
records of DESIGN.md: one dict per `log_every` steps with step, loss, lr, seconds, grad_norm. Each step is
core/training/step.optimizer_step: a loss that is not finite stops the run before the update.

Data-parallel (when a torch.distributed process group of more than one process is running, as under
`torchrun`, see core/training/distributed.py): the model is wrapped in DistributedDataParallel, which averages the
gradients across ranks in every backward pass, so all ranks keep identical weights; each rank draws its own
batches and noise (generator seed + rank), so the global batch is batch_size x world size; the logged loss
is the mean over ranks; only rank 0 keeps an EMA copy (and the post-hoc EMA streams). The flat-buffer trick is
not used then: DDP buckets the gradients itself, and its all-reduce writes into each parameter's own .grad.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from core.diffusion.denoisers import PREDICTION_TYPES
from core.diffusion.flow import TIME_SCALE, check_time_density, training_times
from core.diffusion.schedules import NoiseSchedule
from core.errors import BadInputError
from core.training import distributed
from core.training.lr import LRSchedule
from core.training.posthoc_ema import PowerStreams, gamma_of
from core.training.step import optimizer_step

BatchFn = Callable[[int, torch.Generator], tuple[torch.Tensor, dict[str, torch.Tensor]]]
MAX_STEPS = 200_000


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 50  # linear lr warm-up from 0
    lr_schedule: str = "constant"  # a shape of core/training/lr.py; cosine: down to lr * lr_min_ratio per call
    lr_min_ratio: float = 0.02
    ema_decay: float | None = 0.99  # None: no EMA copy
    posthoc_ema: tuple[float, ...] = ()  # lengths (sigma_rel) of power-function EMA streams (posthoc_ema.py)
    grad_clip: float | None = 1.0
    prediction_type: str = "epsilon"  # or "flow_prediction": flow matching, on a schedule of the flow path
    time_density: str = "uniform"  # flow matching's t: uniform or logit-normal (core/diffusion/flow.py)
    continuous_time: bool = True
    seed: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.prediction_type not in PREDICTION_TYPES:
            raise BadInputError(f"Unknown prediction target {self.prediction_type!r}.")
        check_time_density(self.time_density)
        if not (1 <= self.batch_size <= 65_536 and 0 < self.lr <= 1):
            raise BadInputError("The batch size must be 1-65,536 and the learning rate in (0, 1].")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise BadInputError("The EMA decay must lie in [0, 1).")
        object.__setattr__(self, "posthoc_ema", tuple(float(r) for r in self.posthoc_ema))  # a recipe's list
        for length in self.posthoc_ema:
            gamma_of(length)  # refuses a length out of range
        self.learning_rates()  # refuses an unknown shape

    def learning_rates(self) -> LRSchedule:
        return LRSchedule(
            peak=self.lr, shape=self.lr_schedule, warmup_steps=self.warmup_steps, min_ratio=self.lr_min_ratio
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tensor_batches(data: torch.Tensor) -> BatchFn:
    """Batches of rows drawn uniformly with replacement from an in-memory data set [N, ...]."""

    def batches(size: int, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return data[torch.randint(len(data), (size,), generator=generator)], {}

    return batches


def labelled_batches(x: torch.Tensor, y: torch.Tensor | None, num_classes: int, dropout: float) -> BatchFn:
    """Like `tensor_batches`, with class labels; each label becomes the "no class" label `num_classes` with
    probability `dropout`, so one model learns the conditional and unconditional denoisers that
    classifier-free guidance mixes (Ho & Salimans 2022). Without labels (y None), plain batches."""

    def batches(size: int, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        idx = torch.randint(len(x), (size,), generator=generator)
        if y is None:
            return x[idx], {}
        labels = y[idx].clone()
        labels[torch.rand(size, generator=generator) < dropout] = num_classes
        return x[idx], {"class_labels": labels}

    return batches


def paired_batches(x0: torch.Tensor, noise: torch.Tensor) -> BatchFn:
    """Rows of (data, its own noise) drawn together: a coupling, as rectified flow's reflow trains on it. The
    noise rides in the batch's conditioning under "noise", which the flow loss takes as its eps."""
    if x0.shape != noise.shape:
        raise BadInputError("Each data point needs its own noise of the same shape.")

    def batches(size: int, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        idx = torch.randint(len(x0), (size,), generator=generator)
        return x0[idx], {"noise": noise[idx]}

    return batches


def flatten_parameters(model: nn.Module) -> tuple[nn.Parameter, torch.Tensor] | None:
    """Make every trainable parameter of `model` a view into one flat buffer, and its .grad a view into one
    flat gradient buffer; returns (flat parameter, flat gradient), or None when the parameters differ in
    device or dtype (then nothing changes).

    A small network spends most of a step in per-tensor overheads: AdamW, the gradient norm, the EMA and
    zeroing each loop over every tensor. Over one flat buffer each is one operation (the "contiguous
    gradients" trick of Apex and DeepSpeed), which makes the toy MLP's training step about twice as fast.
    The model's state_dict tensors then share storage: clone them before saving with safetensors.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params or len({(p.device, p.dtype) for p in params}) != 1:
        return None
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat.data[offset : offset + n].view_as(p)
        p.grad = flat.grad[offset : offset + n].view_as(p)  # autograd accumulates into it in place
        offset += n
    return flat, flat.grad


class DiffusionTrainer:
    """Trains `model(x_t, t, **cond)` on `schedule`; see the module docstring."""

    def __init__(self, model: nn.Module, schedule: NoiseSchedule, config: TrainConfig, batches: BatchFn) -> None:
        self.model, self.schedule, self.config, self.batches = model, schedule, config, batches
        ctx = distributed.context()
        self.rank, self.world_size = ctx.rank, ctx.world_size
        keep_ema = config.ema_decay is not None and ctx.is_main
        self.ema = copy.deepcopy(model).requires_grad_(False) if keep_ema else None
        # Post-hoc EMA's streams (rank 0 only, like the EMA copy): any EMA length can be rebuilt from their snapshots.
        self.posthoc = PowerStreams(model, config.posthoc_ema) if config.posthoc_ema and ctx.is_main else None
        self._flat = flatten_parameters(model) if ctx.world_size == 1 else None
        self._ema_flat = None
        if self.ema is not None and self._flat is not None:
            self._ema_flat = flatten_parameters(self.ema.requires_grad_(True))
            self.ema.requires_grad_(False)
        params = [self._flat[0]] if self._flat is not None else list(model.parameters())
        self.optimizer = torch.optim.AdamW(
            params,
            lr=config.lr,
            betas=tuple(config.adam_betas),
            weight_decay=config.weight_decay,
            fused=params[0].device.type in ("cpu", "cuda"),
        )
        # What the loss calls: the model itself, or its DDP wrapper (which starts by copying rank 0's weights
        # to every rank, then averages gradients in backward).
        self._net: nn.Module = model
        if ctx.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            device = params[0].device
            self._net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        self.generator = torch.Generator().manual_seed(config.seed + ctx.rank)  # each rank its own batches
        self.step = 0
        self.seconds = 0.0
        self.metrics: list[dict[str, float]] = []
        self.learning_rates = config.learning_rates()
        self._pending: list[tuple[float, float]] = []  # (loss, grad norm) since the last record
        self._cycle = (0, 0)  # (first step, length) of the current `train` call, for the lr schedule

    @property
    def sampling_model(self) -> nn.Module:
        """The weights to sample with: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.model

    def lr_at(self, step: int) -> float:
        """Learning rate of `step`: warm-up from the run's start, then the shape over this `train` call."""
        return self.learning_rates.lr(step, *self._cycle)

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """alpha_bar at (possibly fractional) t, float32: 1 / (1 + sigma(t)^2)."""
        return (1 / (1 + self.schedule.t_to_sigma(t.cpu()) ** 2)).float()

    def loss(self, x0: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean squared error of the model's prediction at random t and noise."""
        if self.config.prediction_type == "flow_prediction":
            return self.flow_loss(x0, cond)
        n, T, g = len(x0), self.schedule.num_steps, self.generator
        if self.config.continuous_time:
            # Low-discrepancy times (Kingma et al. 2021, "Variational Diffusion Models", appendix I.1): one
            # uniform offset shifted by i / n, so each batch covers [0, T-1] evenly and the loss is less noisy.
            t = ((torch.rand(1, generator=g) + torch.arange(n) / n) % 1.0) * (T - 1)
        else:
            t = torch.randint(T, (n,), generator=g).float()
        ab = self.alpha_bar(t).to(x0.device).reshape(-1, *(1,) * (x0.ndim - 1))
        eps = torch.randn(x0.shape, generator=g).to(x0.device)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        kind = self.config.prediction_type
        target = eps if kind == "epsilon" else x0 if kind == "sample" else ab.sqrt() * eps - (1 - ab).sqrt() * x0
        return torch.mean((self._net(x_t, t.to(x0.device), **cond) - target) ** 2)

    def flow_loss(self, x0: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """Flow matching (Lipman et al. 2023): x_t = (1 - t) x_0 + t eps, regress the model (fed TIME_SCALE t)
        on the velocity eps - x_0, with t drawn from the config's density and shifted by the schedule's shift
        (1 but on a shifted flow path, whose sampling grids then match the training times)."""
        t = training_times(len(x0), self.generator, self.config.time_density, self.schedule.shift).to(x0.device)
        cond = dict(cond)
        eps = cond.pop("noise", None)  # a coupling's own noise (paired_batches), else fresh noise
        eps = torch.randn(x0.shape, generator=self.generator).to(x0.device) if eps is None else eps.to(x0.device)
        tb = t.reshape(-1, *(1,) * (x0.ndim - 1))
        x_t = (1 - tb) * x0 + tb * eps
        return torch.mean((self._net(x_t, TIME_SCALE * t, **cond) - (eps - x0)) ** 2)

    def train(
        self,
        steps: int,
        callback: Callable[[DiffusionTrainer], None] | None = None,
        every: int = 100,
    ) -> None:
        """Run `steps` more optimisation steps; call `callback(self)` every `every` steps and at the end."""
        if steps < 1 or self.step + steps > MAX_STEPS:
            raise BadInputError(
                f"Train for 1 to {MAX_STEPS:,} steps in all (asked: {steps:,} more after {self.step:,})."
            )
        start = self.step
        self._cycle = (start, steps)
        clip = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        self._net.train()
        try:
            while self.step < start + steps:
                self._one_step(clip)
                if self.step % self.config.log_every == 0 or self.step == start + steps:
                    self._log()
                if callback is not None and (self.step % every == 0 or self.step == start + steps):
                    callback(self)  # may raise (a UI interrupt): the state is consistent between steps
        finally:
            self._net.eval()

    def _one_step(self, clip: float) -> None:
        tic = time.perf_counter()
        self.learning_rates.apply(self.optimizer, self.step, *self._cycle)
        x0, cond = self.batches(self.config.batch_size, self.generator)
        loss = self.loss(x0, cond)
        grad_norm = optimizer_step(
            loss,
            self.optimizer,
            self.step + 1,
            clip=clip,
            flat_grad=self._flat[1] if self._flat is not None else None,
            across_ranks=self.world_size > 1,
        )
        self._update_ema()
        self.step += 1
        if self.posthoc is not None:
            self.posthoc.update(self.model, self.step)
        self.seconds += time.perf_counter() - tic
        self._pending.append((loss.item(), grad_norm.item()))

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema is None:
            return
        # Warm-up of the decay (as in TensorFlow's ExponentialMovingAverage with num_updates), so that an
        # early stop does not return weights dominated by the random initialisation.
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        if self._ema_flat is not None:
            self._ema_flat[0].data.lerp_(self._flat[0].data, 1 - decay)
        else:
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1 - decay)

    def _log(self) -> None:
        if not self._pending:
            return
        losses, norms = zip(*self._pending, strict=True)
        loss = sum(losses) / len(losses)
        if self.world_size > 1:  # the loss over the global batch (the gradient norm is the same on every rank)
            total = torch.tensor([loss], dtype=torch.float64, device=self._device())
            torch.distributed.all_reduce(total)
            loss = total.item() / self.world_size
        self.metrics.append(
            {
                "step": self.step,
                "loss": loss,
                "lr": self.lr_at(self.step - 1),
                "seconds": round(self.seconds, 4),
                "grad_norm": sum(norms) / len(norms),
            }
        )
        self._pending = []

    def _device(self) -> torch.device:
        """Where collective tensors live: the model's device (nccl needs CUDA tensors, gloo takes CPU ones)."""
        return next(self.model.parameters()).device
