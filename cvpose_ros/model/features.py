"""Input normalisation shared by training and inference.

The network sees each view's coarse pose centred on that view's root (coarse pelvis or mid-hip, or the mean of the valid
joints when the pelvis is missing), in metres, clamped to a sane box (a degenerate DLT joint can be metres off), plus
optional per-joint channels: the DLT reprojection residual (lets the network trust exact input, SPEC section 5) and
a validity flag (missing joints enter as zeros). The same `FeatureSpec` travels in every checkpoint so training and
inference can never disagree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from cvpose_ros.model.dataclass_dict import strict_from_dict


@dataclass(frozen=True)
class FeatureSpec:
    """How coarse poses become network input (stored in checkpoints)."""

    use_reprojection_error: bool = True  # add log1p(err / reprojection_scale_px) as a channel
    use_validity: bool = True  # add a 0/1 channel marking triangulated joints
    clamp_m: float = 2.0  # root-relative coordinates are clamped to [-clamp_m, clamp_m] metres
    reprojection_scale_px: float = 5.0  # pixel scale of the residual channel
    reprojection_max: float = 5.0  # cap of the residual channel (log1p scale)

    @property
    def in_channels(self) -> int:
        """Number of per-joint input channels the network must accept."""
        return 3 + int(self.use_reprojection_error) + int(self.use_validity)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FeatureSpec:
        """Build from a checkpoint dict; unknown keys raise ValueError (a newer format this code cannot honour)."""
        return strict_from_dict(cls, values, "feature options")


def root_positions(coarse: torch.Tensor, valid: torch.Tensor, root_joints: tuple[int, ...] = (0,)) -> torch.Tensor:
    """Per-view root (..., 3): the mean of the layout's root joints (pelvis; mid-hip for coco17) when all are
    valid, else the mean of the valid joints, else zero.

    coarse (..., J, 3) may hold NaN at invalid joints; valid (..., J) bool.
    """
    finite = torch.where(valid[..., None], coarse, torch.zeros_like(coarse))
    count = valid.sum(dim=-1, keepdim=True).clamp_min(1).to(coarse.dtype)
    mean_valid = finite.sum(dim=-2) / count
    index = list(root_joints)
    root = finite[..., index, :].mean(dim=-2)
    return torch.where(valid[..., index].all(dim=-1, keepdim=True), root, mean_valid)


def centre_and_clamp(coarse: torch.Tensor, valid: torch.Tensor, spec: FeatureSpec,
                     root_joints: tuple[int, ...] = (0,)) -> tuple[torch.Tensor, torch.Tensor]:
    """Root-relative clamped coordinates (..., J, 3), zero at invalid joints, and the roots (..., 3)."""
    root = root_positions(coarse, valid, root_joints)
    centred = (coarse - root[..., None, :]).clamp(-spec.clamp_m, spec.clamp_m)
    centred = torch.where(valid[..., None], centred, torch.zeros_like(centred))
    return centred, root


def build_features(centred: torch.Tensor, reproj_err: torch.Tensor | None, valid: torch.Tensor,
                   spec: FeatureSpec) -> torch.Tensor:
    """Network input (..., J, spec.in_channels) from centred coordinates, residual (..., J) pixels and validity."""
    channels = [centred]
    if spec.use_reprojection_error:
        if reproj_err is None:
            raise ValueError("this feature spec needs the per-joint reprojection error, got None")
        err = torch.nan_to_num(reproj_err.to(centred.dtype), nan=0.0, posinf=0.0).clamp_min(0.0)
        err = torch.log1p(err / spec.reprojection_scale_px).clamp_max(spec.reprojection_max)
        channels.append(torch.where(valid, err, torch.zeros_like(err))[..., None])
    if spec.use_validity:
        channels.append(valid.to(centred.dtype)[..., None])
    return torch.cat(channels, dim=-1)
