"""FD-LeNet against the post-hoc EMA length for one MNIST run (issue 31): the run's checkpoint rebuilt at each length
from its two snapshot streams (zoo/posthoc.py), beside the checkpoint's own constant-decay EMA and its raw weights.

    python -m bench.posthoc_ema RUN [--step N] [--lengths 0.02,0.05,...] [--samples 1000] [--sampler euler]
                                    [--steps 20]

RUN is a `python -m zoo train` output (or its run/ folder) whose checkpoints carry phema-*.safetensors. Every row
draws the same seeds; FD-LeNet (± bootstrap SE), precision and recall (k = 5, against as many held-out digits) come
from core/labs/compare.score, the Compare checkpoints page's measure. Train a run for it with, e.g.,
`python -m zoo train RECIPE --checkpoint-every 250` (two streams by default).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import print_table
from core.labs.compare import held_out_features, sample_many, score, settings_for
from core.runs.ours import saved_checkpoints
from core.training.posthoc_ema import gamma_of
from zoo.datasets import load_image_set
from zoo.loaders import LoadedModel, load_model
from zoo.local import local_entry
from zoo.posthoc import describe, posthoc_models, run_snapshots
from zoo.registry import load_registry

LENGTHS = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--step", type=int, default=None, help="the checkpoint (default: the last)")
    parser.add_argument("--lengths", default=",".join(f"{r:g}" for r in LENGTHS))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    run = args.run / "run" if (args.run / "run" / "checkpoints").is_dir() else args.run
    saved = dict(saved_checkpoints(run))
    step = args.step if args.step is not None else max(saved)
    folder = saved[step]
    snaps = run_snapshots(folder, None)
    lengths = [float(v) for v in args.lengths.split(",")]
    print(f"{run}: step {step:,}; snapshots: {describe([s for s in snaps if s.step <= step])}", flush=True)

    registry = load_registry()
    classifier = load_model(registry.model("mnist-lenet")).module
    reference = held_out_features(classifier, load_image_set(registry.dataset("mnist"), "test").images)

    def measured(model: LoadedModel) -> tuple[float, float, float, float, float]:
        settings = settings_for(model, args.sampler, args.steps, 0, 1, None)
        tic = time.perf_counter()
        images, _ = sample_many(model, settings, args.samples)
        q = score(images, None, classifier, reference)
        assert q.prdc is not None
        return q.fd_lenet, q.fd_se, q.prdc.precision, q.prdc.recall, time.perf_counter() - tic

    rows = []
    for r, (model, fit) in posthoc_models(folder, snaps, lengths, roots=None).items():
        fd, se, precision, recall, seconds = measured(model)
        rows.append([f"{r:g}", f"{gamma_of(r):.2f}", f"{fit.profile_error:.2%}", fd, se, precision, recall, seconds])
        print(f"  σ_rel {r:g}: FD-LeNet {fd:.2f} ± {se:.2f}", flush=True)
    for label, ema in (("checkpoint's EMA (constant decay)", True), ("raw weights", False)):
        entry = local_entry(str(folder), ema=ema, trusted=True)
        if not ema and "raw" not in entry.title:
            continue  # our checkpoints keep the EMA weights alone
        fd, se, precision, recall, seconds = measured(load_model(entry))
        rows.append([label, "", "", fd, se, precision, recall, seconds])
    header = ["σ_rel", "γ", "profile error", "FD-LeNet", "± SE", "precision", "recall", "seconds"]
    title = f"Post-hoc EMA: {run.parent.name if run.name == 'run' else run.name} @ step {step:,}"
    print_table(f"{title} ({args.samples} samples, {args.sampler} {args.steps} steps)", header, rows)


if __name__ == "__main__":
    main()
