"""Weak supervision by every camera: a pair network trained with the 2D of all four cameras of a rig beats the same
training with the pair's own 2D only, measured against the synthetic truth.

Data made here: random bodies (test_weak_training's generator) seen by four cameras 90 degrees apart. Each camera's
detector has its own FIXED per-joint error for the whole sequence: `cvpose_ros.devtools.noise.view_offsets_3d` with the
`detector` preset (surface depth towards the camera plus a random 3D offset, drawn once per camera), plus 1.5 px
of jitter. The network refines pair (0, 1). Pair-only targets are that pair's own detections, whose offsets the
triangulation already fits; the 2D of cameras 2 and 3 says where those offsets are wrong. A trainer that ignored
the extra targets would train the same network twice (same seed, same data) and fail the comparison. About 12 s
on one CPU thread (10 short epochs per network; `w_extra_views` 5 so the small network learns the offsets fast).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from test_weak_training import random_bodies

from cvpose_ros.calibration import CalibratedCamera
from cvpose_ros.devtools.noise import view_offsets_3d
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.model.losses import mpjpe
from cvpose_ros.model.pipeline import refine_tensors
from training.data.samples import TwoViewSamples, triangulate_samples
from training.data.video_samples import video_samples
from training.metrics import load_model
from training.train import train
from training.train_config import TrainConfig


def _rig() -> list[CalibratedCamera]:
    model = CameraModel(K=np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]]), dist=np.zeros(5),
                        distortion_model="plumb_bob", width=1280, height=720)
    cams = []
    for v in range(4):
        angle = np.pi / 4 + np.pi / 2 * v
        eye = (4.5 * np.cos(angle), 4.5 * np.sin(angle), 1.5 + 0.1 * v)
        cams.append(CalibratedCamera(f"cam{v}", model, RigidTransform.look_at(eye, (0.0, 0.0, 1.0))))
    return cams


def _detections(cams: list[CalibratedCamera], world: np.ndarray, offsets_rng: np.random.Generator,
                rng: np.random.Generator) -> np.ndarray:
    """(4, T, 17, 2) pixels: per camera the projection of the joints moved by that camera's fixed detector error."""
    out = []
    for cam in cams:
        in_cam = cam.cam_from_world.apply(world)
        seen = view_offsets_3d(in_cam, "detector", offsets_rng, layout="h36m17", fixed_shape=())
        out.append(cam.model.project(seen) + rng.normal(0.0, 1.5, world.shape[:-1] + (2,)))
    return np.stack(out)


def _refined_mpjpe(checkpoint: Path, samples: TwoViewSamples, truth: np.ndarray) -> float:
    loaded = load_model(checkpoint)
    data = triangulate_samples(samples)
    b = data.batch(torch.arange(len(data)))
    with torch.no_grad():
        refined, _ = refine_tensors(loaded.model.eval(), b["coarse0"], b["coarse1"], b["reproj_err"], b["valid"],
                                    b["R10"], b["t10"], spec=loaded.spec, fuse=True)
    return 1000 * mpjpe(refined.double().numpy(), truth, root_relative=False)


def test_every_camera_as_weak_target_beats_pair_only(tmp_path: Path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cams = _rig()
        rng = np.random.default_rng(0)
        world_train, world_test = random_bodies(1500, rng), random_bodies(300, rng)
        offsets = np.random.default_rng(1).bit_generator.state  # the same detector offsets in both sets
        pix_train = _detections(cams, world_train, np.random.default_rng(1), rng)
        pix_test = _detections(cams, world_test, np.random.default_rng(1), rng)
        assert offsets == np.random.default_rng(1).bit_generator.state
        conf_train, conf_test = np.ones(pix_train.shape[:3]), np.ones(pix_test.shape[:3])
        every = video_samples(cams, pix_train, conf_train, pairs=[(0, 1)], extra_views=True).samples
        pair_only = video_samples(cams, pix_train, conf_train, pairs=[(0, 1)]).samples
        test = video_samples(cams, pix_test, conf_test, pairs=[(0, 1)]).samples
        truth = cams[0].cam_from_world.apply(world_test)
        assert every.extra_views == 2 and pair_only.extra_views == 0
        scores = {}
        for name, samples in (("pair_only", pair_only), ("every_camera", every)):
            cfg = TrainConfig(out_dir=str(tmp_path / name), layout="h36m17", view_channels=16, joint_channels=32,
                              part_channels=64, decoder_channels=32, batch_size=128, samples_per_epoch=1500,
                              epochs=10, lr=3e-3, val_fraction=0.0, threads=1, device="cpu", progress="off",
                              seed=0, w_extra_views=5.0)
            scores[name] = _refined_mpjpe(train(cfg, [samples]), test, truth)
        triangulation = 1000 * mpjpe(triangulate_samples(test).coarse0.double().numpy(), truth, root_relative=False)
        print(f"MPJPE against the truth: triangulation {triangulation:.1f} mm, pair-only {scores['pair_only']:.1f},"
              f" every camera {scores['every_camera']:.1f}")
        assert triangulation > 25.0                       # the fixed offsets really hurt the pair
        # measured over training seeds 0 / 1 / 2: 0.79 / 0.82 / 0.87 of pair-only, 0.81 / 0.82 / 0.87 of triangulation
        assert scores["every_camera"] < 0.92 * scores["pair_only"]
        assert scores["every_camera"] < 0.92 * triangulation
    finally:
        torch.set_num_threads(threads)
