"""Procedural people moving through a room and two-camera rigs, for tests, the demo and benchmarks.

People are built by forward kinematics in h36m17 joint order (metres, world frame with z up): each follows a
smooth closed path through the room, walking with a gait phase tied to the distance travelled (hip/knee flexion,
opposite arm swing, pelvis bob), and now and then stands, waves or crouches. Bone lengths are drawn around
Human3.6M-like means. Everything is deterministic for a given seed and vectorised over frames, people and joints.

Rigs are two cameras (`CameraModel` + `cam_from_world`): "demo" (two ceiling corners of a 6 x 5 m room, 1280x720,
plumb_bob), "wide" (~10 m apart, 135 deg between optical axes), "narrow" (~4 m apart, 45 deg) and "random".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cvpose_ros.body.placement import coco17_from_h36m
from cvpose_ros.body.skeleton import NUM_JOINTS
from cvpose_ros.devtools.noise import apply_noise, view_offsets_3d
from cvpose_ros.geometry.camera import CameraModel, RigidTransform

ROOM_SIZE_M = (6.0, 5.0)  # x, y extent of the default room; the floor is z = 0
ACTIONS = ("walk", "stand", "wave", "crouch")

# Mean bone lengths (metres) indexed by child joint, close to the Human3.6M training subjects' means.
MEAN_BONE_LENGTHS = np.array([
    0.0,                    # pelvis (root)
    0.133, 0.452, 0.445,    # r_hip, r_knee, r_ankle
    0.133, 0.452, 0.445,    # l_hip, l_knee, l_ankle
    0.233, 0.257,           # spine, thorax
    0.121, 0.115,           # neck(nose), head
    0.151, 0.278, 0.252,    # l_shoulder, l_elbow, l_wrist
    0.151, 0.278, 0.252,    # r_shoulder, r_elbow, r_wrist
])
ANKLE_HEIGHT_M = 0.08


@dataclass
class Scene:
    """Ground-truth motion of P people over T frames."""

    joints: np.ndarray      # (T, P, J, 3) world frame, metres, z up
    fps: float
    track_ids: np.ndarray   # (P,) int, stable per person
    actions: np.ndarray     # (T, P) int index into ACTIONS of the dominant action
    layout: str = "h36m17"  # joint definition of `joints`

    def in_layout(self, layout: str) -> Scene:
        """The same motion in another joint definition (coco17: where detectors put joints, head looking ahead)."""
        if layout == self.layout:
            return self
        if (self.layout, layout) != ("h36m17", "coco17"):
            raise ValueError(f"cannot convert a {self.layout} scene to {layout}")
        return replace(self, joints=coco17_from_h36m(self.joints), layout=layout)

    @property
    def num_frames(self) -> int:
        return self.joints.shape[0]

    @property
    def num_people(self) -> int:
        return self.joints.shape[1]

    def stamps(self, start: float = 0.0) -> np.ndarray:
        """(T,) frame times in seconds."""
        return start + np.arange(self.num_frames) / self.fps


@dataclass
class RigCamera:
    """One camera of a rig: lens model, pose and the optical frame id it publishes in."""

    name: str
    model: CameraModel
    cam_from_world: RigidTransform
    frame_id: str

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 3) in this camera's optical frame."""
        return self.cam_from_world.apply(points)


@dataclass
class Rig:
    """Calibrated cameras looking at the same room (two, or more for `corner_rig`)."""

    kind: str
    cameras: tuple[RigCamera, ...]

    @property
    def cam1_from_cam0(self) -> RigidTransform:
        """x_cam1 = R @ x_cam0 + t."""
        return self.cameras[1].cam_from_world.compose(self.cameras[0].cam_from_world.inverse())


@dataclass
class SceneKeypoints:
    """What a 2D detector would report for one camera over a scene."""

    keypoints: np.ndarray   # (T, P, J, 2) raw (distorted) pixels; NaN = missing
    confidence: np.ndarray  # (T, P, J) 0..1, 0 = missing
    visible: np.ndarray     # (T, P) bool: enough joints in the image for the detector to report the person


# ---------------------------------------------------------------------------------------------------------------
# People
def sample_bone_lengths(num_people: int, rng: np.random.Generator) -> np.ndarray:
    """(P, J) bone lengths: a per-person scale (sd 5%) times a per-bone variation (sd 3%), left/right shared."""
    scale = np.clip(rng.normal(1.0, 0.05, size=(num_people, 1)), 0.88, 1.12)
    per_bone = np.clip(rng.normal(1.0, 0.03, size=(num_people, NUM_JOINTS)), 0.92, 1.08)
    per_bone[:, [4, 5, 6, 11, 12, 13]] = per_bone[:, [1, 2, 3, 14, 15, 16]]
    return MEAN_BONE_LENGTHS * scale * per_bone


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Moving average along axis 0 with edge padding (window >= 1 frames)."""
    if window <= 1:
        return x
    pad = window // 2
    padded = np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], window - 1 - pad, 0)])
    csum = np.concatenate([np.zeros_like(x[:1]), np.cumsum(padded, axis=0)])
    return (csum[window:] - csum[:-window]) / window


def _action_weights(num_frames: int, num_people: int, fps: float, actions: tuple[str, ...],
                    rng: np.random.Generator) -> np.ndarray:
    """(T, P, len(ACTIONS)) smoothly blended action weights from random episodes of 2-5 s (walking first)."""
    probs = np.array([{"walk": 0.55, "stand": 0.15, "wave": 0.15, "crouch": 0.15}[a] for a in actions])
    choices = np.array([ACTIONS.index(a) for a in actions])
    one_hot = np.zeros((num_frames, num_people, len(ACTIONS)))
    for p in range(num_people):  # a handful of episodes per person: not a hot path
        t, first = 0, True
        while t < num_frames:
            length = int(rng.uniform(2.0, 5.0) * fps)
            act = ACTIONS.index("walk") if first and "walk" in actions else rng.choice(choices, p=probs / probs.sum())
            one_hot[t:t + length, p, act] = 1.0
            t, first = t + length, False
    return _smooth(one_hot, max(1, int(0.6 * fps)))


def _room_paths(num_people: int, room: tuple[float, float], rng: np.random.Generator,
                samples: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Random smooth closed curves inside the room: (P, S, 2) points and (P, S) cumulative arc length."""
    u = np.linspace(0.0, 2 * np.pi, samples)
    k = np.arange(1, 4)
    amp = rng.uniform(0.3, 1.0, size=(num_people, 2, 3)) / k
    phase = rng.uniform(0, 2 * np.pi, size=(num_people, 2, 3))
    curve = (amp[..., None] * np.cos(k[None, None, :, None] * u + phase[..., None])).sum(axis=2)  # (P, 2, S)
    lo, hi = curve.min(axis=2, keepdims=True), curve.max(axis=2, keepdims=True)
    margin = 0.6
    extent = np.array(room)[None, :, None] - 2 * margin
    span = extent * rng.uniform(0.55, 1.0, size=(num_people, 2, 1))
    offset = margin + rng.uniform(0, 1, size=(num_people, 2, 1)) * (extent - span)
    points = (offset + (curve - lo) / (hi - lo) * span).transpose(0, 2, 1)
    arc = np.concatenate([np.zeros((num_people, 1)),
                          np.cumsum(np.linalg.norm(np.diff(points, axis=1), axis=2), axis=1)], axis=1)
    return points, arc


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _direction(flexion: np.ndarray, abduction: np.ndarray, side: float) -> np.ndarray:
    """Unit limb direction in the body frame (forward, left, up): hanging down at zero, `flexion` swings it
    forward, `abduction` raises it sideways towards `side` (+1 left, -1 right)."""
    ca = np.cos(abduction)
    return np.stack([np.sin(flexion) * ca, side * np.sin(abduction), -np.cos(flexion) * ca], axis=-1)


def _body_frame_pose(w: np.ndarray, phase: np.ndarray, t: np.ndarray, bones: np.ndarray) -> np.ndarray:
    """(T, P, J, 3) joints relative to the pelvis in (forward, left, up) from action weights and gait phase."""
    walk, stand, wave, crouch = (w[..., i] for i in range(len(ACTIONS)))
    out = np.zeros(w.shape[:2] + (NUM_JOINTS, 3))
    b = bones[None]  # (1, P, J)
    zero = np.zeros_like(walk)
    lean = 0.08 * walk + 0.02 * stand + 0.45 * crouch
    for side, (hip, knee, ankle), (sho, elb, wri), ph in (
        (-1.0, (1, 2, 3), (14, 15, 16), phase),          # right leg / right arm
        (+1.0, (4, 5, 6), (11, 12, 13), phase + np.pi),  # left leg / left arm
    ):
        hip_flex = walk * 0.38 * np.sin(ph) + crouch * 1.55
        knee_flex = walk * (0.1 + 0.95 * np.clip(np.cos(ph), 0, None) ** 2) + stand * 0.05 + wave * 0.05 + crouch * 2.0
        out[..., hip, :] = b[..., hip, None] * _unit(np.array([0.0, side * 0.97, -0.24]))
        out[..., knee, :] = out[..., hip, :] + b[..., knee, None] * _direction(hip_flex, zero + 0.04, side)
        out[..., ankle, :] = out[..., knee, :] + b[..., ankle, None] * _direction(hip_flex - knee_flex,
                                                                                zero + 0.03, side)
        # Arms swing against the leg of the same side; a waving person raises the right arm.
        raise_w = wave if side < 0 else zero
        sho_flex = -walk * 0.3 * np.sin(ph) + crouch * 0.7 + stand * 0.05
        elbow = walk * (0.3 + 0.2 * np.sin(ph) ** 2) + stand * 0.15 + crouch * 0.6 + (wave - raise_w) * 0.15
        upper_abd = 0.12 * (1 - raise_w) + 1.75 * raise_w
        fore_abd = upper_abd * (1 - raise_w) + raise_w * (2.7 + 0.35 * np.sin(2 * np.pi * 1.4 * t))
        out[..., sho, :] = b[..., sho, None] * _unit(np.array([0.0, side, -0.08]))
        out[..., elb, :] = out[..., sho, :] + b[..., elb, None] * _direction(sho_flex, upper_abd, side)
        out[..., wri, :] = out[..., elb, :] + b[..., wri, None] * _direction(sho_flex + elbow * (1 - raise_w),
                                                                            fore_abd, side)
    trunk = np.stack([np.sin(lean), zero, np.cos(lean)], axis=-1)
    head_dir = np.stack([np.sin(lean + 0.35), zero, np.cos(lean + 0.35)], axis=-1)
    out[..., 7, :] = b[..., 7, None] * trunk
    out[..., 8, :] = out[..., 7, :] + b[..., 8, None] * trunk
    out[..., 9, :] = out[..., 8, :] + b[..., 9, None] * head_dir
    out[..., 10, :] = out[..., 9, :] + b[..., 10, None] * trunk
    for j in (11, 12, 13, 14, 15, 16):  # shoulders hang off the thorax
        out[..., j, :] += out[..., 8, :]
    # Pelvis height: the lower foot stands on the floor (gives the natural bob of walking and the crouch depth).
    out[..., 2] -= np.minimum(out[..., 3, 2], out[..., 6, 2])[..., None] - ANKLE_HEIGHT_M
    return out


def generate_scene(num_people: int = 3, duration_s: float = 10.0, fps: float = 30.0, seed: int = 0,
                   actions: tuple[str, ...] = ACTIONS, room: tuple[float, float] = ROOM_SIZE_M) -> Scene:
    """People moving through a `room` (x, y extent in metres) for `duration_s` seconds at `fps`."""
    if num_people < 1 or duration_s <= 0 or fps <= 0:
        raise ValueError(f"need num_people >= 1, duration_s > 0, fps > 0; got {num_people}, {duration_s}, {fps}")
    unknown = set(actions) - set(ACTIONS)
    if unknown or not actions:
        raise ValueError(f"unknown actions {sorted(unknown)}; choose from {ACTIONS}")
    rng = np.random.default_rng(seed)
    num_frames = max(1, int(round(duration_s * fps)))
    t = np.arange(num_frames)[:, None] / fps * np.ones((1, num_people))
    bones = sample_bone_lengths(num_people, rng)
    weights = _action_weights(num_frames, num_people, fps, actions, rng)

    paths, arc = _room_paths(num_people, room, rng)
    speed = rng.uniform(0.9, 1.4, size=num_people)
    travelled = np.cumsum(weights[..., 0] * speed / fps, axis=0) + rng.uniform(0, 1, num_people) * arc[:, -1]
    stride = 1.35 * bones[:, 2] / MEAN_BONE_LENGTHS[2]
    phase = 2 * np.pi * travelled / stride + rng.uniform(0, 2 * np.pi, num_people)

    pelvis_xy = np.empty((num_frames, num_people, 2))
    tangent = np.gradient(paths, axis=1)
    heading = np.empty((num_frames, num_people))
    for p in range(num_people):  # one 1-D interpolation per person
        s = travelled[:, p] % arc[p, -1]
        pelvis_xy[:, p] = np.stack([np.interp(s, arc[p], paths[p, :, i]) for i in range(2)], axis=-1)
        heading[:, p] = np.arctan2(np.interp(s, arc[p], tangent[p, :, 1]), np.interp(s, arc[p], tangent[p, :, 0]))

    local = _body_frame_pose(weights, phase, t, bones)
    c, s = np.cos(heading)[..., None], np.sin(heading)[..., None]
    joints = np.empty_like(local)
    joints[..., 0] = pelvis_xy[..., None, 0] + c * local[..., 0] - s * local[..., 1]
    joints[..., 1] = pelvis_xy[..., None, 1] + s * local[..., 0] + c * local[..., 1]
    joints[..., 2] = local[..., 2]
    return Scene(joints=joints, fps=fps, track_ids=np.arange(1, num_people + 1), actions=weights.argmax(axis=-1))


# ---------------------------------------------------------------------------------------------------------------
# Cameras
def _camera(name: str, eye, target, fx: float, size: tuple[int, int], dist: np.ndarray) -> RigCamera:
    w, h = size
    K = np.array([[fx, 0.0, (w - 1) / 2], [0.0, fx, (h - 1) / 2], [0.0, 0.0, 1.0]])
    model = CameraModel(K=K, dist=np.asarray(dist, float), distortion_model="plumb_bob", width=w, height=h)
    return RigCamera(name=name, model=model, cam_from_world=RigidTransform.look_at(eye, target),
                     frame_id=f"{name}_optical_frame")


def _pair(kind: str, baseline: float, axes_angle_deg: float, height: float, target: np.ndarray, fx: float,
          size: tuple[int, int], dists: tuple[np.ndarray, np.ndarray], yaw: float = 0.0) -> Rig:
    """Two cameras `baseline` apart whose optical axes meet at `target` with `axes_angle_deg` between them."""
    # Horizontal angle between the two cameras as seen from the target such that the tilted optical axes (cameras
    # `height` high looking down at the target) meet at exactly `axes_angle_deg`.
    drop = height - target[2]
    horizontal = np.linspace(1e-3, np.pi, 4096)
    reach = baseline / 2 / np.sin(horizontal / 2)
    axes = np.arccos((reach**2 * np.cos(horizontal) + drop**2) / (reach**2 + drop**2))
    half = np.interp(np.radians(axes_angle_deg), axes, horizontal) / 2
    reach = baseline / 2 / np.sin(half)  # horizontal distance from the target to each camera
    eyes = []
    for sign in (-1.0, 1.0):
        a = yaw - np.pi / 2 + sign * half
        eyes.append(target + np.array([reach * np.cos(a), reach * np.sin(a), height - target[2]]))
    cams = tuple(_camera(f"cam{i}", eyes[i], target, fx, size, dists[i]) for i in range(2))
    return Rig(kind=kind, cameras=cams)


def make_rig(kind: str = "demo", seed: int | None = None, room: tuple[float, float] = ROOM_SIZE_M) -> Rig:
    """A two-camera rig around `room`; `seed` only matters for "random"."""
    center = np.array([room[0] / 2, room[1] / 2, 1.0])
    mild = np.array([-0.12, 0.04, 0.0005, -0.0004, 0.0])
    if kind == "demo":
        # Ceiling corners looking down at the middle of the room, aimed low so that whole bodies stay in view.
        eye0, eye1 = np.array([0.1, 0.1, 3.0]), np.array([room[0] - 0.1, 0.1, 3.0])
        aim = np.array([center[0], center[1], 0.6])
        cams = (_camera("cam0", eye0, aim, 780.0, (1280, 720), mild),
                _camera("cam1", eye1, aim, 790.0, (1280, 720), mild * [1.1, 0.8, -1, 1, 1]))
        return Rig(kind=kind, cameras=cams)
    if kind == "wide":
        return _pair(kind, 10.0, 135.0, 2.2, center, 900.0, (1280, 720), (mild, mild))
    if kind == "narrow":
        return _pair(kind, 4.0, 45.0, 2.2, center, 900.0, (1280, 720), (mild, mild))
    if kind == "random":
        rng = np.random.default_rng(seed)
        dists = tuple(np.array([rng.uniform(-0.25, 0.05), rng.uniform(-0.02, 0.08), *rng.normal(0, 5e-4, 2), 0.0])
                      for _ in range(2))
        size = ((1280, 720), (1920, 1080), (1000, 1000), (640, 480))[rng.integers(4)]
        fx = rng.uniform(0.6, 1.0) * size[0]
        return _pair(kind, rng.uniform(2.0, 10.0), rng.uniform(30.0, 150.0), rng.uniform(1.5, 3.0), center,
                     fx, size, dists, yaw=rng.uniform(-np.pi, np.pi))
    raise ValueError(f"unknown rig kind {kind!r}; expected 'demo', 'wide', 'narrow' or 'random'")


def corner_rig(count: int = 4, room: tuple[float, float] = ROOM_SIZE_M) -> Rig:
    """`count` (2-4) 1280x720 cameras near the ceiling corners of `room`, aimed at its middle: camera 0 and 1 on
    one wall (as the demo rig), 2 and 3 in the opposite corners."""
    if not 2 <= count <= 4:
        raise ValueError(f"a corner rig has 2 to 4 cameras, got {count}")
    aim = np.array([room[0] / 2, room[1] / 2, 0.8])
    corners = [(0.1, 0.1), (room[0] - 0.1, 0.1), (room[0] - 0.1, room[1] - 0.1), (0.1, room[1] - 0.1)]
    dist = np.array([-0.12, 0.04, 0.0005, -0.0004, 0.0])
    cams = tuple(_camera(f"cam{i}", [x, y, 2.8], aim, 800.0 + 10 * i, (1280, 720), dist)
                 for i, (x, y) in enumerate(corners[:count]))
    return Rig(kind=f"corner{count}", cameras=cams)


def camera_info_fields(camera: RigCamera) -> dict:
    """Field values of a sensor_msgs/CameraInfo for `camera` (monocular: R = I, P = [K | 0])."""
    K = camera.model.K
    return {
        "frame_id": camera.frame_id, "width": int(camera.model.width), "height": int(camera.model.height),
        "distortion_model": camera.model.distortion_model, "d": [float(x) for x in camera.model.dist],
        "k": [float(x) for x in K.ravel()], "r": [float(x) for x in np.eye(3).ravel()],
        "p": [float(x) for x in np.hstack([K, np.zeros((3, 1))]).ravel()],
    }


# ---------------------------------------------------------------------------------------------------------------
# Projection
def project_view(scene: Scene, camera: RigCamera, noise: str | None = "clean", seed: int = 0,
                 min_visible_joints: int = 8) -> SceneKeypoints:
    """Project every person into `camera` and apply the `cvpose_ros.devtools.noise` preset `noise` ("clean", "light",
    "cpn_like", "heavy", "detector", ...; None = exact with confidence 1). The preset's per-view offsets (3D stage)
    are drawn once per person, so they stay fixed over the scene as a real detector's do.

    Joints behind the camera or outside the image are missing (NaN, confidence 0); a person with fewer than
    `min_visible_joints` joints in the image is not visible (a detector would not report them).
    """
    rng = np.random.default_rng(seed)
    points = camera.world_to_camera(scene.joints)
    if noise is not None:
        points = view_offsets_3d(points, noise, rng, scene.layout, fixed_shape=(scene.num_people,))
    pixels = camera.model.project(points)
    size = (camera.model.width, camera.model.height)
    if noise is None:
        conf = np.ones(pixels.shape[:-1])
    else:
        pixels, conf = apply_noise(pixels, noise, rng, layout=scene.layout)
    inside = np.isfinite(pixels).all(axis=-1) & np.all((pixels >= 0) & (pixels <= np.array(size) - 1), axis=-1)
    pixels = np.where(inside[..., None], pixels, np.nan)
    conf = np.where(inside, conf, 0.0)
    visible = inside.sum(axis=-1) >= min_visible_joints
    return SceneKeypoints(keypoints=pixels, confidence=conf, visible=visible)


def project_scene(scene: Scene, rig: Rig, noise: str | None = "clean", seed: int = 0) -> tuple[SceneKeypoints, ...]:
    """`project_view` for both cameras with independent noise streams."""
    return tuple(project_view(scene, cam, noise, seed * 2 + i) for i, cam in enumerate(rig.cameras))
