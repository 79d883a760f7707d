"""Who is who across the two views, robust to what real detectors do.

One frame, two views of P0 and P1 people, in four cheap-to-expensive steps:

1. `limit_people`: at most `max_people` per view (the least confident extras are dropped and counted), so no
   message can make the work or memory grow without bound.
2. Pruning: every pair of people is scored by the epipolar distance of a few flip-invariant torso points (the
   midpoints of the shoulders, of the hips, ... and the centre joints; a few multiply-adds per pair), in row chunks
   of bounded memory; pairs far off are dropped and each person keeps at most `max_candidates` partners (nearest
   first), so the expensive scoring below is linear in people.
3. Scoring: each surviving pair is triangulated (closed-form two-ray midpoint, in normalised coordinates, no
   SVD) twice, view 1 as is and mirrored left <-> right. Per swap group (`cvpose_ros.body.swap_repair`) the pairing
   that fits better is kept, so whole-body and per-limb swaps in one view cost nothing. The pair's cost is the
   median residual over its joints divided by the person's size in the image (robust to a few bad joints; the
   gate scales with image and rig). Equal track ids lower the cost (a hint, not a verdict).
4. Assignment: the optimal one-to-one assignment (Hungarian) per connected group of candidates, gated by `gate`
   (`lone_gate` when each view holds a single person: matched unless geometry rules it out). Then which view's
   labels a swapped group keeps is decided (anatomy, previous pose, facing), and joints whose residual is far
   above the person's own level are dropped (NaN, confidence 0).

The result carries each matched person's corrected keypoints for triangulation and refinement, and the counts the
node reports: swap repairs, dropped joints, track-id disagreements, people over the limit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cvpose_ros.body.skeleton import Layout
from cvpose_ros.body.swap_repair import (
    BODY_AXES,
    choose_labels,
    flip_decisions,
    follow_body,
    group_mask,
    image_swaps,
    invariant_points,
    mirror_groups,
    nan_mean_distance,
    nearest_track,
    swap_groups,
    temporal_flips,
)
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.nanstats import nanmedian_last
from cvpose_ros.pipeline.association import match_by_track_id

_UNUSABLE = 1e9      # cost standing in for "impossible" inside the assignment solver
_CHUNK_PAIRS = 16384  # pairs scored at once while pruning (bounds the temporaries to a few tens of MB)


@dataclass(frozen=True)
class MatchConfig:
    """Tuning of cross-view matching. Fractions are of the person's size in the image (the larger side of the
    keypoints' bounding box, mean of the two views, at least `min_size_px`)."""

    gate: float = 0.1              # largest median two-view residual of a match
    lone_gate: float = 0.35        # the same when each view holds exactly one person
    prune: float = 0.6             # largest median torso epipolar distance of a candidate pair
    max_candidates: int = 6        # partners kept per person after pruning (nearest first)
    min_common_joints: int = 4     # joints both views must see to compare two people
    min_size_px: float = 20.0
    repair_swaps: bool = True
    drop_bad_joints: bool = True
    bad_joint_factor: float = 4.0  # a joint is bad above this x the person's median residual ...
    bad_joint_floor: float = 0.04  # ... and above this fraction of the person's size
    id_discount: float = 0.7       # cost factor (in the solver) of a pair whose track ids agree
    untracked_penalty: float = 0.03  # added (in the solver) to a pair whose 3D is far from every tracked person
    min_confidence: float = 0.1

    def __post_init__(self) -> None:
        if not (0 < self.gate <= self.lone_gate) or self.prune <= 0 or self.max_candidates < 1:
            raise ValueError(f"matching needs 0 < gate <= lone_gate, prune > 0, max_candidates >= 1: {self}")
        if (self.bad_joint_factor <= 1 or self.bad_joint_floor < 0 or not 0 < self.id_discount <= 1
                or self.untracked_penalty < 0):
            raise ValueError(f"matching needs bad_joint_factor > 1, bad_joint_floor >= 0, id_discount in (0, 1]: "
                             f"{self}")


@dataclass
class CrossViewMatch:
    """M matched people: indices into each view and their corrected keypoints (swaps repaired, bad joints
    dropped), plus what matching did."""

    i0: np.ndarray            # (M,) int64, increasing
    i1: np.ndarray            # (M,)
    kp0: np.ndarray           # (M, J, 2) view 0 keypoints, NaN for missing or dropped joints
    conf0: np.ndarray         # (M, J) 0 for missing or dropped joints
    kp1: np.ndarray
    conf1: np.ndarray
    cost: np.ndarray          # (M,) median residual / person size
    swapped: np.ndarray       # (M, 2) view 0 / view 1 had at least one group repaired
    swap_repairs: int = 0     # person-views whose left/right labels were repaired
    dropped_joints: int = 0   # joints dropped for a residual far above their person's level
    id_disagreements: int = 0  # equal track ids the geometry did not match
    flips0: np.ndarray | None = None  # (M, G) swap groups of view 0 mirrored (None when nothing matched)
    flips1: np.ndarray | None = None  # (M, G) the same for view 1
    points: np.ndarray | None = None  # (M, J, 3) two-view midpoints in camera 0's frame, output labels, NaN dropped
    decided: np.ndarray | None = None  # (M, G) groups whose pairing (as is or mirrored) the evidence settled

    @classmethod
    def empty(cls, num_joints: int) -> CrossViewMatch:
        z = np.zeros(0, np.int64)
        return cls(z, z.copy(), np.zeros((0, num_joints, 2)), np.zeros((0, num_joints)),
                   np.zeros((0, num_joints, 2)), np.zeros((0, num_joints)), np.zeros(0), np.zeros((0, 2), bool))


def limit_people(confidence: np.ndarray, max_people: int) -> np.ndarray:
    """Sorted indices of the `max_people` people with the largest total confidence (P, J) (all when fewer)."""
    count = confidence.shape[0]
    if count <= max_people:
        return np.arange(count)
    order = np.argsort(-confidence.sum(axis=1), kind="stable")
    return np.sort(order[:max_people])


def person_size_px(pixels: np.ndarray) -> np.ndarray:
    """(P,) larger side of each person's keypoint bounding box (P, J, 2) in pixels; 0 without keypoints."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a person without any keypoint
        extent = np.nanmax(pixels, axis=1) - np.nanmin(pixels, axis=1)
    return np.nan_to_num(extent.max(axis=-1), nan=0.0)


def two_view_residual(ray0: np.ndarray, ray1: np.ndarray, cam1_from_cam0: RigidTransform, focal0: np.ndarray,
                      focal1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint triangulation of normalised rays (..., 3) (z = 1) of camera 0 and camera 1.

    Returns the point in camera 0's frame (..., 3) and the mean pixel residual of the two views (...,), with the
    normalised error scaled by each camera's focal lengths; NaN where a ray is missing, the rays are parallel or
    the point lies behind a camera.
    """
    rot, t = cam1_from_cam0.R, cam1_from_cam0.t
    origin = -rot.T @ t                 # camera 1's centre in camera 0's frame
    u, v = ray0, ray1 @ rot             # v = R^T ray1, camera 1's ray direction in camera 0's frame
    a, b, c = (u * u).sum(-1), (u * v).sum(-1), (v * v).sum(-1)
    d, e = u @ origin, v @ origin
    with np.errstate(invalid="ignore", divide="ignore"):
        den = a * c - b * b
        s = (d * c - b * e) / den       # depth along ray 0 (its z is 1: camera 0 depth)
        r = (b * d - a * e) / den       # depth along ray 1 (camera 1 depth)
        point = 0.5 * (s[..., None] * u + origin + r[..., None] * v)
        in_cam1 = point @ rot.T + t
        err0 = np.linalg.norm((point[..., :2] / point[..., 2:3] - u[..., :2]) * focal0, axis=-1)
        err1 = np.linalg.norm((in_cam1[..., :2] / in_cam1[..., 2:3] - ray1[..., :2]) * focal1, axis=-1)
        ok = (den > 1e-12 * a * c) & (s > 0) & (r > 0) & (point[..., 2] > 0) & (in_cam1[..., 2] > 0)
    return np.where(ok[..., None], point, np.nan), np.where(ok, 0.5 * (err0 + err1), np.nan)


def _rays(camera: CameraModel, pixels: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Normalised rays (P, J, 3) of usable keypoints; NaN elsewhere."""
    xy = camera.undistort_points(np.where(usable[..., None], pixels, np.nan))
    return np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN (NaN where all are)."""
    return nanmedian_last(values)


@dataclass
class _View:
    rays: np.ndarray
    size: np.ndarray
    focal: np.ndarray


def _candidates(v0: _View, v1: _View, torso0: np.ndarray, torso1: np.ndarray, cam1_from_cam0: RigidTransform,
                config: MatchConfig) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (c0, c1) after the torso test and the per-person cap, scored in bounded chunks."""
    a, b = torso0.shape[0], torso1.shape[0]
    score = np.full((a, b), np.inf)
    seen0, seen1 = np.isfinite(torso0).all(-1), np.isfinite(torso1).all(-1)  # (A, T), (B, T)
    # Epipolar lines in view 1 of view 0's torso points (normalised coordinates), scaled to pixels of view 1.
    t = cam1_from_cam0.t
    essential = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]]) @ cam1_from_cam0.R
    lines = torso0 @ essential.T  # (A, T, 3)
    lines = lines / np.linalg.norm(lines[..., :2] / v1.focal, axis=-1, keepdims=True)  # distance in ~pixels
    rows = max(1, _CHUNK_PAIRS // max(b, 1))
    for start in range(0, a, rows):
        stop = min(a, start + rows)
        dist = np.abs(np.einsum("atk,btk->abt", lines[start:stop], torso1))  # (rows, B, T), NaN where unseen
        size = 0.5 * (v0.size[start:stop, None] + v1.size[None])
        # A pair without any torso point seen in both views cannot be judged cheaply: kept, ranked last.
        common = (seen0[start:stop, None] & seen1[None]).any(-1)
        score[start:stop] = np.where(common, np.nan_to_num(_nanmedian(dist) / size, nan=np.inf), config.prune)
    keep = score <= config.prune
    k = config.max_candidates
    if b > k:
        kth_row = np.partition(score, k - 1, axis=1)[:, k - 1:k]
        near_row = score <= kth_row
    else:
        near_row = np.ones_like(keep)
    if a > k:
        kth_col = np.partition(score, k - 1, axis=0)[k - 1:k, :]
        near_col = score <= kth_col
    else:
        near_col = np.ones_like(keep)
    c0, c1 = np.nonzero(keep & (near_row | near_col))
    return c0.astype(np.int64), c1.astype(np.int64)


def _assign(c0: np.ndarray, c1: np.ndarray, cost: np.ndarray, preference: np.ndarray, gate: float, a: int,
            b: int) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one assignment over sparse candidates minimising `preference` among pairs whose geometric
    `cost` passes the gate, solved per connected component."""
    ok = np.isfinite(cost) & (cost <= gate)
    c0, c1, cost = c0[ok], c1[ok], preference[ok]
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if a * b <= 2500:  # a few dozen people: one dense solve is cheaper than finding components
        comp = np.zeros(cost.size, dtype=np.int64)
    else:
        graph = coo_matrix((np.ones(cost.size), (c0, a + c1)), shape=(a + b, a + b))
        comp = connected_components(graph, directed=False)[1][c0]
    out0, out1 = [], []
    for lab in np.unique(comp):  # components are small in real scenes: cost stays linear in people
        sel = comp == lab
        r_ids, r_inv = np.unique(c0[sel], return_inverse=True)
        k_ids, k_inv = np.unique(c1[sel], return_inverse=True)
        dense = np.full((len(r_ids), len(k_ids)), _UNUSABLE)
        dense[r_inv, k_inv] = cost[sel]
        rows, cols = linear_sum_assignment(dense)
        good = dense[rows, cols] < _UNUSABLE
        out0.append(r_ids[rows[good]])
        out1.append(k_ids[cols[good]])
    return np.concatenate(out0).astype(np.int64), np.concatenate(out1).astype(np.int64)


def match_views(cam0: CameraModel, cam1: CameraModel, cam1_from_cam0: RigidTransform,
                kp0: np.ndarray, conf0: np.ndarray, ids0: np.ndarray,
                kp1: np.ndarray, conf1: np.ndarray, ids1: np.ndarray, layout: Layout,
                config: MatchConfig = MatchConfig(), previous: np.ndarray | None = None,
                track_gate_m: float = 0.5) -> CrossViewMatch:
    """Match the people of two views (keypoints (P, J, 2), confidences (P, J), track ids (P,) with -1 untracked)
    and repair their left/right swaps. `previous` (K, J, 3): last frame's tracked poses in camera 0's frame, used
    to decide which view's labels a swapped group keeps."""
    a, b, num_joints = kp0.shape[0], kp1.shape[0], kp0.shape[1]
    if a == 0 or b == 0:
        return CrossViewMatch.empty(num_joints)
    groups = swap_groups(layout)
    usable0 = np.isfinite(kp0).all(-1) & (conf0 >= config.min_confidence) & (conf0 > 0)
    usable1 = np.isfinite(kp1).all(-1) & (conf1 >= config.min_confidence) & (conf1 > 0)
    v0 = _View(_rays(cam0, kp0, usable0), np.maximum(person_size_px(np.where(usable0[..., None], kp0, np.nan)),
                                                       config.min_size_px), np.diag(cam0.K)[:2])
    v1 = _View(_rays(cam1, kp1, usable1), np.maximum(person_size_px(np.where(usable1[..., None], kp1, np.nan)),
                                                       config.min_size_px), np.diag(cam1.K)[:2])
    lone = a == 1 and b == 1
    if lone:  # one person per view: the only candidate pair, judged by the lone gate below
        c0, c1 = np.zeros(1, np.int64), np.zeros(1, np.int64)
    else:
        c0, c1 = _candidates(v0, v1, invariant_points(v0.rays, groups), invariant_points(v1.rays, groups),
                             cam1_from_cam0, config)

    # Score each candidate pair under the identity and the mirrored pairing; keep the better per swap group.
    r0, r1 = v0.rays[c0], v1.rays[c1]
    point_same, res_same = two_view_residual(r0, r1, cam1_from_cam0, v0.focal, v1.focal)
    point_mirror, res_mirror = two_view_residual(r0, r1[:, groups.flip], cam1_from_cam0, v0.focal, v1.focal)
    size = 0.5 * (v0.size[c0] + v1.size[c1])
    if config.repair_swaps:
        flipped, decided, leaning = flip_decisions(res_same, res_mirror, size, groups)
        followed = follow_body(flipped, decided, layout, groups, leaning)
        decided = decided | (followed & ~flipped)  # completed whole-body flips are not revisited by the track
        flipped = followed
    else:
        flipped = decided = leaning = np.zeros((len(c0), groups.count), dtype=bool)
    use_mirror = group_mask(groups, flipped)
    residual = np.where(use_mirror, res_mirror, res_same)
    enough = np.isfinite(residual).sum(axis=1) >= config.min_common_joints
    # The lone pair is judged against the smaller of its two sizes: one far-off "person" spread over the image
    # (an impostor) must not dilute its own residual.
    scale = np.minimum(v0.size[c0], v1.size[c1]) if lone else size
    cost = np.where(enough, _nanmedian(residual) / scale, np.inf)
    id0, id1 = match_by_track_id(ids0, ids1)
    if lone:  # a single candidate: the gate alone decides, preferences rank nothing
        m0 = m1 = np.zeros(int(np.isfinite(cost[0]) and cost[0] <= config.lone_gate), np.int64)
    else:
        hinted = np.zeros((a, b), dtype=bool)
        hinted[id0, id1] = True
        preference = np.where(hinted[c0, c1], cost * config.id_discount, cost)
        if previous is not None and len(previous):
            # Among pairs that fit the views about equally (two people on the same epipolar planes), prefer those
            # whose 3D lies where a tracked person was: a wrong pairing lands far off in depth.
            chosen = np.where(use_mirror[..., None], point_mirror, point_same)
            dist = nan_mean_distance(invariant_points(chosen, groups)[:, None],
                                     invariant_points(previous, groups)[None])
            preference = preference + np.where(dist.min(axis=1) > track_gate_m, config.untracked_penalty, 0.0)
        m0, m1 = _assign(c0, c1, cost, preference, config.gate, a, b)
    order = np.argsort(m0, kind="stable")
    m0, m1 = m0[order], m1[order]
    matched = set(zip(m0.tolist(), m1.tolist(), strict=True))
    disagreements = sum((i, j) not in matched for i, j in zip(id0.tolist(), id1.tolist(), strict=True))

    # Candidate row of every match, then labels, keypoint repair and bad joints for the matched people only.
    lookup = {pair: k for k, pair in enumerate(zip(c0.tolist(), c1.tolist(), strict=True))}
    rows = np.array([lookup[p] for p in zip(m0.tolist(), m1.tolist(), strict=True)], dtype=np.int64)
    flipped_m = flipped[rows]
    # The track settles groups the views left undecided and says which view swapped a mirrored group: nothing to
    # do when every matched group is decided and none is mirrored (the common frame).
    tracked = (config.repair_swaps and previous is not None and len(previous) and len(rows)
               and not (decided[rows].all() and not flipped_m.any()))
    if tracked:
        flipped_m = temporal_flips(point_same[rows], point_mirror[rows], flipped_m, decided[rows], leaning[rows],
                                   previous, groups, layout, track_gate_m)
        # Each view against the tracked pose's projection into it: a group that jumped to its mirror image in one
        # view (and not in the other) says both the pairing and which view swapped, where geometry cannot.
        chosen = np.where(group_mask(groups, flipped_m)[..., None], point_mirror[rows], point_same[rows])
        track, near = nearest_track(chosen, previous, groups, track_gate_m)
        swapped0, clear0 = image_swaps(kp0[m0], cam0.project(track), v0.size[m0], groups)
        swapped1, clear1 = image_swaps(kp1[m1], cam1.project(cam1_from_cam0.apply(track)), v1.size[m1], groups)
        body = np.array([layout.joint_names[r] in BODY_AXES for r in groups.roots[:, 0]])
        image = near[:, None] & clear0 & clear1 & ~(swapped0 & swapped1) & body
        to_mirror = image & ~decided[rows] & (swapped0 | swapped1) & leaning[rows]
        to_same = image & ~decided[rows] & ~(swapped0 | swapped1)
        flipped_m = (flipped_m | to_mirror) & ~to_same
    settled = flipped_m | decided[rows]
    mirror_m = group_mask(groups, flipped_m)
    residual_m = np.where(mirror_m, res_mirror[rows], res_same[rows])
    points = np.where(mirror_m[..., None], point_mirror[rows], point_same[rows])
    from_view1 = choose_labels(points, flipped_m, layout, groups, previous, track_gate_m)
    if tracked:
        from_view1 = np.where(image & flipped_m & (swapped0 | swapped1), swapped0, from_view1)
    fix0, fix1 = from_view1, flipped_m & ~from_view1  # which view's groups get mirrored
    out_kp0, out_c0 = mirror_groups(kp0[m0], groups, fix0), mirror_groups(conf0[m0, :, None], groups, fix0)[..., 0]
    out_kp1, out_c1 = mirror_groups(kp1[m1], groups, fix1), mirror_groups(conf1[m1, :, None], groups, fix1)[..., 0]
    # residual per joint under view 0's labels -> under the chosen labels
    res_m = mirror_groups(residual_m[..., None], groups, fix0)[..., 0]
    dropped = 0
    if config.drop_bad_joints:
        level = _nanmedian(res_m)[:, None]
        limit = np.maximum(config.bad_joint_factor * level, config.bad_joint_floor * size[rows][:, None])
        with np.errstate(invalid="ignore"):
            bad = res_m > limit
        dropped = int(bad.sum())
        out_kp0, out_kp1 = np.where(bad[..., None], np.nan, out_kp0), np.where(bad[..., None], np.nan, out_kp1)
        out_c0, out_c1 = np.where(bad, 0.0, out_c0), np.where(bad, 0.0, out_c1)
    swapped = np.stack([fix0.any(axis=1), fix1.any(axis=1)], axis=1)
    kept = np.isfinite(out_kp0).all(axis=-1) & np.isfinite(out_kp1).all(axis=-1)
    points = np.where(kept[..., None], mirror_groups(points, groups, fix0), np.nan)
    return CrossViewMatch(m0, m1, out_kp0, out_c0, out_kp1, out_c1, cost[rows], swapped, int(swapped.sum()),
                          dropped, disagreements, fix0, fix1, points, settled)

