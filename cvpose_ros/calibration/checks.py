"""Sanity checks of a calibrated rig, each a warning a user can act on: units, cameras looking away from each
other (the usual sign of an inverted pose), focal lengths and image sizes that cannot be right."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cvpose_ros.calibration.types import CalibratedCamera

# Camera spacing outside this range (metres) suggests wrong units.
SPACING_RANGE_M = (0.02, 50.0)
# Horizontal field of view outside this range (degrees) suggests a wrong focal length or image size.
FOV_RANGE_DEG = (5.0, 170.0)
# A rig of 3+ cameras whose optical axes meet farther away than this (metres) is not looking at one scene.
SCENE_DISTANCE_MAX_M = 20.0
# Distance in front of the first camera where a parallel rig's scene is assumed (metres).
DEFAULT_SCENE_DEPTH_M = 3.0


def scene_centre(cameras: Sequence[CalibratedCamera]) -> np.ndarray:
    """The point closest to every camera's optical axis (least squares); 3 m in front of the first camera when the
    axes are near-parallel (a stereo pair) and no such point is well defined."""
    centres = np.stack([c.center for c in cameras])
    axes = np.stack([c.cam_from_world.R[2] for c in cameras])  # optical axis (z) in world coordinates
    projector = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
    A, b = projector.sum(axis=0), np.einsum("vij,vj->i", projector, centres)
    if len(cameras) < 2 or np.linalg.cond(A) > 1e3:
        return centres[0] + DEFAULT_SCENE_DEPTH_M * axes[0]
    return np.linalg.solve(A, b)


def check_rig(cameras: Sequence[CalibratedCamera]) -> list[str]:
    """Warnings about the rig; empty when it looks plausible."""
    warnings = []
    for cam in cameras:
        width, height, fx = cam.model.width, cam.model.height, cam.model.K[0, 0]
        if width <= 0 or height <= 0:
            warnings.append(f"{cam.name}: image size unknown (0 x 0); camera_info needs it")
            continue
        fov = float(np.degrees(2 * np.arctan(width / (2 * fx))))
        if not FOV_RANGE_DEG[0] <= fov <= FOV_RANGE_DEG[1]:
            warnings.append(f"{cam.name}: horizontal field of view {fov:.1f} deg from fx = {fx:.1f} px and width "
                            f"{width} px is implausible; check the focal length's units and the image size")
    if len(cameras) < 2:
        return warnings
    centres = np.stack([c.center for c in cameras])
    spacing = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(len(cameras), 1)]
    if spacing.max() > SPACING_RANGE_M[1]:
        warnings.append(f"cameras are up to {spacing.max():.1f} m apart: translations look like millimetres or "
                        "centimetres; pass --units mm (or cm)")
    elif spacing.max() < SPACING_RANGE_M[0]:
        warnings.append(f"cameras are at most {spacing.max() * 1000:.1f} mm apart: translations look like "
                        "kilometres or the poses are missing")
    centre = scene_centre(cameras)
    distance = float(np.median(np.linalg.norm(centres - centre, axis=-1)))
    if len(cameras) >= 3 and distance > SCENE_DISTANCE_MAX_M:
        return warnings + [f"the cameras' optical axes meet {distance:.0f} m away, not in a shared scene; if the "
                           "poses are inverted (world-from-camera given as camera-from-world), say so in the file "
                           "or pass --invert"]
    for cam in cameras:
        depth = float(cam.cam_from_world.apply(centre)[2])
        pixel = cam.project(centre)
        inside = np.isfinite(pixel).all() and 0 <= pixel[0] <= cam.model.width and 0 <= pixel[1] <= cam.model.height
        if depth <= 0 or not inside:
            warnings.append(f"{cam.name}: the scene the other cameras look at ({np.round(centre, 2).tolist()} m) is "
                            f"{'behind it' if depth <= 0 else 'outside its image'}; if the poses are inverted "
                            "(world-from-camera given as camera-from-world), say so in the file or pass --invert")
    return warnings
