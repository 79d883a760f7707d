"""Skeleton layouts (h36m17, coco17), the coco17 -> h36m17 mapping and the CV-UGCN graph kernels.

Joint order of h36m17 (VideoPose3D style) is the package's native layout: every 3D output uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """A named joint layout: joint names, parent of each joint (-1 for the root) and left/right joint lists."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def bones(self) -> np.ndarray:
        """(B, 2) array of (parent, child) joint indices."""
        return np.array([(p, c) for c, p in enumerate(self.parents) if p >= 0], dtype=np.int64)

    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps left and right joints (used by augmentation and swap noise)."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm


H36M17 = Layout(
    name="h36m17",
    joint_names=(
        "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax",
        "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
)

COCO17 = Layout(
    name="coco17",
    joint_names=(
        "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
        "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
    ),
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    left=(1, 3, 5, 7, 9, 11, 13, 15),
    right=(2, 4, 6, 8, 10, 12, 14, 16),
)

LAYOUTS: dict[str, Layout] = {H36M17.name: H36M17, COCO17.name: COCO17}

NUM_JOINTS = 17
PELVIS = 0

# Symmetric bone pairs of the symmetry loss (SPEC section 1): each entry ((a, b), (c, d)) compares |a-b| with |c-d|.
SYMMETRIC_BONES = np.array(
    [[(0, 4), (0, 1)], [(4, 5), (1, 2)], [(5, 6), (2, 3)],
     [(8, 11), (8, 14)], [(11, 12), (14, 15)], [(12, 13), (15, 16)]],
    dtype=np.int64,
)

# coco17 -> h36m17 as a linear map: h36m = COCO_TO_H36M @ coco (weights per output joint sum to 1).
# Exact correspondences: hips, knees, ankles, shoulders, elbows, wrists.
# Approximations: pelvis = mid-hip; thorax = mid-shoulder; spine = midpoint of pelvis and thorax;
# neck (h36m "neck/nose") = nose; head = mean of the two ears (top of head is not observed by coco17).
_COCO_SOURCES: dict[int, dict[int, float]] = {
    0: {11: 0.5, 12: 0.5},
    1: {12: 1.0}, 2: {14: 1.0}, 3: {16: 1.0},
    4: {11: 1.0}, 5: {13: 1.0}, 6: {15: 1.0},
    7: {11: 0.25, 12: 0.25, 5: 0.25, 6: 0.25},
    8: {5: 0.5, 6: 0.5},
    9: {0: 1.0},
    10: {3: 0.5, 4: 0.5},
    11: {5: 1.0}, 12: {7: 1.0}, 13: {9: 1.0},
    14: {6: 1.0}, 15: {8: 1.0}, 16: {10: 1.0},
}
COCO_TO_H36M = np.zeros((NUM_JOINTS, COCO17.num_joints), dtype=np.float64)
for _dst, _srcs in _COCO_SOURCES.items():
    for _src, _w in _srcs.items():
        COCO_TO_H36M[_dst, _src] = _w
APPROXIMATE_H36M_JOINTS_FROM_COCO = ("pelvis", "spine", "thorax", "neck", "head")


def get_layout(name: str) -> Layout:
    """Return the layout called `name`; raises ValueError naming the known layouts otherwise."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown keypoint layout {name!r}; expected one of {sorted(LAYOUTS)}") from None


def to_h36m(points: np.ndarray, confidence: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Map keypoints (..., J, D) with confidence (..., J) from `layout` to h36m17.

    A derived joint takes the minimum confidence of its sources; NaN sources make it NaN (so it reads as missing).
    """
    lay = get_layout(layout)
    if points.shape[-2] != lay.num_joints or confidence.shape[-1] != lay.num_joints:
        raise ValueError(f"layout {layout} has {lay.num_joints} joints, got points {points.shape} "
                         f"and confidence {confidence.shape}")
    if lay is H36M17:
        return points, confidence
    used = COCO_TO_H36M > 0  # (17, 17)
    # NaN only where one of a joint's own sources is NaN (0 * NaN in the einsum would spread it to every joint)
    missing = np.isnan(points).any(axis=-1)
    mapped = np.einsum("hc,...cd->...hd", COCO_TO_H36M, np.where(np.isnan(points), 0.0, points))
    mapped = np.where((missing[..., None, :] & used).any(axis=-1)[..., None], np.nan, mapped)
    conf = np.where(used, confidence[..., None, :], np.inf).min(axis=-1)
    return mapped, conf.astype(confidence.dtype)


# ---------------------------------------------------------------------------------------------------------------
# Graph kernels (SPEC section 1)
PHYSICAL_EDGES = [(p, c) for c, p in enumerate(H36M17.parents) if p >= 0]
SECOND_ORDER_EDGES = [
    (0, 2), (0, 5), (0, 8), (1, 3), (1, 4), (1, 7), (4, 6), (4, 7), (7, 9), (7, 11), (7, 14), (8, 10), (8, 12),
    (8, 15), (9, 11), (9, 14), (11, 13), (11, 14), (14, 16),
]
SYMMETRIC_EDGES = [(1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)]

# Body parts for U-shaped pooling: left arm, right arm, left leg, right leg, torso.
PARTS = ([11, 12, 13], [14, 15, 16], [4, 5, 6], [1, 2, 3], [0, 7, 8, 9, 10])
PART_PHYSICAL_EDGES = [(0, 4), (1, 4), (2, 4), (3, 4)]  # each limb attached to the torso
PART_SYMMETRIC_EDGES = [(0, 1), (2, 3)]  # arm-arm, leg-leg


def adjacency(num_nodes: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Symmetric 0/1 adjacency matrix of an undirected edge list."""
    a = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    if edges:
        e = np.asarray(edges)
        a[e[:, 0], e[:, 1]] = 1.0
        a[e[:, 1], e[:, 0]] = 1.0
    return a


def normalize_kernel(a: np.ndarray) -> np.ndarray:
    """D^-1/2 A D^-1/2 with rows of zero degree left at zero."""
    deg = a.sum(axis=1)
    inv = np.zeros_like(deg)
    nz = deg > 0
    inv[nz] = deg[nz] ** -0.5
    return (inv[:, None] * a * inv[None, :]).astype(np.float32)


def single_view_kernels(edges_physical: list[tuple[int, int]] = PHYSICAL_EDGES,
                        num_nodes: int = NUM_JOINTS,
                        second_order: list[tuple[int, int]] | None = SECOND_ORDER_EDGES,
                        symmetric: list[tuple[int, int]] = SYMMETRIC_EDGES) -> np.ndarray:
    """(4, N, N) normalised kernels: self, physical, second order, symmetric."""
    mats = [np.eye(num_nodes, dtype=np.float32), adjacency(num_nodes, edges_physical),
            adjacency(num_nodes, second_order or []), adjacency(num_nodes, symmetric)]
    return np.stack([normalize_kernel(m) for m in mats])


def multi_view_kernels(single: np.ndarray, num_views: int = 2) -> np.ndarray:
    """(5, V*N, V*N) kernels: the 4 single-view kernels block-diagonal per view, plus the view kernel that links
    node n of every view with node n of every other view."""
    k, n, _ = single.shape
    eye_v = np.eye(num_views, dtype=np.float32)
    blocks = [np.kron(eye_v, single[i]) for i in range(k)]
    view = np.kron(np.ones((num_views, num_views), dtype=np.float32) - eye_v, np.eye(n, dtype=np.float32))
    return np.stack(blocks + [normalize_kernel(view)])


def joint_kernels() -> np.ndarray:
    """(4, 17, 17) single-view kernels on the joint graph."""
    return single_view_kernels()


def part_kernels() -> np.ndarray:
    """(4, 5, 5) single-view kernels on the part graph (no second-order edges)."""
    return single_view_kernels(PART_PHYSICAL_EDGES, len(PARTS), None, PART_SYMMETRIC_EDGES)


def body_kernels() -> np.ndarray:
    """(4, 1, 1) single-view kernels on the one-node body graph (only self has an edge)."""
    return single_view_kernels([], 1, None, [])
