"""Rotations as calibration files write them: matrices (often rounded), quaternions, roll-pitch-yaw, Rodrigues.

Every function returns a proper rotation matrix (orthonormal, det +1). A matrix that is a rotation up to rounding
is orthonormalised (nearest rotation by SVD) and the deviation is reported so that readers can warn; a matrix that
is not one within `ROTATION_TOLERANCE`, or that mirrors (det < 0), is refused with the numbers and the tolerance.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.transform import Rotation

# Largest |M M^T - I| entry repaired by orthonormalisation (5-decimal rounding gives ~1e-5); larger is refused.
ROTATION_TOLERANCE = 1e-3
# Deviations above this are worth a warning (rounding to fewer than ~6 decimals).
WARN_DEVIATION = 1e-6


def rotation_deviation(matrix: ArrayLike) -> float:
    """Largest entry of |M M^T - I|: 0 for an exact rotation."""
    m = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
    return float(np.abs(m @ m.T - np.eye(3)).max())


def proper_rotation(matrix: ArrayLike, tolerance: float = ROTATION_TOLERANCE) -> tuple[np.ndarray, float]:
    """(nearest rotation, deviation) of a 3x3 matrix that is a rotation up to `tolerance`; ValueError otherwise."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.size != 9 or not np.all(np.isfinite(m)):
        raise ValueError(f"rotation must be 9 finite numbers (3x3), got {np.asarray(matrix).tolist()}")
    m = m.reshape(3, 3)
    deviation, det = rotation_deviation(m), float(np.linalg.det(m))
    if det <= 0:
        raise ValueError(f"not a rotation matrix: det = {det:.4g}, it mirrors (left-handed axes, e.g. y up instead of "
                         "down); optical frames are x right, y down, z forward")
    if deviation > tolerance:
        raise ValueError(f"not a rotation matrix: |R R^T - I| = {deviation:.3g} > tolerance {tolerance:g}")
    u, _, vt = np.linalg.svd(m)
    return u @ vt, deviation


def rotation_from_quaternion(xyzw: ArrayLike) -> np.ndarray:
    """Quaternion in ROS order (x, y, z, w), normalised here."""
    q = np.asarray(xyzw, dtype=np.float64).ravel()
    if q.shape != (4,) or not np.all(np.isfinite(q)) or np.linalg.norm(q) < 1e-9:
        raise ValueError(f"quaternion must be 4 finite numbers (x, y, z, w), not all zero; got {q.tolist()}")
    return Rotation.from_quat(q / np.linalg.norm(q)).as_matrix()


def rotation_from_rpy(rpy: ArrayLike) -> np.ndarray:
    """Roll, pitch, yaw in radians about fixed x, y, z (REP 103 / URDF convention: R = Rz(yaw) Ry(pitch) Rx(roll))."""
    a = np.asarray(rpy, dtype=np.float64).ravel()
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise ValueError(f"roll-pitch-yaw must be 3 finite numbers (radians), got {a.tolist()}")
    return Rotation.from_euler("xyz", a).as_matrix()


def rotation_from_rvec(rvec: ArrayLike) -> np.ndarray:
    """Rodrigues rotation vector (axis x angle in radians), as OpenCV's calibrateCamera and Pose2Sim write it."""
    v = np.asarray(rvec, dtype=np.float64).ravel()
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ValueError(f"rotation vector must be 3 finite numbers, got {v.tolist()}")
    return Rotation.from_rotvec(v).as_matrix()


def rotation_to(matrix: np.ndarray, form: str) -> list[float]:
    """A rotation matrix as `form`: "quaternion" (x y z w, w >= 0), "rpy" (radians) or "matrix" (row-major)."""
    r = Rotation.from_matrix(matrix)
    if form == "quaternion":
        return r.as_quat(canonical=True).tolist()
    if form == "rpy":
        return r.as_euler("xyz").tolist()
    if form == "matrix":
        return np.asarray(matrix, dtype=np.float64).ravel().tolist()
    raise ValueError(f"unknown rotation form {form!r}; expected quaternion, rpy or matrix")
