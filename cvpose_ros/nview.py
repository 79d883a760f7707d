"""Three or more cameras: who is who across all views, where they are, and which pair of views CV-UGCN refines.

Plain numpy (no rclpy, no torch); the N-view half of `cvpose_ros.frame_processor` (two cameras keep their own path).

1. `group_views`: people are matched between an anchor view and each later view with the two-view matcher
   (`cvpose_ros.cross_view.match_views`: optimal assignment, robust gate, left/right swap repair, bad joints
   dropped). Camera 0 is the first anchor; people it does not see are matched among the remaining views with camera
   1 as anchor, and so on, so a person seen by any two cameras is found. Each pair decides its own swap repair, so
   the decisions are made consistent per person: every view's labels are first expressed relative to the anchor's,
   then the anchor's own labels follow the majority of its pairs (ties: the best-fitting pair).
2. `triangulate_groups`: confidence-weighted DLT over every view that sees a joint, per-joint outlier view dropped
   for joints seen by 4+ views (`cvpose_ros.multiview.triangulate_views`); a joint must lie in front of every
   camera that sees it.
3. `best_pairs`: the pair of views CV-UGCN refines for each person: the most joints both views see times the sine
   of the angle between the two views' rays to the person (a wide, well-conditioned pair with full coverage).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cvpose_ros.calibration.types import CalibratedCamera
from cvpose_ros.camera import CameraModel, RigidTransform
from cvpose_ros.cross_view import MatchConfig, match_views
from cvpose_ros.multiview import residuals, triangulate_views
from cvpose_ros.skeleton import Layout
from cvpose_ros.swap_repair import mirror_groups, swap_groups


@dataclass
class PersonGroups:
    """P people found in at least two of V views, with keypoints in one consistent left/right labelling."""

    members: np.ndarray      # (P, V) int64: the person's index among each view's people, -1 where unseen
    pixels: np.ndarray       # (V, P, J, 2) raw pixels; NaN where unseen, missing or dropped
    confidence: np.ndarray   # (V, P, J) 0 where unseen, missing or dropped
    swap_repairs: int = 0    # person-views whose left/right labels were repaired
    dropped_joints: int = 0  # joints dropped by a pair's matching (far above the person's residual)
    id_disagreements: int = 0  # equal track ids the geometry did not match

    @property
    def num_people(self) -> int:
        return int(self.members.shape[0])


def _empty_groups(views: int, joints: int) -> PersonGroups:
    return PersonGroups(np.zeros((0, views), np.int64), np.zeros((views, 0, joints, 2)), np.zeros((views, 0, joints)))


def group_views(models: Sequence[CameraModel], cam_from_cam0: Sequence[RigidTransform],
                pixels: Sequence[np.ndarray], confidence: Sequence[np.ndarray], track_ids: Sequence[np.ndarray],
                layout: Layout, config: MatchConfig | None = None, previous: np.ndarray | None = None,
                track_gate_m: float = 0.5) -> PersonGroups:
    """Person groups of V views (pixels (P_v, J, 2), confidence (P_v, J), track ids (P_v,) per view; a view with no
    people has P_v = 0). `cam_from_cam0[v]` maps camera 0's frame into camera v's (identity for v = 0);
    `previous` (K, J, 3): last frame's tracked poses in camera 0's frame (they settle left/right ties)."""
    config = config or MatchConfig()
    views, joints = len(models), layout.num_joints
    groups = swap_groups(layout)
    taken = [np.zeros(len(p), dtype=bool) for p in pixels]
    found: list[PersonGroups] = []
    repairs = dropped = disagreements = 0
    for anchor in range(views - 1):
        free_a = np.flatnonzero(~taken[anchor])
        if free_a.size == 0:
            continue
        n = free_a.size
        members = np.full((n, views), -1, dtype=np.int64)
        members[:, anchor] = free_a
        pix = np.full((views, n, joints, 2), np.nan)
        conf = np.zeros((views, n, joints))
        relative = np.zeros((views, n, groups.count), dtype=bool)  # each view's flips relative to the anchor's
        votes = np.zeros((n, groups.count))                        # +1: a pair says the anchor's group is swapped
        best_cost, best_flip = np.full(n, np.inf), np.zeros((n, groups.count), dtype=bool)
        anchor_from_cam0 = cam_from_cam0[anchor]
        prev = None if previous is None or not len(previous) else anchor_from_cam0.apply(previous)
        for view in range(anchor + 1, views):
            free_v = np.flatnonzero(~taken[view])
            if free_v.size == 0:
                continue
            view_from_anchor = cam_from_cam0[view].compose(anchor_from_cam0.inverse())
            m = match_views(models[anchor], models[view], view_from_anchor, pixels[anchor][free_a],
                            confidence[anchor][free_a], track_ids[anchor][free_a], pixels[view][free_v],
                            confidence[view][free_v], track_ids[view][free_v], layout, config, prev, track_gate_m)
            disagreements += m.id_disagreements
            if len(m.i0) == 0:
                continue
            k = m.i0
            members[k, view] = free_v[m.i1]
            taken[view][free_v[m.i1]] = True
            back = m.flips0  # undo the anchor's repair: both views in the anchor's own labels
            kp_a = mirror_groups(m.kp0, groups, back)
            conf_a = mirror_groups(m.conf0[..., None], groups, back)[..., 0]
            keep = np.isfinite(kp_a).all(axis=-1) & (conf_a > 0)  # a joint one pair dropped may stay in another
            pix[anchor, k] = np.where(keep[..., None], kp_a, pix[anchor, k])
            conf[anchor, k] = np.where(keep, conf_a, conf[anchor, k])
            pix[view, k] = mirror_groups(m.kp1, groups, back)
            conf[view, k] = mirror_groups(m.conf1[..., None], groups, back)[..., 0]
            relative[view, k] = m.flips1 ^ back
            votes[k] += np.where(back, 1.0, -1.0)
            better = m.cost < best_cost[k]
            best_cost[k] = np.where(better, m.cost, best_cost[k])
            best_flip[k] = np.where(better[:, None], back, best_flip[k])
            dropped += m.dropped_joints
        matched = (members >= 0).sum(axis=1) >= 2
        if not matched.any():
            continue
        taken[anchor][free_a[matched]] = True
        final = (votes > 0) | ((votes == 0) & best_flip)   # (n, G): the anchor's labels by majority of its pairs
        total = relative ^ final[None]                      # (V, n, G): each view's repair against its own labels
        seen = (members >= 0).T                             # (V, n)
        repairs += int((total.any(axis=-1) & seen)[:, matched].sum())
        pix = mirror_groups(pix, groups, final[None])
        conf = mirror_groups(conf[..., None], groups, final[None])[..., 0]
        found.append(PersonGroups(members[matched], pix[:, matched], conf[:, matched]))
    if not found:
        out = _empty_groups(views, joints)
    else:
        out = PersonGroups(np.concatenate([g.members for g in found]),
                           np.concatenate([g.pixels for g in found], axis=1),
                           np.concatenate([g.confidence for g in found], axis=1))
    out.swap_repairs, out.dropped_joints, out.id_disagreements = repairs, dropped, disagreements
    return out


@dataclass
class ViewsTriangulation:
    """N-view coarse poses of P people in camera 0's frame."""

    points: np.ndarray     # (P, J, 3) metres, NaN for invalid joints
    residual: np.ndarray   # (V, P, J) pixels in each view; NaN where the view does not see the joint
    error: np.ndarray      # (P, J) mean residual over the views that see the joint; NaN for invalid joints
    valid: np.ndarray      # (P, J) seen by 2+ views and in front of every camera that sees it


def calibrated(models: Sequence[CameraModel], cam_from_cam0: Sequence[RigidTransform]) -> list[CalibratedCamera]:
    """The rig as `CalibratedCamera`s whose world frame is camera 0's optical frame."""
    return [CalibratedCamera(f"cam{v}", m, t) for v, (m, t) in enumerate(zip(models, cam_from_cam0, strict=True))]


def triangulate_groups(cameras: Sequence[CalibratedCamera], pixels: np.ndarray, confidence: np.ndarray,
                       min_confidence: float = 0.1, reject_outliers: bool = True) -> ViewsTriangulation:
    """Triangulate every person of (V, P, J, 2) / (V, P, J) in one batch (see the module docstring)."""
    points = triangulate_views(cameras, pixels, confidence, min_confidence, reject_outliers)
    seen = np.isfinite(pixels).all(axis=-1) & (confidence >= min_confidence) & (confidence > 0)
    depth = np.stack([cam.cam_from_world.apply(points)[..., 2] for cam in cameras])  # (V, P, J)
    with np.errstate(invalid="ignore"):
        in_front = np.where(seen, depth > 0, True).all(axis=0)
    valid = np.isfinite(points).all(axis=-1) & in_front & (seen.sum(axis=0) >= 2)
    points = np.where(valid[..., None], points, np.nan)
    residual = residuals(cameras, points, pixels, confidence, min_confidence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # joints no view sees
        error = np.where(valid, np.nanmean(residual, axis=0), np.nan)
    return ViewsTriangulation(points, residual, error, valid)


def view_pairs(views: int) -> np.ndarray:
    """(K, 2) all pairs (a, b) with a < b."""
    return np.array(list(itertools.combinations(range(views), 2)), dtype=np.int64).reshape(-1, 2)


def best_pairs(cameras: Sequence[CalibratedCamera], tri: ViewsTriangulation, seen: np.ndarray) -> np.ndarray:
    """(P, 2) the pair of views (a < b) CV-UGCN refines for each person: most joints both see (and triangulated)
    times the sine of the angle between their rays to the person's centre. `seen` (V, P, J): usable keypoints."""
    pairs = view_pairs(len(cameras))
    people = tri.points.shape[0]
    if people == 0:
        return np.zeros((0, 2), dtype=np.int64)
    common = (seen[pairs[:, 0]] & seen[pairs[:, 1]] & tri.valid[None]).sum(axis=-1)  # (K, P)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmean(tri.points, axis=1)                                        # (P, 3)
    centres = np.stack([cam.center for cam in cameras])                                # (V, 3)
    rays = centre[None] - centres[:, None]                                              # (V, P, 3)
    rays = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    sine = np.linalg.norm(np.cross(rays[pairs[:, 0]], rays[pairs[:, 1]]), axis=-1)     # (K, P)
    score = common * np.nan_to_num(sine, nan=0.0) + 1e-9 * common  # coverage breaks a tie of unknown angles
    return pairs[np.argmax(score, axis=0)]
