"""CV-UGCN: the cross-view U-shaped graph convolution network (SPEC section 1, Hua et al. 2021).

Input (B, 2, 17, C) per-view joint features, output (B, 2, 17, 3) residuals in metres. The joint graph, parts and
left/right pairs come from the configured skeleton layout (h36m17 or coco17). Structure:

    per view  S-GCN(C->128), S-GCN(128->128)        17 joints, 4 kernels, separate weights per view
    fuse      34-node graph (node v*17+j)
    joints    M-GCN(128->256)                       5 kernels -> skip s1
    parts     max-pool to 10 nodes, M-GCN(256->512), M-GCN(512->512) -> skip s2
    body      max-pool to 2 nodes, M-GCN(512->512)  (only the self and view kernels have edges here)
    decoder   upsample to parts, concat s2, M-GCN(1024->512) on the part graph (the paper's third 512 unit),
              per-node linear 512->256, upsample to joints, concat s1, per-node linear 512->3

A kernel without any edge (e.g. "physical" on the one-node body graph) gets no weight matrix: such weights would
never receive a gradient. The part graph gets its own second-order kernel (limb to limb through the torso), so every
part-level unit has 5 live kernels. With the default widths the network has about 5.5 M parameters (5.2 M +6%).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from cvpose_ros.body import skeleton
from cvpose_ros.model.dataclass_dict import strict_from_dict


@dataclass(frozen=True)
class CVUGCNConfig:
    """Hyper-parameters of CV-UGCN (stored in checkpoints to rebuild the network)."""

    in_channels: int = 5  # 3 coordinates + extra per-joint features (see FeatureSpec.in_channels)
    view_channels: int = 128  # S-GCN width
    joint_channels: int = 256  # width of skip s1
    part_channels: int = 512  # width of skip s2 and the body level
    decoder_channels: int = 256  # width after the part-level decoder linear
    dropout: float = 0.0
    layout: str = "h36m17"  # joint definition of input and output (cvpose_ros.body.skeleton.LAYOUTS)

    def __post_init__(self) -> None:
        skeleton.get_layout(self.layout)  # ValueError naming the known layouts

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> CVUGCNConfig:
        """Build from a checkpoint dict; unknown keys raise ValueError."""
        return strict_from_dict(cls, values, "model hyper-parameters")


def part_graph_kernels() -> np.ndarray:
    """(4, 5, 5) part kernels: self, limb-torso, limb-limb through the torso, arm-arm/leg-leg symmetric."""
    n = len(skeleton.PARTS)
    second = skeleton.second_order_edges(n, skeleton.PART_PHYSICAL_EDGES)
    return skeleton.single_view_kernels(skeleton.PART_PHYSICAL_EDGES, n, second, skeleton.PART_SYMMETRIC_EDGES)


class GraphConv(nn.Module):
    """K-kernel graph convolution Z = sum_k A_k H W_k + b on features (B, N, C); kernels without edges are dropped."""

    def __init__(self, in_channels: int, out_channels: int, kernels: np.ndarray):
        super().__init__()
        live = np.abs(kernels).sum(axis=(1, 2)) > 0
        self.register_buffer("kernels", torch.as_tensor(kernels[live], dtype=torch.float32))
        num_kernels = int(live.sum())
        self.weight = nn.Parameter(torch.empty(num_kernels * in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        bound = 1.0 / np.sqrt(num_kernels * in_channels)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, nodes, _ = features.shape
        aggregated = torch.einsum("kij,bjc->bikc", self.kernels, features).reshape(batch, nodes, -1)
        return aggregated @ self.weight + self.bias


class GCNUnit(nn.Module):
    """Graph conv -> BatchNorm -> ReLU (-> dropout), plus an identity skip when input and output sizes match."""

    def __init__(self, in_channels: int, out_channels: int, kernels: np.ndarray, dropout: float = 0.0):
        super().__init__()
        self.conv = GraphConv(in_channels, out_channels, kernels)
        self.norm = nn.BatchNorm1d(out_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.residual = in_channels == out_channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.conv(features)
        out = self.norm(out.reshape(-1, out.shape[-1])).reshape(out.shape)
        out = self.dropout(torch.relu(out))
        return out + features if self.residual else out


def _pool_indices(num_views: int, layout: skeleton.Layout) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather indices (V*P, L) of each part's joints in the fused joint graph (padded by repetition: max is
    unchanged) and the part node (V*J,) that each joint node upsamples from."""
    longest = max(len(p) for p in layout.parts)
    padded = [p + [p[-1]] * (longest - len(p)) for p in map(list, layout.parts)]
    num_parts, num_joints = len(layout.parts), layout.num_joints
    gather = [[v * num_joints + j for j in part] for v in range(num_views) for part in padded]
    part_of_joint = np.zeros(num_joints, dtype=np.int64)
    for p, part in enumerate(layout.parts):
        part_of_joint[list(part)] = p
    upsample = np.concatenate([v * num_parts + part_of_joint for v in range(num_views)])
    return torch.as_tensor(gather, dtype=torch.long), torch.as_tensor(upsample, dtype=torch.long)


class CVUGCN(nn.Module):
    """Cross-view U-shaped GCN: (B, 2, 17, in_channels) features -> (B, 2, 17, 3) residuals (metres)."""

    num_views = 2

    def __init__(self, config: CVUGCNConfig | None = None):
        super().__init__()
        self.config = cfg = config or CVUGCNConfig()
        self.layout = skeleton.get_layout(cfg.layout)
        joint_k = skeleton.joint_kernels(self.layout)
        joint_mv = skeleton.multi_view_kernels(joint_k, self.num_views)
        part_mv = skeleton.multi_view_kernels(part_graph_kernels(), self.num_views)
        body_mv = skeleton.multi_view_kernels(skeleton.body_kernels(), self.num_views)
        c1, c2, c3, c4, p = (cfg.view_channels, cfg.joint_channels, cfg.part_channels, cfg.decoder_channels,
                             cfg.dropout)
        self.view_branches = nn.ModuleList(
            nn.Sequential(GCNUnit(cfg.in_channels, c1, joint_k, p), GCNUnit(c1, c1, joint_k, p))
            for _ in range(self.num_views)
        )
        self.joint_unit = GCNUnit(c1, c2, joint_mv, p)
        self.part_units = nn.Sequential(GCNUnit(c2, c3, part_mv, p), GCNUnit(c3, c3, part_mv, p))
        self.body_unit = GCNUnit(c3, c3, body_mv, p)
        self.part_decoder = GCNUnit(2 * c3, c3, part_mv, p)
        self.part_linear = nn.Linear(c3, c4)
        self.joint_linear = nn.Linear(c4 + c2, 3)
        with torch.no_grad():  # start close to the identity refinement: small residuals
            self.joint_linear.weight.mul_(0.1)
            self.joint_linear.bias.zero_()
        gather, upsample = _pool_indices(self.num_views, self.layout)
        self.register_buffer("part_gather", gather, persistent=False)
        self.register_buffer("joint_from_part", upsample, persistent=False)
        self.register_buffer("part_from_body", torch.arange(self.num_views).repeat_interleave(len(self.layout.parts)),
                             persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, views, joints, channels = features.shape
        if (views, joints, channels) != (self.num_views, self.layout.num_joints, self.config.in_channels):
            raise ValueError(f"CV-UGCN expects input (B, {self.num_views}, {self.layout.num_joints}, "
                             f"{self.config.in_channels}), got {tuple(features.shape)}")
        per_view = [branch(features[:, v]) for v, branch in enumerate(self.view_branches)]
        fused = torch.cat(per_view, dim=1)  # (B, 34, c1)
        skip_joints = self.joint_unit(fused)  # (B, 34, c2)
        parts = skip_joints[:, self.part_gather].amax(dim=2)  # (B, 10, c2)
        skip_parts = self.part_units(parts)  # (B, 10, c3)
        body = skip_parts.reshape(batch, views, -1, skip_parts.shape[-1]).amax(dim=2)  # (B, 2, c3)
        body = self.body_unit(body)
        decoded = self.part_decoder(torch.cat([body[:, self.part_from_body], skip_parts], dim=-1))
        decoded = torch.relu(self.part_linear(decoded))  # (B, 10, c4)
        joint_features = torch.cat([decoded[:, self.joint_from_part], skip_joints], dim=-1)
        return self.joint_linear(joint_features).reshape(batch, views, joints, 3)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
