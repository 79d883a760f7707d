"""Time and memory of cross-view matching for 1 to 1000 people per camera, against the all-pairs baseline.

Run: ``python bench/bench_association.py [--people 1 5 20 100 200 1000] [--baseline-max 100] [--json out.json]``.

A crowd stands on a grid in front of two cameras (90 degrees apart, exact projections plus 1.5 px noise). Per
crowd size it measures, in the same process:

- ``baseline``: the matching this package shipped before (every candidate pair triangulated by batched DLT in one
  call, median reprojection error, Hungarian), re-implemented here; skipped above ``--baseline-max`` (its memory
  grows with the square of the crowd: ~270 MB at 100 x 100);
- ``match``: `cvpose_ros.pipeline.cross_view.match_views` on every person (torso pruning, capped candidates, swap
  hypotheses);
- ``pipeline``: a whole `SkeletonPipeline.process` frame (validation, the default ``max_people`` cut, matching,
  triangulation, ids; no refinement);
- ``pipeline_all``: the same with ``max_people`` 1000 (nobody cut).

Time is the best of ``--repeats`` runs; memory is the peak of Python/numpy allocations (tracemalloc) in one run.
Ratios are against the baseline of the same crowd size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from cvpose_ros.body.skeleton import get_layout
from cvpose_ros.devtools.synthetic import generate_scene
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.geometry.triangulation import triangulate_pair
from cvpose_ros.pipeline.cross_view import match_views
from cvpose_ros.pipeline.frame_processor import CameraSetup, SkeletonPipeline
from cvpose_ros.pipeline.view_input import PersonInput, ViewInput

LAYOUT = get_layout("h36m17")


def make_crowd(people: int, seed: int = 0) -> dict:
    """`people` walkers about 1.2 m apart, seen whole by two 1920x1080 cameras far enough back to see everyone."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(people)))
    scene = generate_scene(people, 0.1, 30.0, seed=seed, room=(3.0, 3.0))
    local = scene.joints[0] - scene.joints[0][:, :1] * [1, 1, 0]  # each body at the origin, feet on the floor
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)[:people] - (side - 1) / 2
    grid = grid * 1.2 + rng.uniform(-0.3, 0.3, grid.shape)  # a loose crowd, not a parade
    world = local + np.concatenate([grid, np.zeros((people, 1))], axis=1)[:, None]
    distance = max(6.0, 2.0 * side)
    K = np.array([[1100.0, 0.0, 959.5], [0.0, 1100.0, 539.5], [0.0, 0.0, 1.0]])
    cams = [CameraModel(K, np.zeros(5), "plumb_bob", 1920, 1080) for _ in range(2)]
    poses = [RigidTransform.look_at([distance, 0.0, 3.0], [0.0, 0.0, 1.0]),
             RigidTransform.look_at([0.0, distance, 3.0], [0.0, 0.0, 1.0])]
    kp = [c.project(p.apply(world)) + rng.normal(0, 1.5, (people, 17, 2)) for c, p in zip(cams, poses, strict=True)]
    order = rng.permutation(people)  # camera 1 lists people in another order
    return dict(cam0=cams[0], cam1=cams[1], rel=poses[1].compose(poses[0].inverse()),
                kp0=kp[0], conf0=np.full((people, 17), 0.9), kp1=kp[1][order], conf1=np.full((people, 17), 0.9),
                order=order)


def baseline_match(c: dict, max_error_px: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """The previous matching: all A*B pairs triangulated in one batched call, median error, gated Hungarian."""
    a, b = len(c["kp0"]), len(c["kp1"])
    tri = triangulate_pair(c["cam0"], c["cam1"], c["rel"], np.repeat(c["kp0"], b, axis=0),
                           np.repeat(c["conf0"], b, axis=0), np.tile(c["kp1"], (a, 1, 1)), np.tile(c["conf1"], (a, 1)))
    errors = np.where(tri.valid, tri.reprojection_error, np.nan)
    with np.errstate(invalid="ignore"):
        cost = np.nan_to_num(np.nanmedian(errors, axis=1), nan=np.inf).reshape(a, b)
    gated = np.where(cost <= max_error_px, cost, 1e9)
    rows, cols = linear_sum_assignment(gated)
    keep = gated[rows, cols] <= max_error_px
    return rows[keep], cols[keep]


def new_match(c: dict) -> tuple[np.ndarray, np.ndarray]:
    none0, none1 = np.full(len(c["kp0"]), -1), np.full(len(c["kp1"]), -1)
    m = match_views(c["cam0"], c["cam1"], c["rel"], c["kp0"], c["conf0"], none0, c["kp1"], c["conf1"], none1, LAYOUT)
    return m.i0, m.i1


def pipeline_frame(c: dict, max_people: int) -> Callable[[], object]:
    setup = CameraSetup(c["cam0"], c["cam1"], c["rel"])
    views = [ViewInput(0, f"cam{v}", "h36m17", [PersonInput(-1, k[:, 0], k[:, 1], cf) for k, cf in
                                                  zip(c[f"kp{v}"], c[f"conf{v}"], strict=True)]) for v in (0, 1)]
    pipeline = SkeletonPipeline(max_people=max_people)
    return lambda: pipeline.process(setup, *views)


def measure(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """(best time in ms, peak traced memory in MB of one run, the result)."""
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3, peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[1, 5, 20, 100, 200, 1000])
    parser.add_argument("--baseline-max", type=int, default=100, help="largest crowd the baseline runs on")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.system()}; "
          f"numpy {np.__version__}")
    rows = []
    for people in tqdm(args.people, desc="crowd sizes", unit="size"):
        crowd = make_crowd(people)
        row: dict = {"people": people}
        cases = {"match": lambda c=crowd: new_match(c), "pipeline": pipeline_frame(crowd, 20),
                 "pipeline_all": pipeline_frame(crowd, 1000)}
        if people <= args.baseline_max:
            cases = {"baseline": lambda c=crowd: baseline_match(c), **cases}
        for name, fn in cases.items():
            ms, mb, result = measure(fn, args.repeats)
            row[name] = {"ms": round(ms, 2), "peak_mb": round(mb, 2)}
            if name in ("baseline", "match"):
                i0, i1 = result
                row[name]["correct"] = int((crowd["order"][i1] == i0).sum())
            else:
                row[name]["published"] = int(len(result.coarse.track_ids))
        rows.append(row)
    header = (f"{'people':>7} | {'baseline ms':>11} {'MB':>7} {'correct':>7} | {'match ms':>9} {'MB':>6} {'x base':>7} "
              f"{'correct':>8} | {'pipeline ms':>11} {'MB':>6} | {'no cut ms':>9} {'MB':>6} {'published':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        base = r.get("baseline")
        ratio = f"{base['ms'] / r['match']['ms']:.1f}" if base else "-"
        print(f"{r['people']:>7} | {base['ms'] if base else '-':>11} {base['peak_mb'] if base else '-':>7} "
              f"{base['correct'] if base else '-':>7} | "
              f"{r['match']['ms']:>9} {r['match']['peak_mb']:>6} {ratio:>7} {r['match']['correct']:>8} | "
              f"{r['pipeline']['ms']:>11} {r['pipeline']['peak_mb']:>6} | {r['pipeline_all']['ms']:>9} "
              f"{r['pipeline_all']['peak_mb']:>6} {r['pipeline_all']['published']:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": platform.platform(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
