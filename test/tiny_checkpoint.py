"""Tiny real CV-UGCN checkpoints for tests of the refinement path (seconds to build, no training)."""

from __future__ import annotations

from pathlib import Path


def make_tiny_checkpoint(path: Path, zero_residual: bool, seed: int = 0) -> Path:
    """Save a narrow CV-UGCN; `zero_residual` zeroes its output layer so refined = coarse (up to view fusion)."""
    import torch

    from cvpose_ros.model.checkpoint import save_checkpoint
    from cvpose_ros.model.features import FeatureSpec
    from cvpose_ros.model.pipeline import create_model

    torch.manual_seed(seed)
    spec = FeatureSpec()
    model = create_model(spec, view_channels=8, joint_channels=16, part_channels=16, decoder_channels=8).eval()
    if zero_residual:
        with torch.no_grad():
            model.joint_linear.weight.zero_()
            model.joint_linear.bias.zero_()
    return save_checkpoint(path, model, spec)
