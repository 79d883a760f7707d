"""Skeleton layouts (h36m17, coco17) as values that travel: joints, drawing/graph edges, root, parts, flips.

A `Layout` holds everything that depends on the joint definition, so the network, losses, noise model, markers and
TF all work in the layout of the input (a coco17 detector gets a coco17 refiner and coco17 output). Both layouts
have 17 joints. `to_h36m` maps coco17 to h36m17 for consumers that need Human3.6M joints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Layout:
    """A named joint layout.

    parents: a spanning tree (-1 at the tree root) for bone-wise code; edges: the body graph drawn in RViz and used
    by the network (the tree plus e.g. the hip-hip and shoulder-shoulder links); root: joints averaged to the body
    root (pelvis, or mid-hip); parts: left arm, right arm, left leg, right leg, torso/head (U-shaped pooling);
    swap_groups: joint groups a detector may flip left/right on its own (arms, legs, face); error_scale: relative
    detector error per joint (extremities worst).
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    root: tuple[int, ...] = (0,)
    edges: tuple[tuple[int, int], ...] = ()
    parts: tuple[tuple[int, ...], ...] = ()
    symmetric_bones: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = ()
    swap_groups: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = ()
    error_scale: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if len(self.parents) != n or (self.error_scale and len(self.error_scale) != n):
            raise ValueError(f"layout {self.name}: per-joint tuples must have {n} entries")
        if not self.edges:
            object.__setattr__(self, "edges", tuple((p, c) for c, p in enumerate(self.parents) if p >= 0))
        if not self.error_scale:
            object.__setattr__(self, "error_scale", (1.0,) * n)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def bones(self) -> np.ndarray:
        """(B, 2) array of (parent, child) joint indices of the spanning tree."""
        return np.array([(p, c) for c, p in enumerate(self.parents) if p >= 0], dtype=np.int64)

    @property
    def edge_array(self) -> np.ndarray:
        """(E, 2) body-graph edges (drawing, network, bone-direction loss)."""
        return np.asarray(self.edges, dtype=np.int64)

    @property
    def second_order_edges(self) -> tuple[tuple[int, int], ...]:
        """Joint pairs exactly two hops apart in the body graph (the network's second-order kernel)."""
        return tuple(second_order_edges(self.num_joints, list(self.edges)))

    @property
    def symmetric_pairs(self) -> tuple[tuple[int, int], ...]:
        """(right, left) joint pairs (the network's symmetric kernel)."""
        return tuple(zip(self.right, self.left, strict=True))

    def joint_index(self, name: str) -> int:
        return self.joint_names.index(name)

    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps left and right joints (whole-body flip)."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm

    def root_of(self, points: np.ndarray) -> np.ndarray:
        """Root position (..., D) of points (..., J, D): the mean of the root joints (NaN if one is missing)."""
        return np.asarray(points)[..., list(self.root), :].mean(axis=-2)


H36M17 = Layout(
    name="h36m17",
    joint_names=(
        "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax",
        "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
    root=(0,),
    parts=((11, 12, 13), (14, 15, 16), (4, 5, 6), (1, 2, 3), (0, 7, 8, 9, 10)),
    symmetric_bones=(((0, 4), (0, 1)), ((4, 5), (1, 2)), ((5, 6), (2, 3)),
                     ((8, 11), (8, 14)), ((11, 12), (14, 15)), ((12, 13), (15, 16))),
    swap_groups=(((11, 12, 13), (14, 15, 16)), ((4, 5, 6), (1, 2, 3))),
    error_scale=(0.9, 1.0, 1.2, 1.5, 1.0, 1.2, 1.5, 0.8, 0.8, 1.0, 1.1, 1.0, 1.25, 1.6, 1.0, 1.25, 1.6),
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
    root=(11, 12),
    # the usual COCO body graph: face, ears to shoulders, shoulder and hip girdles, torso sides, limbs
    edges=((0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
           (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16)),
    parts=((5, 7, 9), (6, 8, 10), (11, 13, 15), (12, 14, 16), (0, 1, 2, 3, 4)),
    symmetric_bones=(((11, 13), (12, 14)), ((13, 15), (14, 16)), ((5, 7), (6, 8)), ((7, 9), (8, 10)),
                     ((5, 11), (6, 12)), ((0, 1), (0, 2)), ((1, 3), (2, 4)), ((3, 5), (4, 6))),
    swap_groups=(((5, 7, 9), (6, 8, 10)), ((11, 13, 15), (12, 14, 16)), ((1, 3), (2, 4))),
    error_scale=(0.8, 0.7, 0.7, 0.9, 0.9, 1.0, 1.0, 1.25, 1.25, 1.6, 1.6, 1.2, 1.2, 1.2, 1.2, 1.5, 1.5),
)

LAYOUTS: dict[str, Layout] = {H36M17.name: H36M17, COCO17.name: COCO17}

NUM_JOINTS = 17  # both layouts; code that is layout-generic reads layout.num_joints
PELVIS = 0  # h36m17 root

# Symmetric bone pairs of the h36m17 symmetry loss (SPEC section 1), kept for callers of the old constant.
SYMMETRIC_BONES = np.array(H36M17.symmetric_bones, dtype=np.int64)

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
# Graph kernels (SPEC section 1). The h36m17 lists below are the SPEC's; layouts derive theirs from their edges.
PHYSICAL_EDGES = [(p, c) for c, p in enumerate(H36M17.parents) if p >= 0]
SECOND_ORDER_EDGES = [
    (0, 2), (0, 5), (0, 8), (1, 3), (1, 4), (1, 7), (4, 6), (4, 7), (7, 9), (7, 11), (7, 14), (8, 10), (8, 12),
    (8, 15), (9, 11), (9, 14), (11, 13), (11, 14), (14, 16),
]
SYMMETRIC_EDGES = [(1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)]

# Body parts for U-shaped pooling: left arm, right arm, left leg, right leg, torso (h36m17).
PARTS = tuple(list(p) for p in H36M17.parts)
PART_PHYSICAL_EDGES = [(0, 4), (1, 4), (2, 4), (3, 4)]  # each limb attached to the torso (every layout)
PART_SYMMETRIC_EDGES = [(0, 1), (2, 3)]  # arm-arm, leg-leg


def adjacency(num_nodes: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Symmetric 0/1 adjacency matrix of an undirected edge list."""
    a = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    if edges:
        e = np.asarray(edges)
        a[e[:, 0], e[:, 1]] = 1.0
        a[e[:, 1], e[:, 0]] = 1.0
    return a


def second_order_edges(num_nodes: int, edges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """All node pairs exactly two hops apart in the undirected graph given by `edges` (joint and part graphs)."""
    a = adjacency(num_nodes, edges) > 0
    two_hop = (a.astype(np.int64) @ a.astype(np.int64)) > 0
    two_hop &= ~a
    np.fill_diagonal(two_hop, False)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(two_hop)), strict=True)]


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


def joint_kernels(layout: Layout = H36M17) -> np.ndarray:
    """(4, J, J) single-view kernels on the layout's joint graph: self, edges, two-hop pairs, left/right pairs."""
    return single_view_kernels(list(layout.edges), layout.num_joints, list(layout.second_order_edges),
                               list(layout.symmetric_pairs))


def part_kernels() -> np.ndarray:
    """(4, 5, 5) single-view kernels on the part graph (no second-order edges)."""
    return single_view_kernels(PART_PHYSICAL_EDGES, len(PARTS), None, PART_SYMMETRIC_EDGES)


def body_kernels() -> np.ndarray:
    """(4, 1, 1) single-view kernels on the one-node body graph (only self has an edge)."""
    return single_view_kernels([], 1, None, [])
