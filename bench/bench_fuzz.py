"""Hostile-input fuzz of refiner_node over real DDS: 10,000 seeded messages (future stamps included).

Counts crashes (exceptions out of the node's callbacks), the node's own caught exceptions (`processing_error`),
NaN/inf where outputs may not carry them, published joints beyond `max_range`, TF parents breaking the frame-id
rules, the longest a camera was locked out (for each good message the synchroniser refused: the stamp that blocked
it minus its own) and the longest time good frames went unanswered for any reason; `cvpose_ros.ros.fuzz` says what
is sent. The node runs in this process with its default parameters (packaged weights, CPU) except the sync slop.

    python bench/bench_fuzz.py [--messages 10000] [--seed 0] [--refine | --no-refine] [--out runs/bench_fuzz.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

from tqdm import tqdm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                        help="run CV-UGCN (packaged weights) on the good frames")
    parser.add_argument("--out", default="runs/bench_fuzz.json", help="results file (JSON)")
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from cvpose_ros.ros.fuzz import run_fuzz

    bar = tqdm(total=args.messages, unit="msg", desc="fuzz", mininterval=2.0)

    def progress(n: int) -> None:
        bar.update(n - bar.n)

    report = run_fuzz(args.messages, seed=args.seed, parameters={"refine": args.refine, "warn_throttle": 60.0},
                      progress=progress)
    bar.close()
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores", "seed": args.seed,
              "refine": args.refine, **report.summary()}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    print(f"messages {report.messages} ({report.good_frames} good frames, {report.answered_good_frames} answered) "
          f"in {report.wall_s:.0f} s")
    print(f"crashes {report.crashes}, processing errors {report.processing_errors}, NaN/inf outputs "
          f"{report.nonfinite_outputs}, joints beyond max_range {report.joints_beyond_range}, bad TF parents "
          f"{report.bad_tf_frames}, longest lock-out {report.longest_lockout_s:.3f} s "
          f"({report.refused_good_messages} good messages refused; longest unanswered "
          f"{report.longest_unanswered_s:.3f} s)")
    print("problems counted:", ", ".join(f"{k} {v}" for k, v in sorted(report.problems.items())))
    print(f"results: {args.out}")
    failed = (report.crashes or report.processing_errors or report.nonfinite_outputs or report.joints_beyond_range
              or report.bad_tf_frames)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
