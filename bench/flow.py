"""Flow matching beside diffusion on the toy lab's data (core/labs/objectives.py): the same MLP, data, training
budget and seed, trained with v-prediction (linear schedule), epsilon, and flow matching (the flow path);
SW2 to fresh data against Euler's NFE, and the straightness of the paths. Then reflow on the moons.

    python -m bench.flow [--steps 3000] [--points 4000]

SW2 is in standardised units; "fresh sets" is SW2 between two fresh data sets of the same size, the range of
10 draws (what "no difference" reads as, core/metrics/reference.py). Chord / length and Liu et al.'s curvature
S are measured in each model's own coordinates (see core/labs/objectives.py).
"""

from __future__ import annotations

import argparse
import time

from bench.common import print_table
from core.data.toy import TOY_SETS
from core.labs import objectives as ob
from core.labs.toy import ToySettings

SETS = ("moons", "swiss_roll", "torus")
OBJECTIVES = ("epsilon", "v_prediction", "flow_prediction")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--points", type=int, default=4000, help="points measured (and pairs for reflow)")
    args = parser.parse_args()
    base = ToySettings()
    rows, flows = [], {}
    for name in SETS:
        cloud = TOY_SETS[name].cloud(10_000, seed=0)
        for run, res in ob.compare(cloud, base, OBJECTIVES, args.steps, args.points):
            rows.append(
                [
                    TOY_SETS[name].title,
                    ob.OBJECTIVES[res.objective],
                    *res.sw2.values(),
                    res.reference.span(),
                    res.chord_ratio,
                    res.curvature,
                    run.trainer.seconds,
                ]
            )
            if res.objective == "flow_prediction":
                flows[name] = (run, res)
            print(rows[-1], flush=True)
    print_table(
        f"SW2 to fresh data against Euler NFE, {args.steps:,} training steps each (64x2 MLP, same seed)",
        [
            "data",
            "objective",
            *(f"NFE {k}" for k in ob.NFE_LADDER),
            "fresh sets",
            "chord / length",
            "curvature S",
            "train s",
        ],
        rows,
    )

    flow_run, before = flows["moons"]
    tic = time.perf_counter()
    pairs = ob.coupling(flow_run, args.points)
    after = ob.measure(ob.reflow(flow_run, pairs, args.steps, name="reflow"), args.points)
    seconds = time.perf_counter() - tic
    print_table(
        f"Reflow on the moons: {args.points:,} (noise, sample) pairs, {args.steps:,} steps ({seconds:.0f} s)",
        ["model", "chord / length", "curvature S", "SW2 @ 1", "SW2 @ 2", "SW2 @ 4", "fresh sets"],
        [
            [label, r.chord_ratio, r.curvature, r.sw2[1], r.sw2[2], r.sw2[4], r.reference.span()]
            for label, r in (("flow matching (1-rectified)", before), ("after reflow (2-rectified)", after))
        ],
    )


if __name__ == "__main__":
    main()
