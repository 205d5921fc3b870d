"""Few steps, one step: the few-step methods beside reflow and coupled flow matching on the toy lab's data, each
checked against the exact flow map where the data is a Gaussian mixture.

`compare_few_step` trains a flow-matching teacher (or reuses the lab's own flow model), then each chosen method
with the same data, network size, steps, batch and seed:
- the few-step trainers of core/training/few_step (consistency distillation and training, shortcut, MeanFlow,
  progressive distillation), each sampled by its own multistep rule;
- flow matching whose minibatches pair data and noise by a coupling (core/diffusion/couplings: independent,
  minibatch OT, Sinkhorn), in chunks of COUPLING_CHUNK pairs (the cost matrix and the assignment grow as its
  square and cube), sampled with Euler;
- rectified flow's reflow of the teacher (core/labs/objectives.reflow), sampled with Euler.
Every model is sampled from the same noise at NFE 1, 2, 4, 8 and measured by SW2 and MMD to fresh data (with what
two fresh data sets read, the reference band); flow models also by how straight their paths are (objectives'
chord ratio and curvature), and the pairs they trained on by how often their straight paths cross.

Exact answers (`error_field`, `meanflow_error`): on a mixture, each model's one-step map g(x_t, t) -> x_0 against
the ideal consistency function f(x_t, t) = Phi_{t -> 0}(x_t) (core/diffusion/flow_map), and MeanFlow's
u(z, 0, t) against the exact average velocity. `gaussian_study`: flow matching with minibatch OT pairs between
two Gaussians, its one-step map against the closed-form OT map (core/diffusion/gaussian_ot) as the OT batch grows.
Everything is in standardised units (core/data/standardize.py) but the samples, kept in the data's units.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from core.data.standardize import Standardizer
from core.data.toy import PointCloud
from core.device import torch_threads
from core.diffusion import couplings, flow_map
from core.diffusion.gaussian_ot import Gaussian, ot_map
from core.diffusion.mixture import GaussianMixture
from core.errors import BadInputError
from core.labs import objectives as ob
from core.labs.toy import ToyRun, ToySettings, training_seconds
from core.metrics.points import mmd, sliced_wasserstein
from core.metrics.reference import ReferenceBand, reference_bands
from core.models.mlp import MLPConfig, build_mlp
from core.training import budget
from core.training.diffusion import BatchFn, DiffusionTrainer, TrainConfig, tensor_batches
from core.training.few_step import base, methods
from core.training.few_step.consistency import consistency_function
from core.training.few_step.meanflow import time_input

TEACHER = "teacher"
COUPLED = "coupled"
REFLOW = "reflow"
TITLES = {
    TEACHER: "Flow matching (teacher)",
    **methods.TITLES,
    COUPLED: "Flow matching, coupled pairs",
    REFLOW: "Reflow of the teacher",
}
CHOOSABLE = tuple(k for k in TITLES if k != TEACHER)
COUPLING_TITLES = {"independent": "independent", "minibatch_ot": "minibatch OT", "sinkhorn": "Sinkhorn"}
FLOWS = (TEACHER, COUPLED, REFLOW)  # sampled with Euler: they have paths to measure
NFE_LADDER = base.NFE_LADDER  # 1, 2, 4, 8
COUPLING_CHUNK = 128  # pairs coupled at once inside a training batch
SINKHORN_REG = 0.5  # relative to the median squared cost: between independent (large) and exact OT (small)
REFLOW_PAIRS = 2000
MAX_STEPS = 5000
MAX_POINTS = 5000
KEEP_SAMPLES = 1000  # samples kept per NFE for the figures
KEEP_PAIRS = 150
MEASURE_SECONDS = (
    1.0  # about what measuring one model takes (its ladder, paths and crossings)  # training pairs kept for the figure
)
# A training step of each method against one flow-matching step of the same network and batch (measured on two
# moons, MLP 64 x 2, batch 512: CD runs the teacher's Heun step and the EMA target, MeanFlow a JVP)
STEP_COST = {
    TEACHER: 1.0,
    "consistency_distillation": 2.5,
    "consistency_training": 1.7,
    "shortcut": 1.9,
    "meanflow": 6.5,
    "progressive": 1.1,
    COUPLED: 1.0,
    REFLOW: 1.1,  # and sampling its pairs
}

OneStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # g(x_t [B, D], t [B]) -> x_0 [B, D], standardised


@dataclass(frozen=True, kw_only=True, eq=False)
class MethodResult:
    """One trained model, measured."""

    method: str  # a key of TITLES
    name: str
    sw2: dict[int, float]  # NFE -> SW2 to fresh data (standardised units)
    mmd: dict[int, float]  # NFE -> MMD to fresh data
    reference: dict[str, ReferenceBand]  # "sw2", "mmd": two fresh data sets of the same size
    samples: dict[int, torch.Tensor]  # NFE -> the first KEEP_SAMPLES samples [k, D], in the data's units
    chord_ratio: float | None  # flow models only (objectives.chord_ratio)
    curvature: float | None
    pairs: tuple[torch.Tensor, torch.Tensor] | None  # (data, noise) [KEEP_PAIRS, D] it trained on, standardised
    crossings: float | None  # the share of crossing pairs of straight training paths (2-D), else None
    seconds: float  # training time
    steps: int
    one_step: OneStep  # its one-step map, for the exact error field
    average: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None  # MeanFlow's u(z, r, t)

    @property
    def title(self) -> str:
        return TITLES[self.method]


def _velocity_step(net: nn.Module) -> OneStep:
    """One Euler step of a flow model from time t to 0: x_t - t v(x_t, t)."""

    def g(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x, t = x.float(), t.float()
        with torch.inference_mode():
            return x - base.column(t, x) * base.net_velocity(net, x, t)

    return g


def one_step_map(method: str, trainer: DiffusionTrainer) -> OneStep:
    """g(x_t, t) -> x_0 in one network evaluation, each method by its own rule: the consistency function, the
    average velocity over [0, t] (shortcut: span t; MeanFlow: u(x, 0, t)), else an Euler step of the velocity
    (progressive distillation: of its one-step student once it has one)."""
    net = trainer.sampling_model
    if method in ("consistency_distillation", "consistency_training"):

        def consistency(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return consistency_function(net, x.float(), t.float())

        return consistency
    if method in ("shortcut", "meanflow"):
        scale = time_input(net) if method == "meanflow" else base.TIME_SCALE

        def average(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            x, t = x.float(), t.float()
            with torch.inference_mode():
                return x - base.column(t, x) * base.net_velocity(net, x, t, t, scale)

        return average
    if method == "progressive":
        net = getattr(trainer, "students", {}).get(1, net)
    return _velocity_step(net)


def coupled_batches(
    draw: Callable[[int, torch.Generator], torch.Tensor],
    kind: str,
    chunk: int = COUPLING_CHUNK,
    reg: float = SINKHORN_REG,
) -> BatchFn:
    """Batches of data (`draw(size, generator)`) with their noise paired by the coupling `kind`
    (couplings.couple), chunk by chunk; the noise rides in the batch's conditioning under "noise", which the flow
    loss takes as its eps (like core/training/diffusion.paired_batches)."""
    if kind not in couplings.COUPLINGS:
        raise BadInputError(f"Unknown coupling {kind!r}; choose one of {', '.join(couplings.COUPLINGS)}.")

    def batches(size: int, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x0 = draw(size, generator).float()
        eps = torch.randn(x0.shape, generator=generator)
        pairs = [
            couplings.couple(kind, a, b, reg=reg, generator=generator)
            for a, b in zip(x0.split(chunk), eps.split(chunk), strict=True)
        ]
        return torch.cat([a for a, _ in pairs]), {"noise": torch.cat([b for _, b in pairs]).float()}

    return batches


@functools.cache
def _coupling_seconds(kind: str, chunk: int) -> float:
    """Seconds to couple one chunk of standard normal 2-D points (measured once per process)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(chunk, 2, generator=g), torch.randn(chunk, 2, generator=g)
    couplings.couple(kind, a, b, reg=SINKHORN_REG, generator=g)  # warm-up (scipy's import)
    tic = time.perf_counter()
    couplings.couple(kind, a, b, reg=SINKHORN_REG, generator=g)
    return time.perf_counter() - tic


def estimate_seconds(
    base_settings: ToySettings, dim: int, chosen: Sequence[str], steps: int, coupling: str, reuse_teacher: bool
) -> float:
    """About how long `compare_few_step` trains on this server (core/training/budget.py), measurement excluded."""
    one = training_seconds(ob.settings_for(base_settings, "flow_prediction"), dim, steps)
    total = sum(STEP_COST[m] for m in chosen) + (0.0 if reuse_teacher else 1.0)
    extra = MEASURE_SECONDS * (len(chosen) + 1)
    if COUPLED in chosen and coupling != "independent":
        chunks = -(-base_settings.batch_size // COUPLING_CHUNK)
        extra = steps * chunks * _coupling_seconds(coupling, min(COUPLING_CHUNK, base_settings.batch_size))
    return one * total + extra


def _check(cloud: PointCloud, chosen: Sequence[str], steps: int, n: int, coupling: str) -> None:
    unknown = [m for m in chosen if m not in CHOOSABLE]
    if unknown or len(set(chosen)) != len(chosen):
        raise BadInputError(f"Choose different methods among {', '.join(CHOOSABLE)}.")
    if coupling not in couplings.COUPLINGS:
        raise BadInputError(f"Unknown coupling {coupling!r}; choose one of {', '.join(couplings.COUPLINGS)}.")
    if not 10 <= steps <= MAX_STEPS:
        raise BadInputError(f"Train each model 10 to {MAX_STEPS:,} steps.")
    if not 100 <= n <= MAX_POINTS:
        raise BadInputError(f"Measure 100 to {MAX_POINTS:,} points.")
    if len(cloud.points) < 16:
        raise BadInputError("The data needs at least 16 points.")


class _Measure:
    """What every model is measured against: the same noise, the same fresh data, the same reference band."""

    def __init__(self, run: ToyRun, n: int, seed: int) -> None:
        self.run, self.seed = run, seed
        self.noise = torch.randn(n, run.dim, generator=torch.Generator().manual_seed(seed))
        self.fresh = run.fresh_data(n, torch.Generator().manual_seed(10_000 + seed))
        self.distances = {"sw2": self.sw2, "mmd": self.mmd}
        self.reference = reference_bands(run.fresh_data, (n, n), self.distances, seed=20_000 + seed)

    def sw2(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return sliced_wasserstein(x.double(), y, projections=128, generator=torch.Generator().manual_seed(self.seed))

    def mmd(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return mmd(x.double(), y, max_points=2000, generator=torch.Generator().manual_seed(self.seed))

    def ladder(
        self, sample: Callable[[torch.Tensor, int], torch.Tensor]
    ) -> tuple[dict[int, float], dict[int, float], dict[int, torch.Tensor]]:
        sw, md, kept = {}, {}, {}
        for nfe in NFE_LADDER:
            with torch_threads(self.run.threads):
                out = sample(self.noise, nfe).double()
            sw[nfe], md[nfe] = self.sw2(out, self.fresh), self.mmd(out, self.fresh)
            kept[nfe] = self.run.standardizer.inverse(out[:KEEP_SAMPLES])
        return sw, md, kept

    def result(
        self,
        method: str,
        name: str,
        sample: Callable[[torch.Tensor, int], torch.Tensor],
        one_step: OneStep,
        seconds: float,
        steps: int,
        flow: ToyRun | None = None,
        pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
        average: Callable | None = None,
    ) -> MethodResult:
        sw, md, kept = self.ladder(sample)
        chord = curve = None
        if flow is not None:
            paths = ob.own_paths(flow, self.noise[:500])
            chord, curve = ob.chord_ratio(paths), ob.curvature(paths)
        crossed = None
        if pairs is not None and pairs[0].shape[1] == 2:
            crossed = couplings.crossings(pairs[0], pairs[1], generator=torch.Generator().manual_seed(self.seed))
        return MethodResult(
            method=method,
            name=name,
            sw2=sw,
            mmd=md,
            reference=self.reference,
            samples=kept,
            chord_ratio=chord,
            curvature=curve,
            pairs=None if pairs is None else (pairs[0][:KEEP_PAIRS].float(), pairs[1][:KEEP_PAIRS].float()),
            crossings=crossed,
            seconds=seconds,
            steps=steps,
            one_step=one_step,
            average=average,
        )


def _euler(net: nn.Module) -> Callable[[torch.Tensor, int], torch.Tensor]:
    return lambda noise, nfe: methods.teacher_sample(net, noise, nfe)


def _watched(callback: Callable[[str, DiffusionTrainer], None] | None, method: str) -> Callable:
    """The trainer callback: the job's deadline checked, then the caller's."""

    def call(trainer: DiffusionTrainer) -> None:
        budget.check_deadline()
        if callback is not None:
            callback(method, trainer)

    return call


def can_teach(run: ToyRun | None, cloud: PointCloud) -> bool:
    """Whether a lab model may serve as the teacher: a flow-matching model of this data (whatever its schedule,
    which only places its sampling steps: its network is the velocity of the straight path, fed TIME_SCALE t)."""
    return run is not None and run.data_key == cloud.key and run.settings.prediction_type == "flow_prediction"


def compare_few_step(
    cloud: PointCloud,
    base_settings: ToySettings,
    chosen: Sequence[str],
    steps: int,
    n: int = 1000,
    seed: int = 0,
    *,
    coupling: str = "minibatch_ot",
    teacher: ToyRun | None = None,
    callback: Callable[[str, DiffusionTrainer], None] | None = None,
    names: Callable[[str], str] = lambda method: method,
) -> Iterator[tuple[ToyRun | None, MethodResult]]:
    """Train and measure the teacher (or measure `teacher`, a lab flow model of this data: `can_teach`), then each
    chosen method (keys of CHOOSABLE), one at a time: yields (its run when it is a ToyRun, its result) as each is
    done, so a caller keeps those when it stops (`callback(method, trainer)` every 10 steps, where a Stop lands).
    Same data, network size, steps, batch and seed for all; see the module docstring."""
    _check(cloud, chosen, steps, n, coupling)
    flow_settings = ob.settings_for(base_settings, "flow_prediction")
    if teacher is not None and not can_teach(teacher, cloud):
        raise BadInputError("The teacher must be a flow-matching model of this data.")
    if teacher is None:
        teacher = ToyRun(cloud, flow_settings, name=names(TEACHER))
        teacher.train(steps, _watched(callback, TEACHER), every=10)
        new_teacher = teacher
    else:
        teacher.idle()
        new_teacher = None
    measure = _Measure(teacher, n, seed)
    data = teacher.standardizer.transform(cloud.points).float()

    def draw(size: int, g: torch.Generator) -> torch.Tensor:
        return data[torch.randint(len(data), (size,), generator=g)]

    paired = coupled_batches(draw, coupling)

    def flow_row(method: str, run: ToyRun, seconds: float, pairs: tuple[torch.Tensor, torch.Tensor]) -> tuple:
        """A flow model's result (Euler at each NFE, its paths, its training pairs), with its run."""
        net = run.trainer.sampling_model
        row = measure.result(
            method, run.name, _euler(net), _velocity_step(net), seconds, run.step, flow=run, pairs=pairs
        )
        return run, row

    g = torch.Generator().manual_seed(seed)
    independent = draw(teacher.settings.batch_size, g)
    independent = (independent, torch.randn(independent.shape, generator=g))
    teacher_net = teacher.trainer.sampling_model
    yield (
        new_teacher,
        measure.result(
            TEACHER,
            teacher.name,
            _euler(teacher_net),
            _velocity_step(teacher_net),
            teacher.trainer.seconds,
            teacher.step,
            flow=teacher,
            pairs=independent,
        ),
    )
    for method in chosen:
        if method == COUPLED:
            run = ToyRun(
                cloud,
                teacher.settings,
                name=names(f"fm-{coupling}"),
                coupling=(f"{COUPLING_TITLES[coupling]}, per chunk of {COUPLING_CHUNK} pairs", lambda _: paired),
            )
            run.train(steps, _watched(callback, method), every=10)
            x0, cond = run.trainer.batches(teacher.settings.batch_size, torch.Generator().manual_seed(seed))
            yield flow_row(method, run, run.trainer.seconds, (x0, cond["noise"]))
        elif method == REFLOW:
            tic = time.perf_counter()
            eps, x0 = ob.coupling(teacher, REFLOW_PAIRS, seed)
            run = ob.reflow(teacher, (eps, x0), steps, names(REFLOW), _watched(callback, method))
            yield flow_row(method, run, time.perf_counter() - tic, (x0, eps))
        else:
            trainer = methods.few_step_trainer(
                method,
                net=teacher.model_config,
                config=teacher.trainer.config,
                batches=tensor_batches(data),
                total_steps=steps,
                teacher=teacher_net,
            )
            with torch_threads(teacher.threads):
                trainer.train(steps, _watched(callback, method), every=10)
            average = None
            if method == "meanflow":
                net, scale = trainer.sampling_model, time_input(trainer.sampling_model)

                def average(z: torch.Tensor, r: torch.Tensor, t: torch.Tensor, net=net, scale=scale) -> torch.Tensor:
                    with torch.inference_mode():
                        return base.net_velocity(net, z.float(), t.float(), (t - r).float(), scale)

            yield (
                None,
                measure.result(
                    method,
                    names(method),
                    lambda noise, nfe, tr=trainer: tr.sample(noise, nfe, torch.Generator().manual_seed(seed)),
                    one_step_map(method, trainer),
                    trainer.seconds,
                    trainer.step,
                    average=average,
                ),
            )


def beats_teacher(result: MethodResult, teacher: MethodResult) -> bool:
    """Whether a method's one-step SW2 is below the teacher's one Euler step by more than the data's own band."""
    band = result.reference["sw2"]
    return result.sw2[1] < teacher.sw2[1] - (band.high - band.low)


def verdicts(results: Sequence[MethodResult]) -> list[str]:
    """A sentence for each method that does not beat the teacher's one Euler step (`beats_teacher`); the
    teacher is the result whose method is TEACHER."""
    teacher = next((r for r in results if r.method == TEACHER), None)
    if teacher is None:
        return []
    return [
        f"{r.title} does not beat the teacher at 1 step (SW2 {r.sw2[1]:.3f} against {teacher.sw2[1]:.3f}): "
        f"{r.steps:,} steps are too few for it here; train longer."
        for r in results
        if r.method != TEACHER and not beats_teacher(r, teacher)
    ]


# ---- exact answers on a mixture ---------------------------------------------------------------------------


def exact_mixture(cloud: PointCloud) -> GaussianMixture | None:
    """The cloud's law in standardised units, when it is a 2-D mixture of isotropic components; else None."""
    mix = cloud.mixture
    if not isinstance(mix, GaussianMixture) or mix.dim != 2 or not bool((mix.stds == mix.stds[:, :1]).all()):
        return None
    return Standardizer.fit(cloud.points).mixture(mix)


def field_box(mixture: GaussianMixture, t: float) -> tuple[float, float, float, float]:
    """A box of the plane of x_t holding the marginal at time t: the means' extent shrunk by 1 - t, grown by
    three of its stds."""
    lo, hi = mixture.means.min(0).values, mixture.means.max(0).values
    spread = 3 * float(((1 - t) ** 2 * mixture.stds.max() ** 2 + t**2).sqrt())
    return (
        (1 - t) * float(lo[0]) - spread,
        (1 - t) * float(hi[0]) + spread,
        (1 - t) * float(lo[1]) - spread,
        (1 - t) * float(hi[1]) + spread,
    )


def error_field(mixture: GaussianMixture, result: MethodResult, t: float, resolution: int = 40) -> flow_map.ErrorField:
    """|g(x, t) - f(x, t)| of the model's one-step map against the exact consistency function (flow_map)."""
    return flow_map.error_field(mixture, result.one_step, t, field_box(mixture, t), resolution, tol=1e-6)


def meanflow_error(mixture: GaussianMixture, result: MethodResult, t: float, n: int = 500, seed: int = 0) -> float:
    """RMS over n points z ~ p_t of |u_theta(z, 0, t) - u(z, 0, t)|, u the exact average velocity (flow_map)."""
    if result.average is None:
        raise BadInputError("Only MeanFlow learns an average velocity u(z, r, t).")
    if not 0 < t <= 1:
        raise BadInputError("The time must lie in (0, 1].")
    z, _ = flow_map.marginal(mixture, t).sample(n, torch.Generator().manual_seed(seed))
    times = torch.full((n,), t, dtype=torch.float64)
    exact = flow_map.average_velocity(mixture, z, 0.0, t, tol=1e-6)
    learned = result.average(z, torch.zeros(n, dtype=torch.float64), times).double()
    return float((learned - exact).pow(2).sum(1).mean().sqrt())


# ---- Gaussian -> Gaussian -----------------------------------------------------------------------------------

STUDY_TARGET = Gaussian.of([1.5, -0.5], [[1.0, 0.6], [0.6, 0.8]])
STUDY_SIZES = (1, 8, 32, 128)  # a Hungarian assignment of 512 pairs per chunk costs 0.1 s a step
MAX_STUDY_BATCH, MAX_STUDY_STEPS = 256, 2000
STUDY_NET = MLPConfig(dim=2, width=64, depth=2, num_steps=1000)


@dataclass(frozen=True, kw_only=True)
class StudyPoint:
    batch: int  # the OT minibatch (1: the independent coupling)
    map_error: float  # RMS over fresh noise of |g(eps) - T(eps)|, g the model's one Euler step, T the OT map
    seconds: float


def gaussian_study(
    sizes: Sequence[int] = STUDY_SIZES,
    steps: int = 400,
    seed: int = 0,
    target: Gaussian = STUDY_TARGET,
    callback: Callable[[int, DiffusionTrainer], None] | None = None,
) -> Iterator[StudyPoint]:
    """For each OT batch size: flow matching from N(0, I) noise to `target` (an MLP 64 x 2, `steps` steps of 512
    pairs coupled by minibatch OT in chunks of that size), its one-step map eps -> eps - v(eps, 1) against the
    closed-form OT map from N(0, I) onto the target; one size at a time (`callback(size, trainer)`)."""
    if not sizes or any(not 1 <= s <= MAX_STUDY_BATCH for s in sizes) or not 10 <= steps <= MAX_STUDY_STEPS:
        raise BadInputError(f"OT batches lie in 1-{MAX_STUDY_BATCH} pairs and the steps in 10-{MAX_STUDY_STEPS:,}.")
    exact = ot_map(Gaussian.of([0.0, 0.0], torch.eye(2)), target)
    noise = torch.randn(2000, 2, generator=torch.Generator().manual_seed(seed + 1))
    config = TrainConfig(
        batch_size=512,
        lr=1e-2,
        lr_schedule="cosine",
        adam_betas=(0.9, 0.99),
        prediction_type="flow_prediction",
        seed=seed,
    )
    for size in sizes:
        kind = "minibatch_ot" if size > 1 else "independent"
        batches = coupled_batches(lambda m, g: target.sample(m, g), kind, chunk=size)
        trainer = DiffusionTrainer(build_mlp(STUDY_NET, seed), base.flow_schedule(), config, batches)
        with torch_threads(1):
            trainer.train(
                steps, _watched(None if callback is None else lambda _, tr, s=size: callback(s, tr), ""), every=10
            )
            out = methods.teacher_sample(trainer.sampling_model, noise, 1).double()
        err = float((out - exact(noise)).pow(2).sum(1).mean().sqrt())
        yield StudyPoint(batch=size, map_error=err, seconds=trainer.seconds)


def study_rows(target: Gaussian = STUDY_TARGET, sizes: Sequence[int] = STUDY_SIZES) -> list[couplings.StudyRow]:
    """couplings.minibatch_ot_study between N(0, I) and the target: the pairs themselves against the OT map."""
    return couplings.minibatch_ot_study(Gaussian.of([0.0, 0.0], torch.eye(2)), target, sizes, points=1024)
