"""Is a 3D skeleton a person who could be standing in front of these cameras? Checked before anything is published.

Two rules, both vectorised over people and joints:

- **range**: every estimated joint lies within `max_range_m` of the nearer of the two cameras. Two cameras a few
  decimetres apart cannot see people hundreds of metres away; such points come from inconsistent input (a wrong
  calibration, two different people matched, garbage keypoints) and would otherwise become TF frames and markers.
- **bones**: every bone (an edge of the layout's body graph) whose two joints are both estimated is within a human
  range. The ranges are generous (a small child to a very tall adult, plus 15 cm of triangulation noise): the rule
  catches skeletons that are impossible (a forearm of 1.5 m), not merely unusual or noisy. And the body's size —
  the total length of its estimated bones over the adult total of those bones — is within 0.4-2x (a 5 m giant or
  a 17 cm doll is not a person; judged once at least 1 m of adult bones is estimated).

A bone that fails outside the torso says one joint is wrong, not the person: `implausible_joints` names the limb or
face joint to blank (the one whose every bone fails, else the bone's far end with the joints beyond it on the limb),
which the pipeline blanks before the person-level rules run, so a wrongly triangulated ear or wrist does not cost the
robot the person. A torso bone that fails (shoulders, hips, their links) or either rule above drops the person as a
whole; the caller counts both. Plain numpy, no rclpy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from cvpose_ros.body.skeleton import Layout, get_layout

# Adult mean length (metres) of each bone, by joint names (Human3.6M subjects; COCO face and girdle links from
# anthropometric means). A bone is human when its length is within [LOW x mean - NOISE, HIGH x mean + NOISE]: the
# factors cover a small child to a very tall adult, NOISE the triangulation error of a joint at a few metres from
# a short baseline (several centimetres in depth), so short face links can shrink to nothing or triple.
_H36M_MEANS: dict[tuple[str, str], float] = {
    ("pelvis", "r_hip"): 0.133, ("pelvis", "l_hip"): 0.133,
    ("r_hip", "r_knee"): 0.452, ("l_hip", "l_knee"): 0.452, ("r_knee", "r_ankle"): 0.445, ("l_knee", "l_ankle"): 0.445,
    ("pelvis", "spine"): 0.233, ("spine", "thorax"): 0.257, ("thorax", "neck"): 0.121, ("neck", "head"): 0.115,
    ("thorax", "l_shoulder"): 0.151, ("thorax", "r_shoulder"): 0.151,
    ("l_shoulder", "l_elbow"): 0.278, ("r_shoulder", "r_elbow"): 0.278,
    ("l_elbow", "l_wrist"): 0.252, ("r_elbow", "r_wrist"): 0.252,
}
_COCO_MEANS: dict[tuple[str, str], float] = {
    ("nose", "l_eye"): 0.035, ("nose", "r_eye"): 0.035, ("l_eye", "l_ear"): 0.07, ("r_eye", "r_ear"): 0.07,
    ("l_ear", "l_shoulder"): 0.20, ("r_ear", "r_shoulder"): 0.20,
    ("l_shoulder", "r_shoulder"): 0.36, ("l_hip", "r_hip"): 0.24,
    ("l_shoulder", "l_hip"): 0.50, ("r_shoulder", "r_hip"): 0.50,
    ("l_shoulder", "l_elbow"): 0.278, ("r_shoulder", "r_elbow"): 0.278,
    ("l_elbow", "l_wrist"): 0.252, ("r_elbow", "r_wrist"): 0.252,
    ("l_hip", "l_knee"): 0.452, ("r_hip", "r_knee"): 0.452, ("l_knee", "l_ankle"): 0.445, ("r_knee", "r_ankle"): 0.445,
}
LOW, HIGH, NOISE_M = 0.5, 1.6, 0.15
# The whole body's size: total measured bone length over the adults' total for those bones.
SCALE_RANGE = (0.4, 2.0)
# Joints a failing bone never blanks: a torso that is out of proportion is a wrong person, not a wrong joint.
TORSO_JOINTS = frozenset({"l_shoulder", "r_shoulder", "l_hip", "r_hip", "pelvis", "spine", "thorax"})
_MEANS = {"h36m17": _H36M_MEANS, "coco17": _COCO_MEANS}


@functools.lru_cache(maxsize=32)
def bone_means(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(B, 2) joint index pairs of the layout's body-graph edges and (B,) their adult mean length (m). Cached per
    layout (every published frame checks its people); the arrays are shared and read-only."""
    table = _MEANS[layout.name]
    pairs, means = [], []
    for a, b in layout.edges:
        names = (layout.joint_names[a], layout.joint_names[b])
        mean = table.get(names) or table.get(names[::-1])
        if mean is None:
            raise KeyError(f"layout {layout.name}: no mean length for bone {names}")
        pairs.append((a, b))
        means.append(mean)
    return _read_only(np.asarray(pairs, np.int64)), _read_only(np.asarray(means, np.float64))


@functools.lru_cache(maxsize=32)
def bone_ranges(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(B, 2) joint index pairs of the layout's body-graph edges and (B, 2) their human length range (m); cached
    like `bone_means`."""
    pairs, means = bone_means(layout)
    return pairs, _read_only(np.stack([np.maximum(0.0, LOW * means - NOISE_M), HIGH * means + NOISE_M], axis=-1))


@functools.lru_cache(maxsize=32)
def _torso(layout: Layout) -> np.ndarray:
    """(J,) bool: the layout's torso joints (`TORSO_JOINTS`); cached per layout."""
    return _read_only(np.array([name in TORSO_JOINTS for name in layout.joint_names]))


@functools.lru_cache(maxsize=32)
def _bone_ends(layout: Layout) -> np.ndarray:
    """(B, J) int64 incidence of the layout's bones (`bone_means` order) and joints; cached per layout."""
    pairs, _ = bone_means(layout)
    ends = np.zeros((len(pairs), layout.num_joints), dtype=np.int64)
    ends[np.arange(len(pairs)), pairs[:, 0]] = ends[np.arange(len(pairs)), pairs[:, 1]] = 1
    return _read_only(ends)


@functools.lru_cache(maxsize=32)
def blanked_by_bone(layout: Layout) -> np.ndarray:
    """(B, J) bool: the joints a failing bone (`bone_means` order) blanks. A bone with one torso end blanks its other
    end; a bone with none blanks the end farther down the layout's tree (both at equal depth). A blanked joint takes
    the joints below it in the tree along (a wrist with its elbow); torso bones blank nothing (the person fails)."""
    pairs, _ = bone_means(layout)
    joints = layout.num_joints
    torso = _torso(layout)
    depth = np.zeros(joints, np.int64)
    below = np.eye(joints, dtype=bool)  # below[a, b]: b is a or lies below a in the tree
    for joint in range(joints):
        node = joint
        while layout.parents[node] >= 0:
            node = layout.parents[node]
            depth[joint] += 1
            below[node, joint] = True
    out = np.zeros((len(pairs), joints), dtype=bool)
    for k, (a, b) in enumerate(pairs):
        if torso[a] and torso[b]:
            continue
        if torso[a] or torso[b]:
            ends = [b if torso[a] else a]
        else:
            ends = [a, b] if depth[a] == depth[b] else [a if depth[a] > depth[b] else b]
        for end in ends:
            out[k] |= below[end] & ~torso
    return _read_only(out)


def _bones(joints: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, B) length of every bone of `joints` (P, J, 3), whether both its joints are estimated, and whether it is
    estimated and outside its human range."""
    pairs, ranges = bone_ranges(layout)
    finite = np.isfinite(joints).all(axis=-1)
    length = np.linalg.norm(joints[:, pairs[:, 0]] - joints[:, pairs[:, 1]], axis=-1)
    measured = finite[:, pairs[:, 0]] & finite[:, pairs[:, 1]]
    with np.errstate(invalid="ignore"):
        outside = ((length < ranges[:, 0]) | (length > ranges[:, 1])) & measured
    return length, measured, outside


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class PlausibilityCheck:
    """Range and bone-length rules; `max_range_m <= 0` switches the range rule off, `bones=False` the bone rule."""

    max_range_m: float = 30.0
    bones: bool = True

    def implausible_joints(self, joints: np.ndarray, layout: str) -> np.ndarray:
        """(P, J) bool: limb and face joints of `joints` (P, J, 3) to blank for bones outside their human range; all
        False with `bones` off. A joint all of whose measured bones fail is the culprit (a wrong wrist fails its
        forearm alone, a wrong nose both nose-eye links); a failing bone that no culprit explains blanks its far end
        (`blanked_by_bone`). Torso joints are never blanked: `implausible` judges the person after blanking."""
        joints = np.asarray(joints, np.float64)
        lay = get_layout(layout)
        if not self.bones or joints.shape[0] == 0:
            return np.zeros(joints.shape[:2], dtype=bool)
        pairs, _ = bone_means(lay)
        _, measured, outside = _bones(joints, lay)
        ends = _bone_ends(lay)
        failed = outside.astype(np.int64) @ ends
        culprit = (failed > 0) & (failed == measured.astype(np.int64) @ ends) & ~_torso(lay)
        unexplained = outside & ~(culprit[:, pairs[:, 0]] | culprit[:, pairs[:, 1]])
        blank = culprit | (unexplained.astype(np.int64) @ blanked_by_bone(lay).astype(np.int64) > 0)
        return blank & np.isfinite(joints).all(axis=-1)

    def implausible(self, joints: np.ndarray, camera_centres: np.ndarray, layout: str) -> np.ndarray:
        """(P,) bool: which of `joints` (P, J, 3; NaN = missing) are not plausible people.

        `camera_centres` (C, 3) are the cameras' positions in the joints' frame.
        """
        joints = np.asarray(joints, np.float64)
        bad = np.zeros(joints.shape[0], bool)
        if joints.shape[0] == 0:
            return bad
        finite = np.isfinite(joints).all(axis=-1)                                   # (P, J)
        if self.max_range_m > 0:
            dist = np.linalg.norm(joints[:, :, None, :] - np.asarray(camera_centres)[None, None], axis=-1)
            with np.errstate(invalid="ignore"):
                far = dist.min(axis=-1) > self.max_range_m                          # NaN joints compare False
            bad |= (far & finite).any(axis=1)
        if self.bones:
            lay = get_layout(layout)
            length, both, outside = _bones(joints, lay)
            bad |= outside.any(axis=1)
            measured = (np.where(both, bone_means(lay)[1], 0.0)).sum(axis=1)
            scale = np.where(both, length, 0.0).sum(axis=1) / np.maximum(measured, 1e-9)
            bad |= (measured >= 1.0) & ((scale < SCALE_RANGE[0]) | (scale > SCALE_RANGE[1]))
        return bad
