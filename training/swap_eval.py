"""The measure of one-view left/right swaps (issue 10): triangulation MPJPE of `SkeletonPipeline` on a synthetic
scene whose second view swaps, against the same random stream without swaps. Shared by `bench/bench_swaps.py`
and `test/test_cross_view.py`."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from cvpose_ros.devtools.noise import get_preset
from cvpose_ros.devtools.synthetic import Rig, generate_scene, project_view
from cvpose_ros.pipeline.cross_view import MatchConfig
from cvpose_ros.pipeline.frame_processor import CameraSetup, SkeletonPipeline
from cvpose_ros.pipeline.view_input import PersonInput, ViewInput


def swap_mpjpe(rig: Rig, layout: str, body_rate: float, limb_rate: float, seed: int = 0, seconds: float = 3.0,
               repair: bool = True) -> float:
    """Mean per-person joint error (mm) of the coarse skeletons of 3 walking people, matched to the truth by
    Hungarian assignment. Both views get `detector` noise with 3 % outlier joints; view 1 alone also swaps whole
    bodies at `body_rate` and limb groups at `limb_rate` (the same random stream whatever the rates)."""
    scene = generate_scene(3, seconds, 30.0, seed=seed).in_layout(layout)
    clean = replace(get_preset("detector"), body_swap_rate=0.0, swap_rate=0.0, outlier_rate=0.03)
    view0 = project_view(scene, rig.cameras[0], clean, 0)
    view1 = project_view(scene, rig.cameras[1], replace(clean, body_swap_rate=body_rate, swap_rate=limb_rate), 1)
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
