"""Differentiable camera geometry in torch: rigid transforms and the OpenCV lens model.

Used by the weak-supervision losses (reprojection) and the refinement pipeline (view fusion). Everything is batched
over leading dimensions and works in any float dtype; shapes follow the package convention `(..., J, 3)`.
"""

from __future__ import annotations

import torch

# Distortion coefficients in OpenCV order: k1 k2 p1 p2 k3 k4 k5 k6 (plumb_bob uses the first five).
NUM_DIST_COEFFS = 8
MIN_DEPTH = 1e-6  # points at or behind the camera plane are projected as if at this depth (keeps gradients finite)


def apply_transform(rotation: torch.Tensor, translation: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """x_B = R @ x_A + t for points (..., J, 3) with R (..., 3, 3) and t (..., 3) sharing the leading dims."""
    return points @ rotation.transpose(-1, -2) + translation[..., None, :]


def rotate(rotation: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """R @ v for vectors (..., J, 3): directions and bones ignore the translation."""
    return vectors @ rotation.transpose(-1, -2)


def invert_transform(rotation: torch.Tensor, translation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of x_B = R x_A + t: returns (R^T, -R^T t)."""
    rotation_inv = rotation.transpose(-1, -2)
    return rotation_inv, -(rotation_inv @ translation[..., None])[..., 0]


def pad_distortion(dist: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """Zero-pad distortion coefficients (..., D<=8) to the 8 OpenCV rational coefficients; None means no distortion."""
    if dist is None:
        return like.new_zeros(like.shape[:-2] + (NUM_DIST_COEFFS,))
    if dist.shape[-1] > NUM_DIST_COEFFS:
        raise ValueError(f"expected at most {NUM_DIST_COEFFS} distortion coefficients (k1 k2 p1 p2 k3 k4 k5 k6), "
                         f"got {dist.shape[-1]}")
    if dist.shape[-1] < NUM_DIST_COEFFS:
        dist = torch.nn.functional.pad(dist, (0, NUM_DIST_COEFFS - dist.shape[-1]))
    return dist


def distort_normalized(uv: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Apply the OpenCV rational/plumb_bob lens model to normalised coordinates uv (..., J, 2); dist (..., 8)."""
    k1, k2, p1, p2, k3, k4, k5, k6 = (dist[..., i, None] for i in range(NUM_DIST_COEFFS))
    u, v = uv[..., 0], uv[..., 1]
    r2 = u * u + v * v
    r4 = r2 * r2
    r6 = r4 * r2
    radial = (1 + k1 * r2 + k2 * r4 + k3 * r6) / (1 + k4 * r2 + k5 * r4 + k6 * r6)
    uv_prod = u * v
    u_d = u * radial + 2 * p1 * uv_prod + p2 * (r2 + 2 * u * u)
    v_d = v * radial + p1 * (r2 + 2 * v * v) + 2 * p2 * uv_prod
    return torch.stack([u_d, v_d], dim=-1)


def project_points(points: torch.Tensor, K: torch.Tensor, dist: torch.Tensor | None = None) -> torch.Tensor:
    """Project camera-frame points (..., J, 3) to raw (distorted) pixels (..., J, 2).

    K is (..., 3, 3) and dist (..., D) with D <= 8 coefficients in OpenCV order, leading dims matching the points'
    leading dims. Depth is clamped to MIN_DEPTH so a point behind the camera gives a large but finite pixel.
    """
    depth = points[..., 2].clamp_min(MIN_DEPTH)
    uv = points[..., :2] / depth[..., None]
    uv = distort_normalized(uv, pad_distortion(dist, K))
    focal = torch.stack([K[..., 0, 0], K[..., 1, 1]], dim=-1)[..., None, :]
    center = torch.stack([K[..., 0, 2], K[..., 1, 2]], dim=-1)[..., None, :]
    skew = K[..., 0, 1][..., None]
    pixels = uv * focal + center
    return torch.stack([pixels[..., 0] + skew * uv[..., 1], pixels[..., 1]], dim=-1)
