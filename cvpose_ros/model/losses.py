"""Weak-supervision losses of CV-UGCN (SPEC section 1 point 3) and NaN-aware pose metrics.

Every loss takes poses (B, J, 3) in metres (NaN = missing joint, ignored) and returns a scalar tensor that is zero
at a consistent ground truth. Distances are robust (sqrt(d^2 + delta^2) - delta: quadratic near zero, linear far
away) because degenerate DLT joints and left/right swaps produce metre-sized outliers (SPEC section 5).

Units: the reprojection term is by default the pixel distance back-projected to the joint's depth
(pixels * depth / focal), i.e. metres, so the four terms are commensurate and the paper's weights 1, 1, 1, 0.1 make
sense; `units="pixels"` gives raw pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from cvpose_ros.body.skeleton import H36M17, Layout
from cvpose_ros.geometry.torch_geometry import apply_transform, invert_transform, project_points, rotate

_EPS = 1e-12


@dataclass(frozen=True)
class WeakLossWeights:
    """Weights of L = wr*Lr + ws*Ls + wt*Lt + wb*Lb (+ optional supervised MPJPE)."""

    reprojection: float = 1.0
    symmetry: float = 1.0
    transform: float = 1.0
    bone_direction: float = 0.1
    supervised: float = 0.0
    extra_reprojection: float = 1.0  # reprojection into further cameras (only when their 2D is given)

    def to_dict(self) -> dict:
        return asdict(self)


def robust_distance(diff: torch.Tensor, delta: float) -> torch.Tensor:
    """sqrt(|diff|^2 + delta^2) - delta over the last axis: zero at zero, smooth, grows linearly (not squared)."""
    return torch.sqrt((diff * diff).sum(dim=-1) + delta * delta) - delta


def _finite_points(points: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(points).all(dim=-1)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean of values where mask is true; 0 (still differentiable) when nothing is valid."""
    w = mask.to(values.dtype) if weights is None else torch.where(mask, weights.to(values.dtype), 0.0)
    safe = torch.where(mask, values, torch.zeros_like(values))
    return (safe * w).sum() / w.sum().clamp_min(_EPS)


def _zero_invalid(points: torch.Tensor, valid: torch.Tensor, fill: tuple[float, ...] = (0.0, 0.0, 0.0)) -> torch.Tensor:
    """Replace invalid points by a harmless constant so NaN never enters a forward or backward pass."""
    return torch.where(valid[..., None], points, points.new_tensor(fill))


def reprojection_loss(refined0: torch.Tensor, refined1: torch.Tensor, kp2d: torch.Tensor, conf: torch.Tensor,
                      K: torch.Tensor, dist: torch.Tensor | None, *, delta_px: float = 1.0,
                      units: str = "metres") -> torch.Tensor:
    """Confidence-weighted robust 2D distance between each refined pose projected into its own camera (with the
    lens model) and the 2D targets. kp2d (B, 2, J, 2) raw pixels, conf (B, 2, J), K (B, 2, 3, 3), dist (B, 2, D).
    Missing targets (NaN or conf <= 0) and missing 3D joints are ignored."""
    poses = torch.stack([refined0, refined1], dim=1)  # (B, 2, J, 3)
    mask = _finite_points(poses) & _finite_points(kp2d) & (torch.nan_to_num(conf) > 0)
    return _view_reprojection(poses, kp2d, conf, K, dist, mask, delta_px, units)


def extra_view_reprojection_loss(refined0: torch.Tensor, refined1: torch.Tensor, R10: torch.Tensor,
                                 t10: torch.Tensor, extra: dict[str, torch.Tensor], *, delta_px: float = 1.0,
                                 units: str = "metres", min_depth: float = 0.05) -> torch.Tensor:
    """`reprojection_loss` into E further cameras of the recording: both refined poses (refined1 brought into
    camera 0 by the inverse of cam1_from_cam0) are moved into each extra camera (`extra_R`, `extra_t`: extra from
    camera 0, (B, E, 3, 3) / (B, E, 3)), projected with `extra_K` / `extra_dist` and compared with `extra_kp2d`
    (B, E, J, 2) weighted by `extra_conf` (B, E, J). Joints at less than `min_depth` in front of a camera count
    as missing there. This is the paper's weak supervision by every view, for a network that refines a pair."""
    R01, t01 = invert_transform(R10.to(refined0.dtype), t10.to(refined0.dtype))
    in_cam0 = torch.stack([refined0, apply_transform(R01, t01, refined1)], dim=1)  # (B, 2, J, 3)
    R = extra["extra_R"].to(refined0.dtype)[:, None]  # (B, 1, E, 3, 3)
    t = extra["extra_t"].to(refined0.dtype)[:, None]
    points = apply_transform(R, t, in_cam0[:, :, None])  # (B, 2, E, J, 3)
    b, _, e, j, _ = points.shape
    points = points.reshape(b, 2 * e, j, 3)
    kp = extra["extra_kp2d"].repeat(1, 2, 1, 1)
    conf = extra["extra_conf"].repeat(1, 2, 1)
    K = extra["extra_K"].repeat(1, 2, 1, 1)
    dist = extra["extra_dist"].repeat(1, 2, 1)
    mask = (_finite_points(points) & _finite_points(kp) & (torch.nan_to_num(conf) > 0)
            & (torch.nan_to_num(points[..., 2], nan=0.0) > min_depth))
    return _view_reprojection(points, kp, conf, K, dist, mask, delta_px, units)


def _view_reprojection(poses: torch.Tensor, kp2d: torch.Tensor, conf: torch.Tensor, K: torch.Tensor,
                       dist: torch.Tensor | None, mask: torch.Tensor, delta_px: float, units: str) -> torch.Tensor:
    """Masked, confidence-weighted robust distance between poses (B, V, J, 3) projected per view and kp2d."""
    if units not in ("metres", "pixels"):
        raise ValueError(f"units must be 'metres' or 'pixels', got {units!r}")
    safe_poses = _zero_invalid(poses, mask, (0.0, 0.0, 1.0))
    safe_kp = _zero_invalid(kp2d, mask, (0.0, 0.0))
    pixels = project_points(safe_poses, K.to(poses.dtype), None if dist is None else dist.to(poses.dtype))
    error = robust_distance(pixels - safe_kp, delta_px)
    if units == "metres":
        focal = 0.5 * (K[..., 0, 0] + K[..., 1, 1]).to(poses.dtype)  # (B, V)
        error = error * safe_poses[..., 2].detach().clamp_min(1e-3) / focal[..., None]
    return _masked_mean(error, mask, torch.nan_to_num(conf))


def bone_lengths(poses: torch.Tensor, bones: torch.Tensor) -> torch.Tensor:
    """Lengths (..., B) of bones given as (B, 2) joint index pairs; gradient-safe at zero length."""
    vec = poses[..., bones[:, 1], :] - poses[..., bones[:, 0], :]
    return torch.sqrt((vec * vec).sum(dim=-1) + _EPS)


def symmetry_loss(poses: torch.Tensor, *, delta: float = 1e-3, layout: Layout = H36M17) -> torch.Tensor:
    """Robust left/right bone-length difference over the layout's symmetric bones, poses (..., J, 3) in metres."""
    valid = _finite_points(poses)
    safe = _zero_invalid(poses, valid)
    sym = torch.as_tensor(layout.symmetric_bones, device=poses.device)  # (S, 2 bones, 2 joints)
    left = bone_lengths(safe, sym[:, 0])
    right = bone_lengths(safe, sym[:, 1])
    mask = valid[..., sym.reshape(sym.shape[0], -1)].all(dim=-1)
    return _masked_mean(robust_distance((left - right)[..., None], delta), mask)


def transform_consistency_loss(refined0: torch.Tensor, refined1: torch.Tensor, R10: torch.Tensor, t10: torch.Tensor,
                               *, delta: float = 1e-3) -> torch.Tensor:
    """Mean robust 3D distance between X1 and T10*X0 and between X0 and T01*X1 (metres)."""
    mask = _finite_points(refined0) & _finite_points(refined1)
    x0, x1 = _zero_invalid(refined0, mask), _zero_invalid(refined1, mask)
    R10, t10 = R10.to(x0.dtype), t10.to(x0.dtype)
    R01, t01 = invert_transform(R10, t10)
    in_cam1 = robust_distance(x1 - apply_transform(R10, t10, x0), delta)
    in_cam0 = robust_distance(x0 - apply_transform(R01, t01, x1), delta)
    return 0.5 * (_masked_mean(in_cam1, mask) + _masked_mean(in_cam0, mask))


def bone_direction_loss(refined0: torch.Tensor, refined1: torch.Tensor, R10: torch.Tensor, *,
                        layout: Layout = H36M17) -> torch.Tensor:
    """Mean (1 - cos) between each bone (body-graph edge) of X1 and the same bone of X0 rotated into camera 1. The
    reverse direction (X0 against T01*X1) gives the identical value because rotations preserve angles."""
    mask_joints = _finite_points(refined0) & _finite_points(refined1)
    x0, x1 = _zero_invalid(refined0, mask_joints), _zero_invalid(refined1, mask_joints)
    edges = torch.as_tensor(layout.edge_array, device=x0.device)
    parents, children = edges[:, 0], edges[:, 1]
    bones0 = rotate(R10.to(x0.dtype), x0[..., children, :] - x0[..., parents, :])
    bones1 = x1[..., children, :] - x1[..., parents, :]
    norms = torch.sqrt((bones0 * bones0).sum(-1) * (bones1 * bones1).sum(-1) + _EPS)
    cosine = (bones0 * bones1).sum(-1) / norms
    mask = mask_joints[..., children] & mask_joints[..., parents]
    return _masked_mean(1.0 - cosine, mask)


def mpjpe_loss(pred: torch.Tensor, gt: torch.Tensor, *, root: int | tuple[int, ...] = 0) -> torch.Tensor:
    """Supervised root-relative mean per-joint distance (metres), NaN-aware; differentiable in `pred`."""
    pred_rel, gt_rel, mask = _root_relative(pred, gt, root)
    diff = _zero_invalid(pred_rel - gt_rel, mask)
    return _masked_mean(torch.sqrt((diff * diff).sum(-1) + _EPS), mask)


def weak_supervision_loss(refined0: torch.Tensor, refined1: torch.Tensor, kp2d: torch.Tensor, conf: torch.Tensor,
                          K: torch.Tensor, dist: torch.Tensor | None, R10: torch.Tensor, t10: torch.Tensor,
                          weights: WeakLossWeights = WeakLossWeights(), *, gt3d: torch.Tensor | None = None,
                          reprojection_units: str = "metres", layout: Layout = H36M17,
                          extra: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total weighted loss and a dict of the detached unweighted terms (reprojection, symmetry, transform,
    bone_direction, supervised when gt3d (B, J, 3) in camera 0 is given and weights.supervised > 0, and
    extra_reprojection when `extra` holds further cameras' 2D (`extra_view_reprojection_loss`) and
    weights.extra_reprojection > 0)."""
    terms = {
        "reprojection": reprojection_loss(refined0, refined1, kp2d, conf, K, dist, units=reprojection_units),
        "symmetry": symmetry_loss(torch.stack([refined0, refined1], dim=1), layout=layout),
        "transform": transform_consistency_loss(refined0, refined1, R10, t10),
        "bone_direction": bone_direction_loss(refined0, refined1, R10, layout=layout),
    }
    if gt3d is not None and weights.supervised > 0:
        gt1 = apply_transform(R10.to(gt3d.dtype), t10.to(gt3d.dtype), gt3d)
        terms["supervised"] = 0.5 * (mpjpe_loss(refined0, gt3d, root=layout.root)
                                     + mpjpe_loss(refined1, gt1, root=layout.root))
    if extra is not None and weights.extra_reprojection > 0 and extra["extra_kp2d"].shape[1]:
        terms["extra_reprojection"] = extra_view_reprojection_loss(refined0, refined1, R10, t10, extra,
                                                                   units=reprojection_units)
    factors = weights.to_dict()
    total = sum(factors[name] * value for name, value in terms.items())
    return total, {name: value.detach() for name, value in terms.items()}


# ---------------------------------------------------------------------------------------------------------------
# Metrics (numpy or torch in, same kind out); units are those of the input.
def _root_relative(pred: torch.Tensor, gt: torch.Tensor,
                   root: int | tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Root-relative pred/gt and the mask of joints valid in both with a valid root in both. `root` is a joint
    index or the joints whose mean is the root (coco17: both hips)."""
    index = [root] if isinstance(root, int) else list(root)
    mask = _finite_points(pred) & _finite_points(gt)
    mask = mask & mask[..., index].all(dim=-1, keepdim=True)
    pred_root = pred[..., index, :].mean(dim=-2, keepdim=True)
    gt_root = gt[..., index, :].mean(dim=-2, keepdim=True)
    return pred - pred_root, gt - gt_root, mask


def _as_tensor(array) -> tuple[torch.Tensor, bool]:
    if isinstance(array, torch.Tensor):
        return array, False
    return torch.as_tensor(np.asarray(array, dtype=np.float64)), True


def _reduce(errors: torch.Tensor, mask: torch.Tensor, reduction: str, to_numpy: bool):
    """'mean' -> float over valid joints (NaN if none); 'none' -> per-joint errors with NaN where invalid."""
    if reduction == "mean":
        return float(errors[mask].mean()) if bool(mask.any()) else float("nan")
    if reduction != "none":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    out = torch.where(mask, errors, torch.full_like(errors, float("nan")))
    return out.numpy() if to_numpy else out


def mpjpe(pred, gt, *, root_relative: bool = True, root: int | tuple[int, ...] = 0, reduction: str = "mean"):
    """Mean per-joint position error (protocol #1 when root-relative); poses (..., J, 3), NaN joints ignored."""
    pred_t, to_numpy = _as_tensor(pred)
    gt_t, _ = _as_tensor(gt)
    if root_relative:
        pred_t, gt_t, mask = _root_relative(pred_t, gt_t, root)
    else:
        mask = _finite_points(pred_t) & _finite_points(gt_t)
    errors = torch.linalg.vector_norm(torch.nan_to_num(pred_t - gt_t), dim=-1)
    return _reduce(errors, mask, reduction, to_numpy)


def procrustes_align(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Similarity-align pred (..., J, 3) onto gt using only joints in mask (..., J); NaN for < 3 joints."""
    w = mask.to(pred.dtype)[..., None]
    count = w.sum(dim=-2, keepdim=True).clamp_min(1.0)
    p, g = torch.nan_to_num(pred) * w, torch.nan_to_num(gt) * w
    mu_p, mu_g = p.sum(-2, keepdim=True) / count, g.sum(-2, keepdim=True) / count
    pc, gc = (p - mu_p) * w, (g - mu_g) * w
    cov = gc.transpose(-1, -2) @ pc  # sum_i g_i p_i^T
    u, s, vt = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(u @ vt))
    d = torch.ones_like(s)
    d[..., -1] = torch.where(sign == 0, torch.ones_like(sign), sign)
    rotation = u @ torch.diag_embed(d) @ vt
    scale = (s * d).sum(-1) / (pc * pc).sum(dim=(-1, -2)).clamp_min(_EPS)
    aligned = scale[..., None, None] * ((torch.nan_to_num(pred) - mu_p) @ rotation.transpose(-1, -2)) + mu_g
    enough = mask.sum(-1) >= 3
    return torch.where(enough[..., None, None], aligned, torch.full_like(aligned, float("nan")))


def p_mpjpe(pred, gt, *, reduction: str = "mean"):
    """MPJPE after a per-pose similarity (Procrustes) alignment (protocol #2); NaN joints ignored."""
    pred_t, to_numpy = _as_tensor(pred)
    gt_t, _ = _as_tensor(gt)
    mask = _finite_points(pred_t) & _finite_points(gt_t)
    aligned = procrustes_align(pred_t.to(torch.float64), gt_t.to(torch.float64), mask)
    mask = mask & _finite_points(aligned)
    errors = torch.linalg.vector_norm(torch.nan_to_num(aligned - gt_t.to(torch.float64)), dim=-1)
    return _reduce(errors.to(pred_t.dtype), mask, reduction, to_numpy)
