"""Left/right swap hypotheses of one matched person and which view's labels to believe.

Detectors now and then swap a person's left and right in one view: the whole body, or one limb group (the arms,
the legs, the face; `Layout.swap_groups`). Two-view triangulation is per joint, so whether a group is swapped
between the views shows in that group's residuals alone: triangulating view 0's left joints with view 1's right
joints is consistent exactly when one of the two views swapped the group. `flip_decisions` compares, per group,
the identity pairing with the mirrored one (vectorised over all candidate pairs).

Geometry says which joints belong together, not which view labelled them right: the mirrored pairing gives the
same 3D points under either view's labels. `choose_labels` decides per matched person among the 2^k label
choices of its k swapped groups: first anatomy (a torso twisted by more than 90 degrees between the groups'
left-right axes is impossible), then the tracked person's previous 3D pose, then which way the face points
(the nose in front of the torso), and view 0 last.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from cvpose_ros.body.skeleton import Layout
from cvpose_ros.nanstats import nanmedian_last

# Joint in front of the torso that tells which way a body faces (by joint name; absent -> no facing test).
FACING_JOINT = {"coco17": "nose", "h36m17": "neck"}
# Groups whose root pair is a body axis (shoulders, hips): their left-right axes never point against each other.
BODY_AXES = ("l_shoulder", "l_hip")
TWIST_COS = 0.25  # axes count as opposed beyond about 105 degrees (real torsos twist < 90 degrees)


@dataclass(frozen=True)
class SwapGroups:
    """Index arrays of a layout's swap groups: `left[g]`/`right[g]` joints of group g (padded with -1), the
    whole-body mirror permutation, each joint's group (-1 for centre joints), and each group's root pair."""

    flip: np.ndarray        # (J,) mirror permutation
    joint_group: np.ndarray  # (J,) group index or -1
    roots: np.ndarray       # (G, 2) (left, right) root joint of each group (its first listed pair)
    count: int
    members: np.ndarray     # (G, K) joints of each group, padded with -1


@functools.lru_cache(maxsize=32)
def swap_groups(layout: Layout) -> SwapGroups:
    """The layout's swap groups plus one for mirrored joints no group covers, so all groups flipped = body flip.
    Cached per layout (it is built on every matched frame); the arrays are shared and must not be modified."""
    flip = layout.flip_permutation()
    groups = [tuple(zip(left, right, strict=True)) for left, right in layout.swap_groups]
    covered = {j for g in groups for pair in g for j in pair}
    rest = tuple((left, right) for left, right in zip(layout.left, layout.right, strict=True)
                 if left not in covered)
    if rest:
        groups.append(rest)
    joint_group = np.full(layout.num_joints, -1, dtype=np.int64)
    for g, pairs in enumerate(groups):
        for left, right in pairs:
            joint_group[[left, right]] = g
    roots = np.array([g[0] for g in groups], dtype=np.int64).reshape(-1, 2)
    width = max((2 * len(g) for g in groups), default=0)
    members = np.full((len(groups), width), -1, dtype=np.int64)
    for g, pairs in enumerate(groups):
        joints = [j for pair in pairs for j in pair]
        members[g, :len(joints)] = joints
    return SwapGroups(flip, joint_group, roots, len(groups), members)


def group_mask(groups: SwapGroups, flipped: np.ndarray) -> np.ndarray:
    """(..., J) joints whose group is flipped, from (..., G) group flags."""
    flipped = np.asarray(flipped, dtype=bool)
    padded = np.concatenate([flipped, np.zeros(flipped.shape[:-1] + (1,), dtype=bool)], axis=-1)
    return padded[..., groups.joint_group]  # index -1 reads the padding (never flipped)


def _group_means(values: np.ndarray, groups: SwapGroups) -> tuple[np.ndarray, np.ndarray]:
    """Per-group sum and count of finite `values` (..., J) -> (..., G) each."""
    onehot = (groups.joint_group[:, None] == np.arange(groups.count)[None, :]).astype(np.float64)  # (J, G)
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0) @ onehot
    return total, finite.astype(np.float64) @ onehot


def _group_medians(values: np.ndarray, groups: SwapGroups) -> np.ndarray:
    """Per-group median of finite `values` (..., J) -> (..., G); NaN for a group without any."""
    padded = np.concatenate([values, np.full(values.shape[:-1] + (1,), np.nan)], axis=-1)
    return nanmedian_last(padded[..., groups.members])  # (..., G, K); index -1 reads the NaN padding


def flip_decisions(res_same: np.ndarray, res_mirror: np.ndarray, scale: np.ndarray, groups: SwapGroups,
                   ratio: float = 0.5, margin: float = 0.03) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., G) groups whose mirrored pairing fits the two views clearly better than the identity pairing,
    (..., G) groups where the views decide either way (elsewhere both pairings fit about equally well), and
    (..., G) groups where the mirrored pairing fits at least as well (however little).

    res_same/res_mirror (..., J): two-view residuals (px, NaN where unusable) of view 0's joint j paired with view
    1's joint j, or with view 1's mirrored joint; scale (...,) the person's size in px. A group flips when, over its
    joints usable both ways, its median residual (one outlier joint does not decide) falls below `ratio` of the
    identity's and by at least `margin` x scale.
    """
    both = np.isfinite(res_same) & np.isfinite(res_mirror)
    count = _group_means(both.astype(np.float64), groups)[0]
    median_same = _group_medians(np.where(both, res_same, np.nan), groups)
    median_mirror = _group_medians(np.where(both, res_mirror, np.nan), groups)
    with np.errstate(invalid="ignore"):
        gap_mirror = (median_same - median_mirror) / scale[..., None]
        gap_same = (median_mirror - median_same) / scale[..., None]
        flip = (count >= 1) & (median_mirror < ratio * median_same) & (gap_mirror > margin)
        keep = (count >= 1) & (median_same < ratio * median_mirror) & (gap_same > margin)
        leaning = (count >= 1) & (median_mirror <= median_same)
    return flip, flip | keep, leaning


def invariant_points(points: np.ndarray, groups: SwapGroups) -> np.ndarray:
    """(..., T, D) points that a left/right swap leaves alone: each group's root-pair midpoint and the centre
    joints, from points (..., J, D)."""
    centre = np.flatnonzero(groups.joint_group < 0)
    mids = 0.5 * (points[..., groups.roots[:, 0], :] + points[..., groups.roots[:, 1], :])
    return np.concatenate([mids, points[..., centre, :]], axis=-2)


def nan_mean_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean over the last-but-one axis of |a - b| (..., T, 3) where finite; inf when nothing is."""
    d = np.linalg.norm(a - b, axis=-1)
    finite = np.isfinite(d)
    count = finite.sum(axis=-1)
    return np.where(count > 0, np.where(finite, d, 0.0).sum(axis=-1) / np.maximum(count, 1), np.inf)


def follow_body(flipped: np.ndarray, decided: np.ndarray, layout: Layout, groups: SwapGroups,
                leaning: np.ndarray | None = None) -> np.ndarray:
    """(..., G) flips completed the way detectors err: mostly the whole body at once. An undecided body-axis group
    (legs standing together, arms along the epipolar lines) that leans mirrored (`leaning`, when given) follows
    another body group's clear flip, and an
    undecided small group (the face: eyes and ears lie too close together for the views to tell) follows when all
    body groups flipped. A group the views clearly keep stays kept."""
    body = np.array([layout.joint_names[r] in BODY_AXES for r in groups.roots[:, 0]])
    if not body.any():
        return flipped
    undecided = ~decided
    follows = undecided if leaning is None else undecided & leaning
    out = flipped | (follows & body & (flipped & body).any(axis=-1, keepdims=True))
    whole = out[..., body].all(axis=-1, keepdims=True)
    return out | (whole & undecided & ~body)


def symmetry_error(points: np.ndarray, layout: Layout, groups: SwapGroups) -> np.ndarray:
    """(..., G) mean |left - right| length difference (m) of each group's symmetric bones in points (..., J, 3);
    NaN for a group without a measurable pair. A wrong pairing moves a limb's joints along the epipolar lines by
    different depths, so its left and right bones stop matching."""
    pairs = np.array([(a, b, c, d) for (a, b), (c, d) in layout.symmetric_bones], dtype=np.int64).reshape(-1, 4)
    owner = groups.joint_group[pairs[:, 1]]
    keep = (owner >= 0) & (owner == groups.joint_group[pairs[:, 3]])
    pairs, owner = pairs[keep], owner[keep]
    first = np.linalg.norm(points[..., pairs[:, 0], :] - points[..., pairs[:, 1], :], axis=-1)
    second = np.linalg.norm(points[..., pairs[:, 2], :] - points[..., pairs[:, 3], :], axis=-1)
    diff = np.abs(first - second)  # (..., S)
    onehot = (owner[:, None] == np.arange(groups.count)[None, :]).astype(np.float64)  # (S, G)
    finite = np.isfinite(diff)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(finite, diff, 0.0) @ onehot) / (finite.astype(np.float64) @ onehot)


def temporal_flips(same: np.ndarray, mirror: np.ndarray, flipped: np.ndarray, decided: np.ndarray,
                   leaning: np.ndarray, previous: np.ndarray, groups: SwapGroups, layout: Layout, gate_m: float = 0.5,
                   margin_m: float = 0.05, ratio: float = 0.5) -> np.ndarray:
    """(M, G) pairings of M matched people where the views cannot tell a swap (a limb's left and right lie along
    the epipolar lines), settled by which pairing's 3D points lie nearer the person's last tracked pose.

    same/mirror (M, J, 3): the identity and the mirrored pairing's points under view 0's labels; flipped, decided
    (M, G) from `flip_decisions`; previous (K, J, 3) last frame's tracked poses, same frame. Label-agnostic: a
    group's distance is the smaller of its two labelings. Mirroring needs `d_mirror < ratio * d_same` and a gap
    of `margin_m`.
    """
    chosen = np.where(group_mask(groups, flipped)[..., None], mirror, same)
    dist = nan_mean_distance(invariant_points(chosen, groups)[:, None], invariant_points(previous, groups)[None])
    nearest = np.argmin(dist, axis=1)
    near = dist[np.arange(len(dist)), nearest] < gate_m
    track = previous[nearest]  # (M, J, 3)

    def group_distance(points: np.ndarray) -> np.ndarray:
        own = np.linalg.norm(points - track, axis=-1)
        crossed = np.linalg.norm(points - track[:, groups.flip], axis=-1)
        sums = [_group_means(np.where(np.isfinite(d), d, np.nan), groups) for d in (own, crossed)]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = [total / count for total, count in sums]
        return np.fmin(means[0], means[1])

    d_same, d_mirror = group_distance(same), group_distance(mirror)
    settle = ~decided & near[:, None] & np.isfinite(d_same) & np.isfinite(d_mirror)
    # Mirroring needs clear evidence (a wrong mirror would carry over to the track); keeping needs less.
    symmetric = symmetry_error(mirror, layout, groups) <= symmetry_error(same, layout, groups)
    to_mirror = settle & symmetric & (d_mirror < ratio * d_same) & (d_same - d_mirror > margin_m)
    to_same = settle & (d_same < d_mirror - 0.5 * margin_m)
    return (flipped | to_mirror) & ~to_same


def nearest_track(points: np.ndarray, previous: np.ndarray, groups: SwapGroups,
                  gate_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The tracked pose (M, J, 3) nearest each of M people's points (M, J, 3), judged on swap-invariant points,
    and (M,) whether it lies within `gate_m`."""
    dist = nan_mean_distance(invariant_points(points, groups)[:, None], invariant_points(previous, groups)[None])
    nearest = np.argmin(dist, axis=1)
    return previous[nearest], dist[np.arange(len(dist)), nearest] < gate_m


def image_swaps(pixels: np.ndarray, projected: np.ndarray, size: np.ndarray, groups: SwapGroups,
                ratio: float = 0.5, margin: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(M, G) groups whose keypoints in one view (M, J, 2) lie clearly nearer the mirrored joints of the tracked
    pose's projection into that view (M, J, 2) than its own (the view swapped them since the last frame), and
    (M, G) groups where that view decides either way. Needs the nearer side's median below `ratio` of the other's
    and a gap of `margin` x the person's size (M,) px. A swap that moves a group little in a view (left and right
    close together in the image) stays undecided there, and it moves the triangulation little too."""
    own = np.linalg.norm(pixels - projected, axis=-1)
    crossed = np.linalg.norm(pixels - projected[:, groups.flip], axis=-1)
    median_own, median_crossed = _group_medians(own, groups), _group_medians(crossed, groups)
    with np.errstate(invalid="ignore"):
        gap = (median_own - median_crossed) / size[:, None]
        swapped = (median_crossed < ratio * median_own) & (gap > margin)
        kept = (median_own < ratio * median_crossed) & (-gap > margin)
    return swapped, swapped | kept


def _twist_penalty(axes: np.ndarray, signs: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """(M, O) number of counted group pairs whose left-right axes clearly oppose each other under each option.

    axes (M, G, 3) left-minus-right root vectors under view 0's labels; signs (O, G) +1 keeps, -1 mirrors a group;
    counted (G,) groups whose pairs count.
    """
    g = axes.shape[1]
    penalty = np.zeros((axes.shape[0], signs.shape[0]))
    unit = axes / np.linalg.norm(axes, axis=-1, keepdims=True)
    for a, b in combinations(np.flatnonzero(counted[:g]).tolist(), 2):
        cos = np.einsum("mk,mk->m", unit[:, a], unit[:, b])
        with np.errstate(invalid="ignore"):  # NaN -> no penalty; near-perpendicular axes (noise) neither
            penalty += (cos[:, None] * signs[None, :, a] * signs[None, :, b]) < -TWIST_COS
    return penalty


def _facing(points: np.ndarray, layout: Layout, groups: SwapGroups, signs: np.ndarray) -> np.ndarray:
    """(O,) +1 when the facing joint lies in front of the torso under each label option, -1 behind, 0 unknown.

    points (J, 3) under view 0's labels; forward = up x (right - left) with up from mid-hip to mid-shoulder.
    """
    names = (FACING_JOINT.get(layout.name, ""), "l_shoulder", "r_shoulder", "l_hip", "r_hip")
    if not all(n in layout.joint_names for n in names):
        return np.zeros(signs.shape[0])
    front, ls, rs, lh, rh = (layout.joint_index(n) for n in names)
    up = 0.5 * (points[ls] + points[rs] - points[lh] - points[rh])
    sign_of = np.concatenate([signs, np.ones((signs.shape[0], 1))], axis=1)  # (O, G+1), -1 column -> +1
    shoulder_sign, hip_sign = sign_of[:, groups.joint_group[rs]], sign_of[:, groups.joint_group[rh]]
    right = shoulder_sign[:, None] * (points[rs] - points[ls]) + hip_sign[:, None] * (points[rh] - points[lh])
    forward = np.cross(up[None], right)
    with np.errstate(invalid="ignore"):
        side = forward @ (points[front] - 0.5 * (points[ls] + points[rs]))
    return np.nan_to_num(np.sign(side), nan=0.0)


def _track_choice(candidates: np.ndarray, allowed: np.ndarray, previous: np.ndarray, gate_m: float,
                  margin_m: float) -> int | None:
    """Index of the allowed option (O, J, 3) clearly nearest to a tracked pose (K, J, 3), else None."""
    diff = np.linalg.norm(candidates[:, None] - previous[None], axis=-1)  # (O, K, J)
    finite = np.isfinite(diff)
    count = finite.sum(axis=-1)
    mean = np.where(count > 0, np.where(finite, diff, 0.0).sum(axis=-1) / np.maximum(count, 1), np.inf)
    dist = np.where(allowed, mean.min(axis=1), np.inf)  # (O,)
    order = np.argsort(dist)
    best = dist[order[0]]
    second = dist[order[1]] if len(order) > 1 else np.inf
    return int(order[0]) if best < gate_m and second - best > margin_m else None


def label_options(flipped: np.ndarray) -> np.ndarray:
    """(O, G) all sign patterns over the flipped groups of one person (+1: view 0 labels, -1: view 1 labels)."""
    idx = np.flatnonzero(flipped)
    options = np.ones((2 ** len(idx), len(flipped)))
    for k, g in enumerate(idx):
        options[:, g] = np.where((np.arange(len(options)) >> k) & 1, -1.0, 1.0)
    return options


def mirror_groups(points: np.ndarray, groups: SwapGroups, mask: np.ndarray) -> np.ndarray:
    """points (..., J, D) with the joints of groups flagged in mask (..., G) swapped left <-> right."""
    joints = group_mask(groups, mask)
    return np.where(joints[..., None], points[..., groups.flip, :], points)


def choose_labels(points: np.ndarray, flipped: np.ndarray, layout: Layout, groups: SwapGroups,
                  previous: np.ndarray | None = None, track_gate_m: float = 0.5,
                  track_margin_m: float = 0.02) -> np.ndarray:
    """(M, G) groups whose labels come from view 1 (view 0 swapped them) for M matched people.

    points (M, J, 3) the triangulation under view 0's labels (any metric frame, the one of `previous`); flipped
    (M, G) the groups whose pairing was mirrored; previous (K, J, 3) tracked poses of the last frame (or None).
    Order of evidence: no twisted torso, the nearest tracked pose (when it is clearly nearest), the facing joint
    in front, view 0.
    """
    out = np.zeros(flipped.shape, dtype=bool)
    for m in np.flatnonzero(flipped.any(axis=1)):  # few people per frame are swapped; options per person <= 2^G
        signs = label_options(flipped[m])
        axes = points[m, groups.roots[:, 0]] - points[m, groups.roots[:, 1]]
        # body axes always count; another group (the face) only while its own labels are being decided
        body = np.array([layout.joint_names[r] in BODY_AXES for r in groups.roots[:, 0]])
        twist = _twist_penalty(axes[None], signs, body | flipped[m])[0]
        allowed = twist == twist.min()
        choice = None
        if previous is not None and len(previous):
            candidates = np.stack([mirror_groups(points[m], groups, s < 0) for s in signs])  # (O, J, 3)
            choice = _track_choice(candidates, allowed, previous, track_gate_m, track_margin_m)
        if choice is None:
            score = np.where(allowed, 0.0, np.inf) - 0.5 * _facing(points[m], layout, groups, signs)
            choice = int(np.argmin(score + 1e-3 * (signs < 0).sum(axis=1)))  # ties: view 0's labels
        out[m] = signs[choice] < 0
    return out
