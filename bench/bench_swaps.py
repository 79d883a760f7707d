"""One-view left/right swaps after the cross-view repair: triangulation MPJPE with swaps against the swap-free run
of the same random stream, per rig, layout and seed (issue 10's measure, `test_cross_view.py::_mpjpe`, longer).

3 people walk for --seconds at 30 Hz; both views get `detector` noise with 3 % outlier joints; view 1 alone also
gets 5 % whole-body and 5 % per-limb swaps. The pipeline is `SkeletonPipeline` (matching, repair, tracking), people
are matched to the truth by Hungarian assignment (`training.swap_eval`). Prints per seed and pooled over seeds;
--no-repair for the matching without repair (the baseline the repair is judged against).

    python bench/bench_swaps.py [--seeds 0 1 2] [--seconds 10] [--rigs demo wide narrow] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform

from tqdm import tqdm

from cvpose_ros.devtools.synthetic import make_rig
from training.swap_eval import swap_mpjpe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rigs", nargs="+", default=["demo", "wide", "narrow"])
    parser.add_argument("--layouts", nargs="+", default=["coco17", "h36m17"])
    parser.add_argument("--no-repair", action="store_true", help="matching without swap repair (the baseline)")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {args.seconds:g} s x 3 people per run, seeds "
          f"{args.seeds}, repair {not args.no_repair}")
    rows = []
    jobs = [(r, lay) for r in args.rigs for lay in args.layouts]
    for rig_kind, layout in tqdm(jobs, desc="rigs", leave=False):
        rig, repair = make_rig(rig_kind), not args.no_repair
        free = [swap_mpjpe(rig, layout, 0.0, 0.0, s, args.seconds, repair) for s in args.seeds]
        swapped = [swap_mpjpe(rig, layout, 0.05, 0.05, s, args.seconds, repair) for s in args.seeds]
        pooled = sum(swapped) / sum(free) - 1.0
        rows.append({"rig": rig_kind, "layout": layout, "swap_free_mm": free, "swaps_mm": swapped,
                     "pooled_increase": pooled})
        per_seed = "  ".join(f"{a:.1f}->{b:.1f} ({100 * (b / a - 1):+.1f}%)" for a, b in zip(free, swapped,
                                                                                            strict=True))
        print(f"{rig_kind:>7} {layout}: {per_seed} | pooled {100 * pooled:+.1f}%", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
