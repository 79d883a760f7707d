"""Three or more cameras: who is who across all views, where they are, and which pair of views CV-UGCN refines.

Plain numpy (no rclpy, no torch); the N-view half of `cvpose_ros.pipeline.frame_processor` (two cameras keep their own
path).

1. `group_views`: people are matched between an anchor view and the first later view with the two-view matcher
   (`cvpose_ros.pipeline.cross_view.match_views`: optimal assignment, robust gate, left/right swap repair, bad joints
   dropped), which triangulates them; every further view's people are assigned to them by projection
   (`assign_by_projection`: one distance table and one assignment per view, swap groups taken as is or mirrored),
   so the cost grows by a cheap step per camera. Anchor people still alone are matched two-view against a further
   view's people still free. Camera 0 is the first anchor; people it does not see are grouped with camera 1 as
   anchor, and so on, so a person seen by any two cameras is found. Left/right labels are made consistent per
   person: where the views' own labels of a group differ, the tracked pose decides when it clearly can, else the
   majority of the views (ties: the two-view match's choice).
2. `triangulate_groups`: confidence-weighted DLT over every view that sees a joint (no leave-one-out rejection:
   step 1 already dropped the joints far above their person's level, and rejecting on top dropped good views: 4
   Panoptic studio cameras refined 54.3 mm with it at its old 20 px floor, 42.5 at the size-relative floor, 42.0
   without; the corner rig 25.5 mm either way at 8 % less time; docs/refiner_node.md); a joint must lie in front of
   every camera that sees it.
3. `best_pairs`: the pair of views CV-UGCN refines for each person: the most joints both views see times the sine
   of the angle between the two views' rays to the person (a wide, well-conditioned pair with full coverage).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from cvpose_ros.body.skeleton import Layout
from cvpose_ros.body.swap_repair import flip_decisions, group_mask, mirror_groups, nearest_track, swap_groups
from cvpose_ros.calibration.types import CalibratedCamera
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.geometry.multiview import residuals, triangulate_views
from cvpose_ros.nanstats import nanmedian_last
from cvpose_ros.pipeline.cross_view import MatchConfig, match_views, person_size_px


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


# A further view's person joins a group when the median distance between their keypoints and the group's two-view
# pose projected into that view is at most this many times `MatchConfig.gate` (`lone_gate` for one group and one
# person) of the person's size: the projected pose carries the first pair's triangulation error, which a two-view
# residual (the gate's measure) halves.
PROJECTION_GATE_FACTOR = 2.0


@dataclass
class _Projected:
    """People of one further view assigned to groups by projection."""

    groups: np.ndarray     # (M,) group index
    people: np.ndarray     # (M,) index into the view's free people
    pixels: np.ndarray     # (M, J, 2) in the group's labels, bad joints NaN
    confidence: np.ndarray  # (M, J)
    flips: np.ndarray      # (M, G) the view's groups mirrored to reach the group's labels
    decided: np.ndarray    # (M, G) the view tells either way (its vote counts)
    dropped: int


def assign_by_projection(projected: np.ndarray, pixels: np.ndarray, confidence: np.ndarray,
                         layout: Layout, config: MatchConfig) -> _Projected:
    """Assign the people of one view (pixels (Q, J, 2), confidence (Q, J)) to S already triangulated people whose
    poses projected into this view are `projected` (S, J, 2; NaN where unknown): per pair the median distance over
    joints, each swap group taken as is or mirrored (`flip_decisions`), over the person's size; optimal one-to-one
    assignment under the gate; joints far above the person's level dropped as in the two-view matcher. One
    projection and a (S, Q) distance table instead of a two-view match with its own triangulation and swap repair.
    """
    groups = swap_groups(layout)
    s, q, joints = projected.shape[0], pixels.shape[0], layout.num_joints
    empty = _Projected(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, joints, 2)),
                       np.zeros((0, joints)), np.zeros((0, groups.count), bool), np.zeros((0, groups.count), bool), 0)
    if s == 0 or q == 0:
        return empty
    usable = np.isfinite(pixels).all(-1) & (confidence >= config.min_confidence) & (confidence > 0)
    pix = np.where(usable[..., None], pixels, np.nan)
    size = np.maximum(person_size_px(pix), config.min_size_px)                     # (Q,)
    same = np.linalg.norm(pix[None] - projected[:, None], axis=-1)                 # (S, Q, J)
    mirror = np.linalg.norm(pix[None][:, :, groups.flip] - projected[:, None], axis=-1)
    scale = np.broadcast_to(size[None], (s, q))
    if config.repair_swaps:
        flipped, decided, _ = flip_decisions(same, mirror, scale, groups)
    else:
        flipped = decided = np.zeros((s, q, groups.count), dtype=bool)
    residual = np.where(group_mask(groups, flipped), mirror, same)                 # (S, Q, J) in the group's labels
    enough = np.isfinite(residual).sum(axis=-1) >= config.min_common_joints
    cost = np.where(enough, nanmedian_last(residual) / scale, np.inf)
    gate = PROJECTION_GATE_FACTOR * (config.lone_gate if s == 1 and q == 1 else config.gate)
    rows, cols = linear_sum_assignment(np.where(cost <= gate, cost, 1e9))
    good = cost[rows, cols] <= gate
    rows, cols = rows[good], cols[good]
    if rows.size == 0:
        return empty
    flips = flipped[rows, cols]
    out_pix = mirror_groups(pix[cols], groups, flips)
    out_conf = mirror_groups(np.where(usable, confidence, 0.0)[cols, :, None], groups, flips)[..., 0]
    dropped = 0
    if config.drop_bad_joints:
        res = residual[rows, cols]
        limit = np.maximum(config.bad_joint_factor * nanmedian_last(res)[:, None],
                           config.bad_joint_floor * size[cols][:, None])
        with np.errstate(invalid="ignore"):
            bad = res > limit
        dropped = int(bad.sum())
        out_pix, out_conf = np.where(bad[..., None], np.nan, out_pix), np.where(bad, 0.0, out_conf)
    return _Projected(rows.astype(np.int64), cols.astype(np.int64), out_pix, out_conf, flips, decided[rows, cols],
                      dropped)


def group_views(models: Sequence[CameraModel], cam_from_cam0: Sequence[RigidTransform],
                pixels: Sequence[np.ndarray], confidence: Sequence[np.ndarray], track_ids: Sequence[np.ndarray],
                layout: Layout, config: MatchConfig | None = None, previous: np.ndarray | None = None,
                track_gate_m: float = 0.5) -> PersonGroups:
    """Person groups of V views (pixels (P_v, J, 2), confidence (P_v, J), track ids (P_v,) per view; a view with no
    people has P_v = 0). `cam_from_cam0[v]` maps camera 0's frame into camera v's (identity for v = 0);
    `previous` (K, J, 3): last frame's tracked poses in camera 0's frame (they settle left/right ties).

    For each anchor view in turn (camera 0 first): the anchor's free people are matched with the first later view
    that has free people by the two-view matcher, which triangulates them; every further view's free people are
    assigned to those people by projection (`assign_by_projection`). Only anchor people still alone after that are
    matched two-view against a further view's people still free, so with everyone seen by every camera a frame costs
    one two-view match plus one cheap assignment per further camera.
    """
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
        points = np.full((n, joints, 3), np.nan)                   # anchor-frame two-view poses, group labels
        relative = np.zeros((views, n, groups.count), dtype=bool)  # each view's labels against the group's
        counted = np.zeros((views, n, groups.count), dtype=bool)   # the view's vote on that group counts
        anchor_from_cam0 = cam_from_cam0[anchor]
        cam0_from_anchor = anchor_from_cam0.inverse()
        prev = None if previous is None or not len(previous) else anchor_from_cam0.apply(previous)
        for view in range(anchor + 1, views):
            free_v = np.flatnonzero(~taken[view])
            if free_v.size == 0:
                continue
            view_from_anchor = cam_from_cam0[view].compose(cam0_from_anchor)
            grouped = np.flatnonzero((members >= 0).sum(axis=1) >= 2)
            if grouped.size:  # people triangulated already: one projection, one assignment
                proj = models[view].project(view_from_anchor.apply(points[grouped]))
                a = assign_by_projection(proj, pixels[view][free_v], confidence[view][free_v],
                                         layout, config)
                k = grouped[a.groups]
                members[k, view] = free_v[a.people]
                taken[view][free_v[a.people]] = True
                pix[view, k], conf[view, k] = a.pixels, a.confidence
                relative[view, k], counted[view, k] = a.flips, a.decided
                dropped += a.dropped
                free_v = np.flatnonzero(~taken[view])
            alone = np.flatnonzero((members >= 0).sum(axis=1) < 2)
            if alone.size == 0 or free_v.size == 0:
                continue
            m = match_views(models[anchor], models[view], view_from_anchor, pixels[anchor][free_a[alone]],
                            confidence[anchor][free_a[alone]], track_ids[anchor][free_a[alone]],
                            pixels[view][free_v], confidence[view][free_v], track_ids[view][free_v], layout, config,
                            prev, track_gate_m)
            disagreements += m.id_disagreements
            if len(m.i0) == 0:
                continue
            k = alone[m.i0]
            members[k, view] = free_v[m.i1]
            taken[view][free_v[m.i1]] = True
            pix[anchor, k], conf[anchor, k] = m.kp0, m.conf0
            pix[view, k], conf[view, k] = m.kp1, m.conf1
            points[k] = m.points
            relative[anchor, k], relative[view, k] = m.flips0, m.flips1
            counted[anchor, k] = True
            counted[view, k] = m.decided  # a pairing the two views could not settle says nothing of view's labels
            dropped += m.dropped_joints
        matched = (members >= 0).sum(axis=1) >= 2
        if not matched.any():
            continue
        taken[anchor][free_a[matched]] = True
        # where the views' own labels of a group differ, the group takes those of the clearly nearer labelling of
        # the tracked pose (as `choose_labels` does for two views), else of the majority of the views (ties: the
        # two-view match's choice)
        against, supporting = (relative & counted).sum(axis=0), (~relative & counted).sum(axis=0)
        final = against > supporting                                # (n, G)
        split = (against > 0) & (supporting > 0)
        if split.any() and previous is not None and len(previous):
            mirror, keep = _track_labels(cam0_from_anchor.apply(points), previous, groups, track_gate_m)
            final = np.where(split & (mirror | keep), mirror, final)
        total = relative ^ final[None]                              # (V, n, G): each view's repair
        seen = (members >= 0).T
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


def _track_labels(points: np.ndarray, previous: np.ndarray, groups, gate_m: float,
                  margin_m: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """(n, G) swap groups of n people (points (n, J, 3), camera 0's frame) whose mirrored labels lie clearly
    (`margin_m`) nearer the nearest tracked pose (previous (K, J, 3)) than their own, and (n, G) those whose own
    labels do; both False without a track within `gate_m`."""
    track, near = nearest_track(points, previous, groups, gate_m)
    own = np.linalg.norm(points - track, axis=-1)                     # (n, J)
    crossed = np.linalg.norm(points[:, groups.flip] - track, axis=-1)
    onehot = (groups.joint_group[:, None] == np.arange(groups.count)[None]).astype(np.float64)  # (J, G)
    both = np.isfinite(own) & np.isfinite(crossed)
    count = both.astype(np.float64) @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        d_own = np.where(both, own, 0.0) @ onehot / count
        d_crossed = np.where(both, crossed, 0.0) @ onehot / count
    usable = near[:, None] & (count > 0)
    return usable & (d_crossed < d_own - margin_m), usable & (d_own < d_crossed - margin_m)


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
                       min_confidence: float = 0.1, reject_outliers: bool = False,
                       robust: bool = False) -> ViewsTriangulation:
    """Triangulate every person of (V, P, J, 2) / (V, P, J) in one batch (see the module docstring)."""
    points = triangulate_views(cameras, pixels, confidence, min_confidence, reject_outliers, robust)
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
