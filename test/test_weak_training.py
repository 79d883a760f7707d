"""A short CPU training run with ONLY the weak losses beats triangulation on held-out noisy synthetic poses.

Data made here: random plausible 17-joint bodies (Human3.6M-like bone lengths, random joint angles within cones
around a rest pose, random heading and position), two calibrated cameras 90 degrees apart, 5 px Gaussian detector
noise, coarse poses from `triangulate_pair`. The 2D targets of the reprojection loss are the clean projections (2D
annotations, the paper's weak label); no 3D enters the training.
"""

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from cvpose_ros.body.skeleton import H36M17
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.geometry.triangulation import triangulate_pair
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.losses import mpjpe, weak_supervision_loss
from cvpose_ros.model.pipeline import create_model, refine_tensors

# Per child joint: bone length (m) and rest direction in the body frame (x left, y up, z forward).
BONE_LENGTHS = np.array([0, .13, .45, .44, .13, .45, .44, .23, .25, .11, .115, .15, .28, .25, .15, .28, .25])
REST_DIRECTIONS = np.array([[0, 0, 0], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0],
                            [0, 1, 0], [0, 1, 0], [0, 1, .3], [0, 1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0],
                            [-1, 0, 0], [0, -1, 0], [0, -1, 0]], dtype=np.float64)
CONE_DEG = np.array([0, 10, 45, 60, 10, 45, 60, 15, 15, 20, 20, 15, 80, 90, 15, 80, 90])
NOISE_PX = 5.0


def random_bodies(count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 17, 3) world poses (z up, metres) with left/right-symmetric bone lengths per body."""
    rest = REST_DIRECTIONS / np.maximum(np.linalg.norm(REST_DIRECTIONS, axis=1, keepdims=True), 1e-9)
    axes = rng.normal(size=(count, 17, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    angles = rng.uniform(0, 1, (count, 17)) * np.radians(CONE_DEG)
    turn = Rotation.from_rotvec((axes * angles[..., None]).reshape(-1, 3))
    directions = turn.apply(np.tile(rest, (count, 1))).reshape(count, 17, 3)
    scale = rng.normal(1.0, 0.05, (count, 1))
    body = np.zeros((count, 17, 3))
    for joint, parent in enumerate(H36M17.parents):  # 16 vectorised steps down the kinematic tree
        if parent >= 0:
            body[:, joint] = body[:, parent] + directions[:, joint] * BONE_LENGTHS[joint] * scale
    heading = Rotation.from_euler("y", rng.uniform(-np.pi, np.pi, (count, 1))).as_matrix()
    body = np.einsum("nij,nkj->nki", heading, body)
    world = np.stack([body[..., 0], -body[..., 2], body[..., 1]], axis=-1)
    return world + np.concatenate([rng.uniform(-0.5, 0.5, (count, 1, 2)), np.ones((count, 1, 1))], axis=-1)


def make_samples(count: int, rng: np.random.Generator) -> dict:
    """Two-view samples: tensors for training plus the camera-0 ground truth for evaluation only."""
    K = np.array([[1000.0, 0, 500], [0, 1000.0, 500], [0, 0, 1]])
    cam = CameraModel(K, np.array([-0.05, 0.01, 0, 0, 0]), "plumb_bob", 1000, 1000)
    cam0_from_world = RigidTransform.look_at([4.5, 0, 1.4], [0, 0, 1.0])
    cam1_from_world = RigidTransform.look_at([0, 4.5, 1.6], [0, 0, 1.0])
    cam1_from_cam0 = cam1_from_world.compose(cam0_from_world.inverse())
    world = random_bodies(count, rng)
    gt0 = cam0_from_world.apply(world)
    clean = np.stack([cam.project(gt0), cam.project(cam1_from_world.apply(world))], axis=1)
    noisy = clean + rng.normal(0.0, NOISE_PX, clean.shape)
    ones = np.ones((count, 17))
    tri = triangulate_pair(cam, cam, cam1_from_cam0, noisy[:, 0], ones, noisy[:, 1], ones)
    f32 = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    return {
        "coarse0": f32(tri.cam0), "coarse1": f32(tri.cam1), "err": f32(tri.reprojection_error),
        "valid": torch.tensor(tri.valid), "kp2d": f32(clean), "detections": f32(noisy),
        "conf": torch.ones(count, 2, 17),
        "K": f32(np.broadcast_to(K, (count, 2, 3, 3))), "dist": f32(np.broadcast_to(cam.rational_coefficients(),
                                                                                    (count, 2, 8))),
        "R10": f32(np.broadcast_to(cam1_from_cam0.R, (count, 3, 3))),
        "t10": f32(np.broadcast_to(cam1_from_cam0.t, (count, 3))), "gt0": gt0, "tri0": tri.cam0,
    }


def test_weak_losses_alone_beat_triangulation_on_held_out_samples():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is many times faster on a shared CPU (no spinning)
    try:
        _train_and_check()
    finally:
        torch.set_num_threads(threads)


def _train_and_check() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    train, held_out = make_samples(3000, rng), make_samples(500, rng)
    spec = FeatureSpec()
    model = create_model(spec, view_channels=16, joint_channels=32, part_channels=64, decoder_channels=32)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3, amsgrad=True)
    batch_gen = torch.Generator().manual_seed(0)
    keys = ("coarse0", "coarse1", "err", "valid", "R10", "t10")
    model.train()
    for _ in range(500):
        idx = torch.randint(0, 3000, (128,), generator=batch_gen)
        b = {k: v[idx] for k, v in train.items() if isinstance(v, torch.Tensor)}
        refined0, refined1 = refine_tensors(model, *(b[k] for k in keys), spec=spec)
        loss, _ = weak_supervision_loss(refined0, refined1, b["kp2d"], b["conf"], b["K"], b["dist"], b["R10"],
                                        b["t10"])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        refined0, _ = refine_tensors(model, *(held_out[k] for k in keys), spec=spec, fuse=True)
    triangulation_mm = 1000 * mpjpe(held_out["tri0"], held_out["gt0"])
    refined_mm = 1000 * mpjpe(refined0.double().numpy(), held_out["gt0"])
    print(f"held-out MPJPE: triangulation {triangulation_mm:.1f} mm, refined {refined_mm:.1f} mm")
    assert 25.0 < triangulation_mm < 70.0  # the noise really hurts the coarse poses
    assert refined_mm < 0.93 * triangulation_mm
