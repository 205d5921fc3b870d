"""Progressive distillation (Salimans & Ho 2022, "Progressive distillation for fast sampling of diffusion models")
on the flow path.

A teacher sampled with N even Euler steps (on this path Euler is DDIM: both move x_t to (1 - t') x_0_hat +
t' eps_hat) is distilled into a student that takes N / 2: at a time t = i / (N/2) of the student's grid, with
step dt = 1 / (N/2), two teacher steps
    x' = x_t - dt/2 v_T(x_t, t),   x'' = x' - dt/2 v_T(x', t - dt/2)
give the target of one student step, solved for the student's prediction: the velocity that lands on x'' in
one step,
    v_tgt = (x_t - x'') / dt,
which is exactly Salimans & Ho's DDIM solve x_tilde = (x'' - (t''/t) x_t) / ((1 - t'') - (t''/t)(1 - t)) written in
the velocity (x_0_hat = x_t - t v_tgt). The student regresses |v_S(x_t, t) - v_tgt|^2, flow matching's units.
Each round lasts total_steps / log2(N) optimiser steps; then the student (its EMA weights) becomes the
teacher, the student starts again from those weights, and the steps halve: 32 -> 16 -> ... -> 1.
Each finished round's student is kept, so `sample(noise, k)` uses the student made for k steps when there is
one, else the current student with k Euler steps.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from core.errors import BadInputError
from core.models.mlp import MLPConfig, MLPDenoiser, build_mlp
from core.training.diffusion import BatchFn, TrainConfig
from core.training.few_step.base import FewStepTrainer, Field, column, euler_sample, net_velocity, on_path

MAX_TEACHER_STEPS = 1024


def progressive_target(teacher: Field, x: torch.Tensor, t: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """The velocity of one step from t to t - dt (both [B]) that lands where two teacher Euler steps of dt / 2 do."""
    h = column(dt, x) / 2
    x_mid = x - h * teacher(x, t)
    x_end = x_mid - h * teacher(x_mid, t - dt / 2)
    return (x - x_end) / (2 * h)


class ProgressiveDistillation(FewStepTrainer):
    """Progressive distillation from a flow teacher sampled with `teacher_steps` Euler steps (a power of two);
    see the module docstring."""

    method = "progressive"

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        batches: BatchFn,
        *,
        teacher: nn.Module,
        total_steps: int,
        teacher_steps: int = 32,
    ) -> None:
        if not (2 <= teacher_steps <= MAX_TEACHER_STEPS and teacher_steps & (teacher_steps - 1) == 0):
            raise BadInputError(f"The teacher's steps must be a power of two, 2 to {MAX_TEACHER_STEPS:,}.")
        super().__init__(model, config, batches)
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)  # the caller's model stays as it is
        self.teacher_steps = teacher_steps
        self.rounds = int(math.log2(teacher_steps))
        self.round_length = max(1, total_steps // self.rounds)
        self.round = 0
        self.students: dict[int, nn.Module] = {}  # steps -> the finished student for that many steps

    @classmethod
    def create(
        cls, *, net: MLPConfig, config: TrainConfig, batches: BatchFn, teacher: MLPDenoiser | None, **options
    ) -> ProgressiveDistillation:
        if teacher is None:
            raise BadInputError("Progressive distillation needs a trained flow-matching teacher.")
        student = build_mlp(net, config.seed)
        student.load_state_dict(teacher.state_dict())  # round 1's student starts as its teacher
        return cls(student, config, batches, teacher=teacher, **options)

    @property
    def student_steps(self) -> int:
        """How many steps the student of the current round learns to sample in."""
        return self.teacher_steps >> (self.round + 1)

    def next_round(self) -> None:
        """Keep the student, make it the teacher and restart the student from it, with half the steps."""
        done = copy.deepcopy(self.sampling_model).eval().requires_grad_(False)
        self.students[self.student_steps] = done
        self.teacher = done
        with torch.no_grad():
            self.model.load_state_dict(done.state_dict())  # copies into the flat buffer's views in place
        self.round += 1

    def loss(self, x0: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        while self.round < min(self.step // self.round_length, self.rounds - 1):
            self.next_round()  # between two optimiser steps: the state stays consistent
        eps, _ = self.noise_for(x0, cond)
        k = self.student_steps
        i = torch.randint(1, k + 1, (len(x0),), generator=self.generator)
        t, dt = (i / k).to(x0.device, x0.dtype), torch.full((len(x0),), 1 / k, device=x0.device, dtype=x0.dtype)
        x_t = on_path(x0, eps, t)
        with torch.no_grad():
            target = progressive_target(lambda x, tt: net_velocity(self.teacher, x, tt), x_t, t, dt)
        return torch.mean((net_velocity(self._net, x_t, t) - target) ** 2)

    def sample(self, noise: torch.Tensor, nfe: int, generator: torch.Generator | None = None) -> torch.Tensor:
        net = self.students.get(nfe, self.sampling_model)
        with torch.inference_mode():
            return euler_sample(lambda x, t: net_velocity(net, x, t), noise, nfe)
