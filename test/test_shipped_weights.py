"""The packaged weights of each layout do what their model cards say, on scenes they never saw (procedural people
made here, two rig geometries): refined MPJPE clearly below triangulation with detector-like errors, and exact 2D
stays exact (<= 1 mm), through the Refiner and through the node's whole per-frame pipeline (guard included).
Guards against shipping a broken or mismatched checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from cvpose_ros.body.skeleton import get_layout
from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene
from cvpose_ros.geometry.triangulation import triangulate_pair
from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS
from cvpose_ros.model.losses import mpjpe
from cvpose_ros.pipeline.frame_processor import CameraSetup, SkeletonPipeline
from cvpose_ros.pipeline.view_input import PersonInput, ViewInput
from cvpose_ros.refine.refiner import LayoutRefiners, Refiner

# layout -> the noise preset its weights are trained for
LAYOUT_NOISE = {"h36m17": "cpn_like", "coco17": "detector"}


def _shipped(layout: str):
    return pytest.param(layout, marks=pytest.mark.skipif(not DEFAULT_CHECKPOINTS[layout].exists(),
                                                         reason=f"no packaged {layout} weights"))


LAYOUTS = [_shipped(name) for name in LAYOUT_NOISE]


def _scene_views(layout: str, rig_kind: str, noise: str, seed: int):
    scene = generate_scene(num_people=2, duration_s=4.0, fps=10.0, seed=seed).in_layout(layout)
    rig = make_rig(rig_kind)
    view0, view1 = project_scene(scene, rig, noise=noise, seed=seed)
    return scene, rig, view0, view1


def _errors(layout: str, rig_kind: str, noise: str, seed: int) -> tuple[float, float]:
    """Root-relative MPJPE (mm, camera 0 frame) of triangulation and of the refined poses over one scene."""
    scene, rig, view0, view1 = _scene_views(layout, rig_kind, noise, seed)
    both = view0.visible & view1.visible                          # (T, P)
    truth = rig.cameras[0].world_to_camera(scene.joints)[both]   # (N, J, 3)
    tri = triangulate_pair(rig.cameras[0].model, rig.cameras[1].model, rig.cam1_from_cam0,
                           view0.keypoints[both], view0.confidence[both],
                           view1.keypoints[both], view1.confidence[both])
    refiner = Refiner(device="cpu", layout=layout)
    assert refiner.enabled and refiner.layout == layout
    refined, _ = refiner.refine(tri, rig.cam1_from_cam0)
    root = get_layout(layout).root
    keep = np.isfinite(tri.cam0[:, list(root)]).all(axis=(-1, -2))  # the root is needed for root-relative error
    assert keep.mean() > 0.8
    return (float(mpjpe(tri.cam0[keep], truth[keep], root=root)) * 1e3,
            float(mpjpe(refined[keep], truth[keep], root=root)) * 1e3)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("rig_kind", ["wide", "narrow"])
def test_refinement_beats_triangulation_with_detector_noise(layout: str, rig_kind: str) -> None:
    coarse, refined = _errors(layout, rig_kind, LAYOUT_NOISE[layout], seed=11)
    assert coarse > 20.0  # the noise is real
    assert refined / coarse < 0.85, (coarse, refined)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_exact_input_stays_exact(layout: str) -> None:
    coarse, refined = _errors(layout, "wide", "clean", seed=12)
    assert coarse < 1e-3
    assert refined < 1.0


@pytest.mark.parametrize("layout", LAYOUTS)
def test_exact_input_stays_exact_through_the_pipeline(layout: str) -> None:
    """Both layouts' packaged weights in one pipeline, frames in `layout`, guard on: every joint within 1 mm."""
    scene, rig, view0, view1 = _scene_views(layout, "narrow", "clean", seed=13)
    setup = CameraSetup(rig.cameras[0].model, rig.cameras[1].model, rig.cam1_from_cam0)
    pipeline = SkeletonPipeline(LayoutRefiners(device="cpu", num_threads=1))
    worst = 0.0
    for t in range(0, scene.num_frames, 5):
        seen = view0.visible[t] & view1.visible[t]
        views = [ViewInput(t, f"cam{c}", layout, [
            PersonInput(-1, v.keypoints[t, p, :, 0], v.keypoints[t, p, :, 1], v.confidence[t, p])
            for p in np.flatnonzero(seen)]) for c, v in enumerate((view0, view1))]
        result = pipeline.process(setup, *views)
        assert result.refined_applied and result.layout == layout
        truth = rig.cameras[0].world_to_camera(scene.joints[t][seen])
        err = np.linalg.norm(result.refined.joints[:, None] - truth[None], axis=-1)  # (P_out, P_true, J)
        match = np.nanargmin(np.nanmean(err, axis=-1), axis=1)  # each output person's true person
        worst = max(worst, float(np.nanmax(err[np.arange(len(match)), match])))
    assert worst < 1e-3, worst
