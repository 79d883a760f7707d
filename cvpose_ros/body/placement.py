"""Where 2D detectors put their joints: coco17 skeletons in 3D from Human3.6M-placed (h36m17) poses.

Training a coco17 refiner needs 3D coco17 joints, and mocap gives h36m17. Elbows and wrists carry over; shoulders
sit further out along the shoulder girdle (detectors mark the outside of the shoulder, not the joint centre); legs
keep the mocap's directions at detector lengths (shorter thigh and shin); the face (nose, eyes, ears) comes from
a head model placed above the shoulders along the mocap's head axis, turned by a head yaw and pitch drawn within
a natural range; hips sit where detectors put them (narrower than Human3.6M's hip-joint
centres, at a height that varies per person as it varies between detectors). The numbers are measured
(docs/placement.md): CMU Panoptic's 3D COCO-19 skeletons and MediaPipe's 4-camera triangulation of real video.

Frames: body (x left, y up, z forward) from the shoulders and the pelvis->thorax axis; head (x left, y up,
z forward) from the body frame turned by yaw about y and pitch about x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cvpose_ros.body.skeleton import COCO17, H36M17

_H = {name: i for i, name in enumerate(H36M17.joint_names)}
_C = {name: i for i, name in enumerate(COCO17.joint_names)}
# joints that carry over by name
_SAME = ("l_elbow", "r_elbow", "l_wrist", "r_wrist")


@dataclass(frozen=True)
class Placement:
    """Detector joint placement (metres; head-frame coordinates are x left, y up, z forward from mid-ears)."""

    ears_above_shoulders: float = 0.17    # mid-shoulder -> mid-ears along the head's up axis
    ears_forward: float = 0.05            # ... and forward of the shoulder line (body frame)
    ear_half_width: float = 0.062         # mid-ears -> each ear (Panoptic 81 mm, MediaPipe 42 mm)
    nose: tuple[float, float, float] = (0.0, -0.025, 0.107)      # nose in the head frame
    eye: tuple[float, float, float] = (0.033, 0.005, 0.083)      # left eye in the head frame (right: x mirrored)
    hip_width_ratio: float = 0.72         # coco hip half-width / Human3.6M hip half-width
    hip_up: float = 0.03                  # coco hips above the Human3.6M hip centres
    hip_sd: float = 0.04                  # per-person std of hip_up and (x 1.25) of hip_width_ratio: detectors differ
                                          # most at the hips (MediaPipe puts them 8 cm lower than Panoptic)
    head_yaw_deg: float = 30.0            # std of the head's yaw against the body (clipped at 2.2 std)
    head_pitch_deg: float = 12.0          # std of the head's extra pitch
    face_sd: float = 0.008                # per-person std of the face offsets
    ear_sd: float = 0.014                 # per-person std of the ear half-width (detectors disagree most here)
    head_sd: float = 0.02                 # per-person std of ears_above_shoulders
    leg_scale: float = 0.92               # detector thigh and shin / Human3.6M's (Panoptic 0.90, MediaPipe 0.83)
    leg_sd: float = 0.05                  # per-person std of leg_scale
    shoulder_width_ratio: float = 1.08    # detector shoulder width / the mocap joint centres' (Panoptic 1.06,
                                          # MediaPipe 1.14): detectors mark the outside of the shoulder
    shoulder_sd: float = 0.04             # per-person std of shoulder_width_ratio


DEFAULT_PLACEMENT = Placement()


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def body_frame(h36m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rows left, up, forward of h36m17 poses (..., 17, 3)."""
    up = _unit(h36m[..., _H["thorax"], :] - h36m[..., _H["pelvis"], :])
    left = h36m[..., _H["l_shoulder"], :] - h36m[..., _H["r_shoulder"], :]
    left = _unit(left - (left * up).sum(-1, keepdims=True) * up)
    return np.stack([left, up, np.cross(left, up)], axis=-2)


def _rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation by `angle` about unit `axis` (Rodrigues), batched."""
    k = np.zeros(axis.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    k = k - np.swapaxes(k, -1, -2)
    a = angle[..., None, None]
    return np.eye(3) + np.sin(a) * k + (1.0 - np.cos(a)) * k @ k


def head_frame(h36m: np.ndarray, yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rows left, up, forward of the head: up along the pose's thorax -> head-top axis, facing the body's
    forward turned by `yaw` (radians, about up) and tilted by `pitch` (about left)."""
    body = body_frame(h36m)
    up = _unit(h36m[..., _H["head"], :] - h36m[..., _H["thorax"], :])
    forward = body[..., 2, :] - (body[..., 2, :] * up).sum(-1, keepdims=True) * up
    forward = _unit(np.where(np.linalg.norm(forward, axis=-1, keepdims=True) > 1e-6, forward, body[..., 2, :]))
    forward = (_rotation(up, yaw) @ forward[..., None])[..., 0]
    left = np.cross(up, forward)
    turn = _rotation(left, pitch)
    up, forward = (turn @ up[..., None])[..., 0], (turn @ forward[..., None])[..., 0]
    return np.stack([left, up, forward], axis=-2)


def coco17_from_h36m(h36m: np.ndarray, rng: np.random.Generator | None = None,
                     placement: Placement = DEFAULT_PLACEMENT) -> np.ndarray:
    """coco17 joints (..., 17, 3) of Human3.6M-placed poses (..., 17, 3), any metric frame.

    With `rng`, each pose gets its own head yaw/pitch and face/head proportions; without, the mean placement
    looking straight ahead (deterministic: demo ground truth, tests).
    """
    h36m = np.asarray(h36m, dtype=np.float64)
    batch = h36m.shape[:-2]
    out = np.full(batch + (COCO17.num_joints, 3), np.nan)
    for name in _SAME:
        out[..., _C[name], :] = h36m[..., _H[name], :]
    p = placement
    leg = np.full(batch, p.leg_scale) if rng is None else \
        p.leg_scale + p.leg_sd * np.clip(rng.standard_normal(batch), -2.0, 2.0)
    if rng is None:
        yaw = pitch = np.zeros(batch)
        face = np.zeros(batch + (3, 3))
        head_extra = np.zeros(batch)
        hip_extra = np.zeros(batch + (2,))
    else:
        limit = 2.2
        yaw = np.deg2rad(p.head_yaw_deg) * np.clip(rng.standard_normal(batch), -limit, limit)
        pitch = np.deg2rad(p.head_pitch_deg) * np.clip(rng.standard_normal(batch), -limit, limit)
        face = p.face_sd * rng.standard_normal(batch + (3, 3))
        head_extra = p.head_sd * np.clip(rng.standard_normal(batch), -2.0, 2.0)
        hip_extra = p.hip_sd * np.clip(rng.standard_normal(batch + (2,)), -2.0, 2.0)
    shoulder_ratio = np.full(batch, p.shoulder_width_ratio) if rng is None else \
        p.shoulder_width_ratio + p.shoulder_sd * np.clip(rng.standard_normal(batch), -2.0, 2.0)
    head = head_frame(h36m, yaw, pitch)
    body = body_frame(h36m)
    mid_shoulder = 0.5 * (h36m[..., _H["l_shoulder"], :] + h36m[..., _H["r_shoulder"], :])
    for side in ("l", "r"):  # the arm's joints stay; the shoulder keypoint sits further out along the girdle
        shoulder = h36m[..., _H[f"{side}_shoulder"], :]
        out[..., _C[f"{side}_shoulder"], :] = mid_shoulder + shoulder_ratio[..., None] * (shoulder - mid_shoulder)
    ears = (mid_shoulder + (p.ears_above_shoulders + head_extra)[..., None] * head[..., 1, :]
            + p.ears_forward * body[..., 2, :])

    def in_head(offset: np.ndarray) -> np.ndarray:
        return ears + np.einsum("...k,...kd->...d", offset, head)

    nose = np.broadcast_to(np.asarray(p.nose), batch + (3,)) + face[..., 0, :]
    eye = np.broadcast_to(np.asarray(p.eye), batch + (3,)) + face[..., 1, :]
    ear_half = p.ear_half_width + (p.ear_sd / max(p.face_sd, 1e-9)) * face[..., 2, 0]
    out[..., _C["nose"], :] = in_head(nose)
    out[..., _C["l_eye"], :] = in_head(eye)
    out[..., _C["r_eye"], :] = in_head(eye * np.array([-1.0, 1.0, 1.0]))
    zeros = np.zeros(batch)
    out[..., _C["l_ear"], :] = in_head(np.stack([ear_half, zeros, zeros], -1))
    out[..., _C["r_ear"], :] = in_head(np.stack([-ear_half, zeros, zeros], -1))
    pelvis = h36m[..., _H["pelvis"], :]
    up = body[..., 1, :]
    width = (p.hip_width_ratio + 1.25 * hip_extra[..., 1])[..., None]
    height = (p.hip_up + hip_extra[..., 0])[..., None]
    for side in ("l", "r"):
        hip, knee, ankle = (h36m[..., _H[f"{side}_{j}"], :] for j in ("hip", "knee", "ankle"))
        new_hip = pelvis + width * (hip - pelvis) + height * up
        new_knee = new_hip + leg[..., None] * (knee - hip)  # the mocap thigh and shin directions, shorter
        out[..., _C[f"{side}_hip"], :] = new_hip
        out[..., _C[f"{side}_knee"], :] = new_knee
        out[..., _C[f"{side}_ankle"], :] = new_knee + leg[..., None] * (ankle - knee)
    return out
