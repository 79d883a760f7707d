"""One-view left/right swaps after the cross-view repair: triangulation MPJPE with swaps against the swap-free run
of the same random stream, per rig, layout and seed (issue 10's measure, `test_cross_view.py::_mpjpe`, longer).

3 people walk for --seconds at 30 Hz; both views get `detector` noise with 3 % outlier joints; view 1 alone also
gets 5 % whole-body and 5 % per-limb swaps. The pipeline is `SkeletonPipeline` (matching, repair, tracking), people
are matched to the truth by Hungarian assignment. Prints per seed and pooled over seeds; --no-repair for the
matching without repair (the baseline the repair is judged against).

    python bench/bench_swaps.py [--seeds 0 1 2] [--seconds 10] [--rigs demo wide narrow] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import replace

import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from cvpose_ros.cross_view import MatchConfig
from cvpose_ros.frame_processor import CameraSetup, SkeletonPipeline
from cvpose_ros.noise import get_preset
from cvpose_ros.synthetic import generate_scene, make_rig, project_view
from cvpose_ros.view_input import PersonInput, ViewInput


def swap_mpjpe(rig_kind: str, layout: str, swaps: float, seed: int, seconds: float, repair: bool = True) -> float:
    """Mean per-person joint error (mm) of the coarse skeletons; `swaps` = whole-body and per-limb rate in view 1."""
    rig = make_rig(rig_kind)
    scene = generate_scene(3, seconds, 30.0, seed=seed).in_layout(layout)
    clean = replace(get_preset("detector"), body_swap_rate=0.0, swap_rate=0.0, outlier_rate=0.03)
    view0 = project_view(scene, rig.cameras[0], clean, 0)
    view1 = project_view(scene, rig.cameras[1], replace(clean, body_swap_rate=swaps, swap_rate=swaps), 1)
    truth = rig.cameras[0].world_to_camera(scene.joints)
    setup = CameraSetup(rig.cameras[0].model, rig.cameras[1].model, rig.cam1_from_cam0)
    pipeline = SkeletonPipeline(default_layout=layout,
                                matching=MatchConfig(repair_swaps=repair, drop_bad_joints=repair))
    errors: list[float] = []
    for t in range(scene.num_frames):
        views = [ViewInput(t, "c", layout, [PersonInput(-1, v.keypoints[t, p, :, 0], v.keypoints[t, p, :, 1],
                                                        v.confidence[t, p]) for p in range(3) if v.visible[t, p]])
                 for v in (view0, view1)]
        estimate = pipeline.process(setup, *views).coarse.joints
        dist = np.nanmean(np.linalg.norm(estimate[:, None] - truth[t][None], axis=-1), axis=-1)
        rows, cols = linear_sum_assignment(np.nan_to_num(dist, nan=1e3))
        errors += dist[rows, cols].tolist()
    return 1e3 * float(np.mean(errors))


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
        free = [swap_mpjpe(rig_kind, layout, 0.0, s, args.seconds, not args.no_repair) for s in args.seeds]
        swapped = [swap_mpjpe(rig_kind, layout, 0.05, s, args.seconds, not args.no_repair) for s in args.seeds]
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
