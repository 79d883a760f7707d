"""Human3.6M in the common preprocessed form (SPEC section 2) -> two-view samples.

Reads `data_3d_h36m.npz` (`positions_3d[subject][action]`: (T, 32 or 17, 3) metres, world frame) and optionally
`data_2d_h36m_<detector>.npz` (`positions_2d[subject][action]`: 4 views of (T2, 17, 2 or 3) raw pixels, trimmed to
the 3D length). Without a 2D file the 3D poses are projected through the calibration (exact 2D). Calibration of
all seven subjects ships with the package (`cvpose_ros/data/h36m_cameras.json`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from cvpose_ros.body.skeleton import NUM_JOINTS
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from training.data.samples import SampleError, TwoViewSamples, concat_samples

# 32-joint mocap arrays -> h36m17 (SPEC section 2).
KEEP_FROM_32 = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])
DEFAULT_PAIRS = ((0, 1), (0, 2), (1, 3), (2, 3))
TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")


@dataclass
class H36MCamera:
    """One calibrated Human3.6M camera of one subject."""

    model: CameraModel
    cam_from_world: RigidTransform


def default_cameras_path() -> Path:
    """The calibration embedded in the package."""
    return Path(str(resources.files("cvpose_ros") / "data" / "h36m_cameras.json"))


def load_cameras(path: str | Path | None = None) -> dict[str, list[H36MCamera]]:
    """subject -> its 4 cameras in the preprocessed files' order, from the package's calibration JSON."""
    path = Path(path) if path is not None else default_cameras_path()
    try:
        data = json.loads(path.read_text())
        order, intrinsics, extrinsics = data["camera_order"], data["intrinsics"], data["extrinsics"]
    except (OSError, ValueError, KeyError) as exc:
        raise SampleError(f"cannot read Human3.6M calibration {path}: {exc}") from None
    models = {}
    for cam in order:
        c = intrinsics[cam]
        p1, p2 = c["tangential_p1_p2"]
        models[cam] = CameraModel.from_h36m(c["focal_px"], c["center_px"], c["radial_k1_k2_k3"], [p2, p1],
                                            width=c["size_px"][0], height=c["size_px"][1])
    return {subject: [H36MCamera(models[cam], RigidTransform(np.reshape(ext[cam]["R_cam_from_world"], (3, 3)),
                                                             ext[cam]["t_cam_from_world_m"])) for cam in order]
            for subject, ext in extrinsics.items()}


@dataclass
class H36MSamples:
    """Two-view samples plus what each came from (for per-action and per-pair tables)."""

    samples: TwoViewSamples
    subject: np.ndarray   # (N,) str
    action: np.ndarray    # (N,) str, action without the take number ("Walking 1" -> "Walking")
    pair: np.ndarray      # (N,) str such as "0-1"
    frame: np.ndarray     # (N,) int frame index in the sequence


def parse_pairs(text: str) -> tuple[tuple[int, int], ...]:
    """"0-1,0-2" -> ((0, 1), (0, 2)); raises ValueError on anything else."""
    pairs = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        m = re.fullmatch(r"([0-3])-([0-3])", item)
        if not m or m.group(1) == m.group(2):
            raise ValueError(f"bad camera pair {item!r}: expected two different view indices 0..3 like '0-1'")
        pairs.append((int(m.group(1)), int(m.group(2))))
    if not pairs:
        raise ValueError("no camera pairs given")
    return tuple(pairs)


def _load_npz_dict(path: str | Path, key: str) -> dict:
    try:
        with np.load(path, allow_pickle=True) as f:
            return f[key].item()
    except (OSError, KeyError, ValueError) as exc:
        raise SampleError(f"{path}: cannot read '{key}' ({exc})") from None


def _to_h36m17(poses: np.ndarray, where: str) -> np.ndarray:
    if poses.ndim != 3 or poses.shape[-1] != 3 or poses.shape[1] not in (17, 32):
        raise SampleError(f"{where}: 3D poses must be (T, 32 or 17, 3), got {poses.shape}")
    return poses[:, KEEP_FROM_32] if poses.shape[1] == 32 else poses


def load_h36m(data_3d: str | Path, data_2d: str | Path | None = None, subjects: tuple[str, ...] = TEST_SUBJECTS,
              pairs: tuple[tuple[int, int], ...] = DEFAULT_PAIRS, stride: int = 1,
              cameras: str | Path | None = None) -> H36MSamples:
    """Two-view samples of `subjects` for every action and camera pair, every `stride`-th frame.

    Frames 0, stride, 2 * stride, ... of each 3D sequence of T frames (ceil(T / stride) of them, whatever T). A 2D
    sequence must have at least T frames: it is trimmed to its first T and strided the same way, so 2D and 3D
    frames stay paired one to one. A 2D sequence shorter than its 3D sequence raises SampleError (which frames
    are missing is unknown, so no trimming rule would keep the pairing right).
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    positions_3d = _load_npz_dict(data_3d, "positions_3d")
    positions_2d = _load_npz_dict(data_2d, "positions_2d") if data_2d is not None else None
    calib = load_cameras(cameras)
    parts, meta = [], {"subject": [], "action": [], "pair": [], "frame": []}
    for subject in subjects:
        if subject not in positions_3d:
            raise SampleError(f"{data_3d}: no subject {subject}; it has {sorted(positions_3d)}")
        if subject not in calib:
            raise SampleError(f"no calibration for subject {subject}")
        cams = calib[subject]
        for action, poses in sorted(positions_3d[subject].items()):
            full = _to_h36m17(np.asarray(poses, np.float64), f"{subject}/{action}")
            world = full[::stride]
            cam_pts = [c.cam_from_world.apply(world) for c in cams]
            views = _views_2d(positions_2d, subject, action, len(full), stride, cams, cam_pts)
            for a, b in pairs:
                rel = cams[b].cam_from_world.compose(cams[a].cam_from_world.inverse())
                n = len(world)
                parts.append(TwoViewSamples(
                    kp2d=np.stack([views[a][0], views[b][0]], axis=1), conf=np.stack([views[a][1], views[b][1]], 1),
                    K=np.broadcast_to(np.stack([cams[a].model.K, cams[b].model.K]), (n, 2, 3, 3)),
                    dist=np.broadcast_to(np.stack([cams[a].model.rational_coefficients(),
                                                   cams[b].model.rational_coefficients()]), (n, 2, 8)),
                    R10=np.broadcast_to(rel.R, (n, 3, 3)), t10=np.broadcast_to(rel.t, (n, 3)), gt3d=cam_pts[a]))
                meta["subject"] += [subject] * n
                meta["action"] += [re.sub(r"[\s_]*\d+$", "", action)] * n
                meta["pair"] += [f"{a}-{b}"] * n
                meta["frame"].append(np.arange(n) * stride)
    if not parts:
        raise SampleError(f"{data_3d}: no frames for subjects {subjects}")

    return H36MSamples(concat_samples(parts), np.array(meta["subject"]), np.array(meta["action"]),
                       np.array(meta["pair"]), np.concatenate(meta["frame"]))


def _views_2d(positions_2d: dict | None, subject: str, action: str, length: int, stride: int,
              cams: list[H36MCamera], cam_pts: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pixels, confidence) per view for frames 0, stride, ... of a 3D sequence of `length` (unstrided) frames:
    from the 2D file (which needs >= `length` frames; trimmed to `length`, then strided) or exact projections."""
    if positions_2d is None:
        return [(c.model.project(p), np.ones(p.shape[:2])) for c, p in zip(cams, cam_pts, strict=True)]
    try:
        views = positions_2d[subject][action]
    except KeyError:
        raise SampleError(f"2D file has no {subject}/{action}") from None
    out = []
    for v, view in enumerate(views):
        view = np.asarray(view, np.float64)
        if view.ndim != 3 or view.shape[1] != NUM_JOINTS or view.shape[2] not in (2, 3) or len(view) < length:
            raise SampleError(f"2D {subject}/{action} view {v}: expected (T >= {length}, 17, 2 or 3), got {view.shape}")
        view = view[:length:stride]
        conf = view[..., 2] if view.shape[2] == 3 else np.ones(view.shape[:2])
        out.append((view[..., :2], conf))
    return out
