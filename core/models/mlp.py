"""A small residual MLP that predicts epsilon, x_0 or v from (x_t, t[, class label][, span]).

Used for the toy 2-D/3-D data and, with a class embedding, for diffusion in a VAE's latent space. The
network is time-conditioned the usual way (Ho et al. 2020, appendix B, with an MLP in place of the UNet):
an embedding of t is projected and added to the hidden state at the input and in every residual block.
The same weights serve every prediction target; only the training loss tells them apart.

With `span_embedding`, a second time input, the span of a step (shortcut models' step size d, Frans et al.
2024; MeanFlow's t - r, Geng et al. 2025; see core/training/few_step/), has its own embedding and projection,
summed with the first; its projection starts at zero, so at first the span changes nothing.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from core.errors import BadInputError

TIME_EMBEDDINGS = {
    "sinusoidal": "Sinusoidal features of t (the Transformer / DDPM embedding)",
    "fourier": "Random Fourier features of t / T (Tancik et al. 2020; Song et al. 2021)",
    "raw": "t / T itself, one number (no embedding)",
}
MAX_WIDTH, MAX_DEPTH = 1024, 12


@dataclass(frozen=True, kw_only=True)
class MLPConfig:
    """Everything needed to rebuild the network (saved beside its weights)."""

    dim: int  # data dimension D
    width: int = 128
    depth: int = 3  # residual blocks
    time_embedding: str = "sinusoidal"
    embed_dim: int = 32
    num_steps: int = 1000  # T of the schedule: t / T lies in [0, 1)
    num_classes: int | None = None  # with classes, label num_classes means "no class" (for CFG)
    fourier_scale: float = 16.0
    span_embedding: str | None = None  # embedding of a second time input (a span, in t's units); None: none

    def __post_init__(self) -> None:
        if self.time_embedding not in TIME_EMBEDDINGS:
            raise BadInputError(f"Unknown time embedding {self.time_embedding!r}; choose {', '.join(TIME_EMBEDDINGS)}.")
        if self.span_embedding is not None and self.span_embedding not in TIME_EMBEDDINGS:
            raise BadInputError(f"Unknown span embedding {self.span_embedding!r}; choose {', '.join(TIME_EMBEDDINGS)}.")
        if not (self.dim >= 1 and 1 <= self.width <= MAX_WIDTH and 1 <= self.depth <= MAX_DEPTH):
            raise BadInputError(f"MLP width must be 1-{MAX_WIDTH} and depth 1-{MAX_DEPTH}.")
        if self.embed_dim < 2 or self.embed_dim % 2:
            raise BadInputError("The time embedding size must be an even number of at least 2.")

    def to_dict(self) -> dict:
        return asdict(self)

    def to_saved(self) -> dict:
        """The settings as a checkpoint's config.json holds them, named like diffusers names its classes."""
        return {"_class_name": "MLPDenoiser", **self.to_dict()}


class TimeEmbedding(nn.Module):
    """t (float, [B], in training steps 0 .. T-1) -> features [B, E]."""

    def __init__(self, kind: str, embed_dim: int, num_steps: int, fourier_scale: float) -> None:
        super().__init__()
        self.kind, self.num_steps = kind, num_steps
        half = embed_dim // 2
        # sinusoidal: periods 2 pi .. 2 pi 10^4 in units of t scaled to 0..1000; fourier: drawn in reset_parameters
        sinusoidal = torch.exp(-math.log(10_000.0) * torch.arange(half) / half)
        freqs = sinusoidal if kind == "sinusoidal" else torch.zeros(half)
        self.register_buffer("freqs", freqs)
        self.fourier_scale = fourier_scale
        self.out_dim = 1 if kind == "raw" else embed_dim

    def reset_parameters(self, generator: torch.Generator) -> None:
        if self.kind == "fourier":
            self.freqs.copy_(2 * math.pi * self.fourier_scale * torch.randn(len(self.freqs), generator=generator))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        u = t.float().reshape(-1, 1) / self.num_steps  # in [0, 1)
        if self.kind == "raw":
            return u
        angles = u * (1000.0 if self.kind == "sinusoidal" else 1.0) * self.freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class MLPDenoiser(nn.Module):
    """model(x_t [B, D], t [B][, class_labels [B]][, span [B]]) -> prediction [B, D].

    One linear map turns the time embedding into a shift for the input and for every block, so time
    conditioning costs one matrix product however deep the network is (it dominates nothing on a CPU):
        c_0 .. c_k = W_t E(t) [+ C(label)] [+ W_s E_s(span)],  h = W_in x + c_0,
        h <- h + W_2 SiLU(W_1 SiLU(h) + c_k),  out = W_out SiLU(h).
    The output layer starts at zero, so an untrained model predicts 0 (a sane epsilon, x_0 or v); so does
    the span's projection W_s, so a span-conditioned network starts as the plain one.
    """

    def __init__(self, config: MLPConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        c = self.config = config
        self.time = TimeEmbedding(c.time_embedding, c.embed_dim, c.num_steps, c.fourier_scale)
        self.time_proj = nn.Linear(self.time.out_dim, c.width * (c.depth + 1))
        self.classes = nn.Embedding(c.num_classes + 1, c.width * (c.depth + 1)) if c.num_classes else None
        self.inp = nn.Linear(c.dim, c.width)
        self.fc1 = nn.ModuleList(nn.Linear(c.width, c.width) for _ in range(c.depth))
        self.fc2 = nn.ModuleList(nn.Linear(c.width, c.width) for _ in range(c.depth))
        self.out = nn.Linear(c.width, c.dim)
        self.act = nn.SiLU()
        # registered last, so that the layers above draw the same initial weights with or without it
        self.span, self.span_proj = None, None
        if c.span_embedding is not None:
            self.span = TimeEmbedding(c.span_embedding, c.embed_dim, c.num_steps, c.fourier_scale)
            self.span_proj = nn.Linear(self.span.out_dim, c.width * (c.depth + 1))
        self.reset_parameters(generator or torch.Generator().manual_seed(0))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default Linear init, drawn from `generator` (so the seed fixes the weights)."""
        self.time.reset_parameters(generator)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                bound = 1 / math.sqrt(m.in_features)
                m.weight.uniform_(-bound, bound, generator=generator)
                m.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(m, nn.Embedding):
                m.weight.normal_(0.0, 1.0, generator=generator)
        self.out.weight.zero_()
        self.out.bias.zero_()
        if self.span is not None:
            self.span.reset_parameters(generator)
            self.span_proj.weight.zero_()
            self.span_proj.bias.zero_()

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        span: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`span` (in t's units, 0 when not given) only for a network built with `span_embedding`."""
        shifts = self.time_proj(self.time(_batch_times(t, x)))
        if self.span is not None:
            span = torch.zeros(()) if span is None else span
            shifts = shifts + self.span_proj(self.span(_batch_times(span, x)))
        elif span is not None:
            raise BadInputError("This network has no span input (build it with span_embedding).")
        if self.classes is not None:
            if class_labels is None:  # no label given: the "no class" row, as in CFG's unconditional half
                class_labels = torch.full((len(x),), self.config.num_classes, device=x.device)
            shifts = shifts + self.classes(class_labels.long())
        shifts = shifts.chunk(self.config.depth + 1, dim=1)
        h = self.inp(x) + shifts[0]
        for fc1, fc2, shift in zip(self.fc1, self.fc2, shifts[1:], strict=True):
            h = h + fc2(self.act(fc1(self.act(h)) + shift))
        return self.out(self.act(h))


def _batch_times(t: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """A time input as [B], or [1] when one time serves the whole batch (sampling): embedded once, broadcast."""
    t = torch.as_tensor(t, device=x.device).reshape(-1).expand(len(x))
    if not torch.is_grad_enabled() and len(t) > 1 and bool((t == t[0]).all()):
        return t[:1]
    return t


@functools.cache
def parameter_count(config: MLPConfig) -> int:
    """Trainable parameters of the network `config` describes (built once per config to count them)."""
    with torch.random.fork_rng(devices=[]):  # its layers draw from the global generator, which sessions share
        return sum(p.numel() for p in MLPDenoiser(config).parameters())


def build_mlp(config: MLPConfig, seed: int = 0) -> MLPDenoiser:
    return MLPDenoiser(config, torch.Generator().manual_seed(seed))
