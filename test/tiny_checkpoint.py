"""Tiny real CV-UGCN checkpoints for tests of the refinement path (seconds to build, no training)."""

from __future__ import annotations

from pathlib import Path


def make_tiny_checkpoint(path: Path, zero_residual: bool, seed: int = 0, layout: str = "h36m17",
                         residual_std: float = 0.0) -> Path:
    """Save a narrow CV-UGCN for `layout`; `zero_residual` zeroes its output layer so refined = coarse (up to view
    fusion); `residual_std` > 0 draws the output layer with that std so refinement visibly moves joints."""
    import torch

    from cvpose_ros.model.checkpoint import save_checkpoint
    from cvpose_ros.model.features import FeatureSpec
    from cvpose_ros.model.pipeline import create_model

    torch.manual_seed(seed)
    spec = FeatureSpec()
    model = create_model(spec, view_channels=8, joint_channels=16, part_channels=16, decoder_channels=8,
                         layout=layout).eval()
    with torch.no_grad():
        if zero_residual:
            model.joint_linear.weight.zero_()
            model.joint_linear.bias.zero_()
        elif residual_std > 0:
            model.joint_linear.weight.normal_(std=residual_std)
    return save_checkpoint(path, model, spec)
