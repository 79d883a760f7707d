"""Differentiable coarse -> refined step shared by training, evaluation and the ROS node.

refined_v = root_v + clamp(coarse_v - root_v) + residual_v: for every sane joint that is exactly coarse + residual;
a degenerate DLT joint metres away is first pulled into the clamp box so the network can correct it. The refined
root moves too (the pelvis gets its own residual); root-relative metrics subtract the refined root. Invalid joints
are NaN in the output. Geometry runs in the input dtype (float64 keeps exact input exact), the network in float32.
"""

from __future__ import annotations

import torch
from torch import nn

from cvpose_ros.geometry.torch_geometry import apply_transform, invert_transform
from cvpose_ros.model.cvugcn import CVUGCN, CVUGCNConfig
from cvpose_ros.model.features import FeatureSpec, build_features, centre_and_clamp


def create_model(spec: FeatureSpec | None = None, **hyper_parameters) -> CVUGCN:
    """CV-UGCN whose input width matches `spec` (default FeatureSpec); other CVUGCNConfig fields as keywords."""
    spec = spec or FeatureSpec()
    return CVUGCN(CVUGCNConfig(in_channels=spec.in_channels, **hyper_parameters))


def _per_view(values: torch.Tensor, batch_shape: torch.Size, name: str) -> torch.Tensor:
    """Broadcast a per-joint tensor given as (B, J) or (B, 2, J) to (B, 2, J)."""
    if values.dim() == len(batch_shape) - 1:
        values = values[:, None]
    if values.shape[0] != batch_shape[0] or values.shape[-1] != batch_shape[-1] or values.dim() != 3:
        raise ValueError(f"{name} must be (B, J) or (B, 2, J) matching the poses {tuple(batch_shape)}, "
                         f"got {tuple(values.shape)}")
    return values.expand(batch_shape)


def fuse_views(refined0: torch.Tensor, refined1: torch.Tensor, R10: torch.Tensor,
               t10: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average refined view 0 with refined view 1 mapped into camera 0, and map the mean back to camera 1."""
    R01, t01 = invert_transform(R10, t10)
    fused0 = 0.5 * (refined0 + apply_transform(R01, t01, refined1))
    return fused0, apply_transform(R10, t10, fused0)


def refine_views(model: nn.Module, coarse0: torch.Tensor, coarse1: torch.Tensor, reproj_err: torch.Tensor | None,
                 valid: torch.Tensor, *, spec: FeatureSpec | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each view refined on its own: (refined0, refined1, both) with `both` (B, J) True where a joint is valid in
    both views (where `fuse_where_valid` may average them). Arguments as in `refine_tensors`."""
    spec = spec or FeatureSpec()
    config = getattr(getattr(model, "module", model), "config", None)
    if config is not None and config.in_channels != spec.in_channels:
        raise ValueError(f"model expects {config.in_channels} input channels but the feature spec gives "
                         f"{spec.in_channels}; pass the spec the model was trained with")
    if coarse0.shape != coarse1.shape or coarse0.dim() != 3 or coarse0.shape[-1] != 3:
        raise ValueError(f"coarse poses must both be (B, J, 3), got {tuple(coarse0.shape)} and {tuple(coarse1.shape)}")
    coarse = torch.stack([coarse0, coarse1], dim=1)  # (B, 2, J, 3)
    view_valid = _per_view(valid.to(torch.bool), coarse.shape[:-1], "valid")
    view_valid = view_valid & torch.isfinite(coarse).all(dim=-1)
    err = None if reproj_err is None else _per_view(reproj_err, coarse.shape[:-1], "reproj_err")
    layout = getattr(getattr(model, "module", model), "layout", None)
    root_joints = layout.root if layout is not None else (0,)
    centred, root = centre_and_clamp(coarse, view_valid, spec, root_joints)
    model_dtype = next(model.parameters()).dtype
    features = build_features(centred.to(model_dtype), err, view_valid, spec)
    residual = model(features).to(coarse.dtype)
    refined = root[..., None, :] + centred + residual
    refined = torch.where(view_valid[..., None], refined, torch.full_like(refined, float("nan")))
    return refined[:, 0], refined[:, 1], view_valid[:, 0] & view_valid[:, 1]


def fuse_where_valid(refined0: torch.Tensor, refined1: torch.Tensor, both: torch.Tensor, R10: torch.Tensor,
                     t10: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`fuse_views` at the joints valid in both views (`both` (B, J)); a joint valid in only one view keeps that
    view's estimate."""
    fused0, fused1 = fuse_views(refined0, refined1, R10.to(refined0.dtype), t10.to(refined0.dtype))
    return torch.where(both[..., None], fused0, refined0), torch.where(both[..., None], fused1, refined1)


def refine_tensors(model: nn.Module, coarse0: torch.Tensor, coarse1: torch.Tensor, reproj_err: torch.Tensor | None,
                   valid: torch.Tensor, R10: torch.Tensor, t10: torch.Tensor, *, spec: FeatureSpec | None = None,
                   fuse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine a batch of coarse two-view poses; differentiable with respect to the model.

    coarse0/coarse1 (B, J, 3): DLT poses in camera 0 / camera 1 (metres, NaN allowed at invalid joints);
    reproj_err (B, J) or (B, 2, J) pixels (None only when the spec does not use it); valid (B, J) or (B, 2, J) bool;
    R10 (B, 3, 3), t10 (B, 3): cam1_from_cam0. `spec` must be the FeatureSpec the model was trained with.
    `fuse=True` averages the two refined views in one frame (use at inference, never in weak training: it makes the
    transform-consistency loss trivially zero). Returns (refined0, refined1), each (B, J, 3) in the input dtype.
    """
    refined0, refined1, both = refine_views(model, coarse0, coarse1, reproj_err, valid, spec=spec)
    if fuse:
        return fuse_where_valid(refined0, refined1, both, R10, t10)
    return refined0, refined1
