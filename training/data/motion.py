"""Recorded (or procedural) motion -> Human3.6M-like two-view training samples.

Motion files map sequence names to (T, 17, 3) arrays in millimetres, z up, h36m17 order (see the data README).
Mocap rigs place joints elsewhere than Human3.6M does (SPEC section 5), so every pose is rebuilt: bone directions
come from the mocap (torso, neck and shoulders re-derived from a body frame to sit where Human3.6M puts them),
bone lengths are drawn around Human3.6M-like means. Then each pose gets a random heading and place in front of a
two-camera rig (Human3.6M rigs from the embedded calibration, the "wide"/"narrow" rigs or random rigs), is
projected through both lenses and noised with `cvpose_ros.devtools.noise`. With `layout="coco17"` the rebuilt poses
become coco17 skeletons where detectors put their joints (`cvpose_ros.body.placement`, a head model with a random head
turn), and the noise model's 3D stage (per-view surface and random offsets) is applied before projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cvpose_ros.body.placement import coco17_from_h36m
from cvpose_ros.body.skeleton import H36M17, NUM_JOINTS, get_layout
from cvpose_ros.devtools import synthetic
from cvpose_ros.devtools.noise import apply_noise, draw_presets, get_preset, view_offsets_3d
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.geometry.torch_geometry import project_points
from training.data.h36m import load_cameras
from training.data.samples import SampleError, TwoViewSamples, concat_samples

# Human3.6M-like mean bone lengths in metres, indexed by child joint (public means of the training subjects).
H36M_BONE_LENGTHS = synthetic.MEAN_BONE_LENGTHS
ANKLE_HEIGHT_M = synthetic.ANKLE_HEIGHT_M
RIG_KINDS = ("h36m", "wide", "narrow", "random")

# ancestry[j, b] = 1 when bone b (named by its child joint) lies on the path from the pelvis to joint j.
_ANCESTRY = np.zeros((NUM_JOINTS, NUM_JOINTS))
for _j in range(NUM_JOINTS):
    _k = _j
    while _k > 0:
        _ANCESTRY[_j, _k] = 1.0
        _k = H36M17.parents[_k]


def load_motion(paths: list[str | Path], stride: int = 1, min_frames: int = 10) -> dict[str, np.ndarray]:
    """name -> (T, 17, 3) metres, z up, lowest ankle of each sequence at ANKLE_HEIGHT_M; every `stride`-th frame.

    Names are prefixed with the file stem ("cmu_h36m17_mm_60fps/001_01"). Raises SampleError on bad files.
    """
    out = {}
    for path in paths:
        try:
            data = np.load(path)
        except (OSError, ValueError) as exc:
            raise SampleError(f"cannot read motion file {path}: {exc}") from None
        with data:
            for name in data.files:
                if name == "joint_names":
                    continue
                seq = np.asarray(data[name], np.float64)
                if seq.ndim != 3 or seq.shape[1:] != (NUM_JOINTS, 3):
                    raise SampleError(f"{path}:{name}: expected (T, 17, 3) millimetres, got {seq.shape}")
                seq = seq[::stride] / 1000.0
                if len(seq) < min_frames or not np.isfinite(seq).all():
                    continue
                seq[..., 2] -= seq[:, [3, 6], 2].min() - ANKLE_HEIGHT_M
                out[f"{Path(path).stem}/{name}"] = seq
    if not out:
        raise SampleError(f"no usable sequences in {[str(p) for p in paths]}")
    return out


def split_sequences(names: list[str], holdout_every: int = 8) -> tuple[list[str], list[str]]:
    """Deterministic (train, held-back) split: every `holdout_every`-th sequence of the sorted names is held back."""
    ordered = sorted(names)
    held = ordered[holdout_every // 2::holdout_every] if holdout_every > 0 else []
    return [n for n in ordered if n not in set(held)], held


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def bone_directions(poses: np.ndarray, mocap_convention: bool = True) -> np.ndarray:
    """(F, J, 3) unit direction of each bone (indexed by child joint; row 0 unused).

    With `mocap_convention`, the spine->thorax, thorax->nose, nose->head and thorax->shoulder bones are re-derived
    from a body frame (left = shoulder line, up = spine to neck) to point where Human3.6M's joints sit.
    """
    parents = np.array(H36M17.parents)
    dirs = np.zeros_like(poses)
    dirs[:, 1:] = _unit(poses[:, 1:] - poses[:, parents[1:]])
    if not mocap_convention:
        return dirs
    up = _unit(poses[:, 9] - poses[:, 7])
    left = _unit(poses[:, 11] - poses[:, 14])
    forward = _unit(np.cross(left, up))
    left = np.cross(up, forward)
    up_head = _unit(poses[:, 10] - poses[:, 9])
    dirs[:, 8] = up
    dirs[:, 9] = _unit(up_head + 0.5 * forward)
    dirs[:, 10] = _unit(up_head - 0.3 * forward)
    dirs[:, 11] = _unit(left - 0.15 * up)
    dirs[:, 14] = _unit(-left - 0.15 * up)
    return dirs


def sample_bone_lengths(count: int, rng: np.random.Generator, scale_sd: float = 0.06,
                        bone_sd: float = 0.04, asymmetry_sd: float = 0.01) -> np.ndarray:
    """(count, J) bone lengths around the Human3.6M means: global scale x per-bone factor (shared left/right)
    x a small left/right asymmetry (real bodies differ by a few percent)."""
    scale = np.clip(rng.lognormal(0.0, scale_sd, (count, 1)), 0.8, 1.2)
    per_bone = np.clip(rng.normal(1.0, bone_sd, (count, NUM_JOINTS)), 0.85, 1.15)
    per_bone[:, list(H36M17.left)] = per_bone[:, list(H36M17.right)]
    per_bone *= rng.normal(1.0, asymmetry_sd, (count, NUM_JOINTS))
    return H36M_BONE_LENGTHS * scale * per_bone


def rebuild_poses(poses: np.ndarray, lengths: np.ndarray, mocap_convention: bool = True) -> np.ndarray:
    """Poses (F, J, 3) rebuilt from the pelvis along `bone_directions` with bone `lengths` (F, J)."""
    bones = bone_directions(poses, mocap_convention) * lengths[..., None]
    return poses[:, :1] + np.einsum("jb,fbd->fjd", _ANCESTRY, bones)


@dataclass
class RigPair:
    """Two cameras seen as one training geometry, and where people may stand in front of them."""

    cam0: CameraModel
    cam1: CameraModel
    cam0_from_world: RigidTransform
    cam1_from_world: RigidTransform
    center: np.ndarray   # (2,) floor position people are placed around
    radius: float


def make_rigs(kind: str, count: int, rng: np.random.Generator) -> list[RigPair]:
    """`count` rig pairs of one kind ("h36m": every subject and camera pair of the embedded calibration)."""
    if kind == "h36m":
        out = []
        for cams in load_cameras().values():
            centre = np.mean([c.cam_from_world.inverse().t[:2] for c in cams], axis=0)
            for a, b in ((0, 1), (0, 2), (1, 3), (2, 3)):
                out.append(RigPair(cams[a].model, cams[b].model, cams[a].cam_from_world, cams[b].cam_from_world,
                                   centre, 1.2))
        return out
    if kind not in RIG_KINDS:
        raise ValueError(f"unknown rig kind {kind!r}; expected one of {RIG_KINDS}")
    seeds = rng.integers(0, 2**31, count) if kind == "random" else [None]
    rigs = [synthetic.make_rig(kind, seed=int(s) if s is not None else None) for s in seeds]
    return [RigPair(r.cameras[0].model, r.cameras[1].model, r.cameras[0].cam_from_world,
                    r.cameras[1].cam_from_world, np.array(synthetic.ROOM_SIZE_M) / 2, 1.5) for r in rigs]


def _project(model: CameraModel, points: np.ndarray) -> np.ndarray:
    """Batched projection (float64) through the rational lens model; NaN behind the camera."""
    pts = torch.from_numpy(points)
    pix = project_points(pts, torch.from_numpy(model.K), torch.from_numpy(model.rational_coefficients())).numpy()
    return np.where((points[..., 2:] > 0.1), pix, np.nan)


def _noisy_views(p0: np.ndarray, p1: np.ndarray, rig: RigPair, noise_mix: dict[str, float], layout: str,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Detector output (N, 2, J, 2) and confidence (N, 2, J) for joints p0/p1 (N, J, 3) in each camera's frame:
    a preset drawn per sample from `noise_mix`, its 3D stage per view, projection, then its 2D stage."""
    names, which = draw_presets(noise_mix, len(p0), rng)
    kp = np.full(p0.shape[:1] + (2,) + p0.shape[1:-1] + (2,), np.nan)
    conf = np.zeros(kp.shape[:-1])
    for i, name in enumerate(names):
        sel = which == i
        if not sel.any():
            continue
        cfg = get_preset(name)
        seen = [view_offsets_3d(p[sel], cfg, rng, layout) for p in (p0, p1)]
        exact = np.stack([_project(rig.cam0, seen[0]), _project(rig.cam1, seen[1])], axis=1)
        kp[sel], conf[sel] = apply_noise(exact, cfg, rng, layout=layout)
    return kp, conf


def samples_from_poses(world: np.ndarray, rigs: list[RigPair], noise_mix: dict[str, float], rng: np.random.Generator,
                       margin_px: float = 5.0, max_tries: int = 4, layout: str = "h36m17") -> TwoViewSamples:
    """Place each pose (F, J, 3) at a random heading and spot in front of a random rig, project, add noise.

    Poses that leave either image are re-placed (up to `max_tries` times) and dropped after that.
    """
    pending = np.arange(len(world))
    done = []
    for _ in range(max_tries):
        if not len(pending):
            break
        rig_index = rng.integers(len(rigs), size=len(pending))
        yaw = rng.uniform(-np.pi, np.pi, len(pending))
        c, s = np.cos(yaw), np.sin(yaw)
        rot = np.zeros((len(pending), 3, 3))
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1.0
        local = world[pending] - get_layout(layout).root_of(world[pending])[:, None] * np.array([1.0, 1.0, 0.0])
        radius = np.sqrt(rng.uniform(0, 1, len(pending)))
        angle = rng.uniform(0, 2 * np.pi, len(pending))
        placed = np.einsum("nij,nkj->nki", rot, local)
        for r in np.unique(rig_index):
            sel = np.flatnonzero(rig_index == r)
            rig = rigs[r]
            spot = rig.center + (rig.radius * radius[sel])[:, None] * np.stack([np.cos(angle[sel]),
                                                                              np.sin(angle[sel])], 1)
            pts = placed[sel] + np.concatenate([spot, np.zeros((len(sel), 1))], 1)[:, None]
            p0, p1 = rig.cam0_from_world.apply(pts), rig.cam1_from_world.apply(pts)
            kp = np.stack([_project(rig.cam0, p0), _project(rig.cam1, p1)], axis=1)
            size = np.array([[rig.cam0.width, rig.cam0.height], [rig.cam1.width, rig.cam1.height]])[None, :, None]
            inside = (np.isfinite(kp).all(-1) & (kp > margin_px).all(-1) & (kp < size - margin_px).all(-1)).all((1, 2))
            if inside.any():
                noisy, conf = _noisy_views(p0[inside], p1[inside], rig, noise_mix, layout, rng)
                done.append((pending[sel[inside]], r, noisy, p0[inside], conf))
        placed_ids = np.concatenate([d[0] for d in done]) if done else np.zeros(0, int)
        pending = np.setdiff1d(pending, placed_ids)
    if not done:
        raise SampleError("no pose could be placed inside both images of any rig")
    noisy = np.concatenate([d[2] for d in done])
    conf = np.concatenate([d[4] for d in done])
    rig_of = np.concatenate([np.full(len(d[0]), d[1]) for d in done])
    gt = np.concatenate([d[3] for d in done])
    K = np.stack([np.stack([rigs[r].cam0.K, rigs[r].cam1.K]) for r in range(len(rigs))])
    dist = np.stack([np.stack([rigs[r].cam0.rational_coefficients(), rigs[r].cam1.rational_coefficients()])
                     for r in range(len(rigs))])
    rel = [rigs[r].cam1_from_world.compose(rigs[r].cam0_from_world.inverse()) for r in range(len(rigs))]
    R10, t10 = np.stack([x.R for x in rel]), np.stack([x.t for x in rel])
    return TwoViewSamples(noisy, conf, K[rig_of], dist[rig_of], R10[rig_of], t10[rig_of], gt)


def motion_samples(sequences: dict[str, np.ndarray], count: int, rig_mix: dict[str, float],
                   noise_mix: dict[str, float], rng: np.random.Generator, mocap_convention: bool = True,
                   random_rigs: int = 64, layout: str = "h36m17", bone_spread: float = 1.0) -> TwoViewSamples:
    """`count` two-view samples from frames drawn uniformly over all sequences, rigs drawn per `rig_mix`, with
    ground truth and keypoints in `layout` (h36m17, or coco17 placed as detectors place it). `bone_spread` widens
    the body-size and bone-length variation (1 = Human3.6M-like subjects)."""
    layout = get_layout(layout).name
    frames = np.concatenate(list(sequences.values()))
    pick = frames[rng.integers(len(frames), size=count)]
    lengths = sample_bone_lengths(count, rng, scale_sd=0.06 * bone_spread, bone_sd=0.04 * bone_spread)
    rebuilt = rebuild_poses(pick, lengths, mocap_convention)
    rebuilt[..., 2] += ANKLE_HEIGHT_M - np.minimum(rebuilt[:, 3, 2], rebuilt[:, 6, 2])[:, None] \
        + np.maximum(np.minimum(pick[:, 3, 2], pick[:, 6, 2]) - ANKLE_HEIGHT_M, 0.0)[:, None]
    if layout == "coco17":
        rebuilt = coco17_from_h36m(rebuilt, rng)
    kinds = [k for k, w in rig_mix.items() if w > 0]
    if not kinds:
        raise ValueError(f"rig mix needs a positive weight, got {rig_mix}")
    weights = np.array([rig_mix[k] for k in kinds], float)
    which = rng.choice(len(kinds), size=count, p=weights / weights.sum())
    parts = [samples_from_poses(rebuilt[which == i], make_rigs(k, random_rigs, rng), noise_mix, rng, layout=layout)
             for i, k in enumerate(kinds) if (which == i).any()]

    return concat_samples(parts)


def procedural_sequences(num_sequences: int, seed: int, duration_s: float = 20.0, fps: float = 10.0,
                         people: int = 3) -> dict[str, np.ndarray]:
    """Procedural motion from `cvpose_ros.devtools.synthetic` as sequences (already in Human3.6M joint placement)."""
    out = {}
    for i in range(num_sequences):
        scene = synthetic.generate_scene(num_people=people, duration_s=duration_s, fps=fps, seed=seed + i)
        for p in range(scene.num_people):
            out[f"procedural/{i}_{p}"] = scene.joints[:, p]
    return out
