"""Camera models (intrinsics + lens distortion as ROS ``sensor_msgs/CameraInfo`` carries them) and rigid transforms.

All geometry is float64, metres, optical frames (z forward, x right, y down). Projection and undistortion go
through OpenCV so that results match what the rest of the ROS/OpenCV world computes for the same calibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.transform import Rotation

# Number of distortion coefficients each model accepts (OpenCV order).
# "h36m" is the exact Human3.6M lens model expressed in OpenCV's 12-coefficient (thin prism) form; it has no ROS
# CameraInfo name, see `CameraModel.from_h36m`.
DISTORTION_COEFFICIENT_COUNTS: dict[str, tuple[int, ...]] = {
    "none": (0,),
    "plumb_bob": (4, 5),
    "rational_polynomial": (8,),
    "equidistant": (4,),
    "h36m": (12,),
}

# Iterative undistortion: stop when the re-distorted point is within 1e-10 px of the input (or after 100 steps).
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)
# Largest round-trip error (pixels) accepted from undistortion; inside the image it converges to about 1e-10 px.
UNDISTORT_TOLERANCE_PX = 0.05
_ROTATION_TOLERANCE = 1e-6


class CameraError(ValueError):
    """Invalid or unusable camera calibration (uncalibrated K, unknown model, wrong coefficient count)."""


@dataclass(eq=False)
class CameraModel:
    """Pinhole camera with OpenCV/ROS lens distortion; maps points in its optical frame to raw (distorted) pixels."""

    K: np.ndarray
    dist: np.ndarray
    distortion_model: str
    width: int
    height: int

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64)
        if K.size != 9:
            raise CameraError(f"camera matrix K must have 9 entries (3x3), got shape {K.shape}")
        K = K.reshape(3, 3)
        if not np.all(np.isfinite(K)):
            raise CameraError(f"camera matrix K has non-finite entries: {K.tolist()}")
        if not np.any(K):
            raise CameraError("camera matrix K is all zeros: the camera is uncalibrated (camera_info.k unset)")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CameraError(f"focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
        if K[1, 0] != 0 or K[2, 0] != 0 or K[2, 1] != 0 or K[2, 2] != 1:
            raise CameraError(f"camera matrix K must be upper triangular with K[2,2] = 1, got {K.tolist()}")
        model = (self.distortion_model or "none").strip().lower()
        dist = np.asarray(self.dist if self.dist is not None else [], dtype=np.float64).ravel()
        if model not in DISTORTION_COEFFICIENT_COUNTS:
            raise CameraError(f"unknown distortion model {self.distortion_model!r}; "
                              f"expected one of {sorted(DISTORTION_COEFFICIENT_COUNTS)}")
        if dist.size and not np.all(np.isfinite(dist)):
            raise CameraError(f"distortion coefficients must be finite, got {dist.tolist()}")
        longest = max(DISTORTION_COEFFICIENT_COUNTS[model])
        if dist.size > longest and not np.any(dist[longest:]):
            dist = dist[:longest]  # some drivers pad D with zeros (e.g. 8 values for plumb_bob)
        if dist.size == 0 or not np.any(dist):
            model, dist = "none", np.zeros(0)  # empty or all-zero D: an ideal pinhole
        elif dist.size not in DISTORTION_COEFFICIENT_COUNTS[model]:
            raise CameraError(f"distortion model {model!r} needs {DISTORTION_COEFFICIENT_COUNTS[model]} "
                              f"coefficients, got {dist.size}")
        if model != "none" and K[0, 1] != 0:
            raise CameraError(f"skew K[0,1] = {K[0, 1]} is only supported without distortion (OpenCV ignores it)")
        if model == "plumb_bob" and dist.size == 4:
            dist = np.append(dist, 0.0)
        if int(self.width) < 0 or int(self.height) < 0:
            raise CameraError(f"image size must be non-negative, got {self.width}x{self.height}")
        self.K, self.dist, self.distortion_model = K, dist, model
        self.width, self.height = int(self.width), int(self.height)

    # ----------------------------------------------------------------------------------------------- constructors
    @classmethod
    def from_camera_info(cls, k: ArrayLike, d: ArrayLike, distortion_model: str, width: int,
                         height: int) -> CameraModel:
        """Build from ``sensor_msgs/CameraInfo`` fields (k: 9 row-major values, d, distortion_model, width, height).

        Raises CameraError for an uncalibrated (all-zero) or invalid K, an unknown model or a wrong coefficient
        count. An empty or all-zero ``d`` gives the undistorted pinhole model.
        """
        return cls(K=np.asarray(k, dtype=np.float64), dist=np.asarray(d, dtype=np.float64),
                   distortion_model=distortion_model, width=width, height=height)

    @classmethod
    def from_h36m(cls, f: ArrayLike, c: ArrayLike, k: ArrayLike, p: ArrayLike, width: int = 1000,
                  height: int = 1000, exact: bool = False) -> CameraModel:
        """Build from Human3.6M calibration: f (fx, fy), c (cx, cy), radial k (k1, k2, k3), p as stored (see below).

        The Human3.6M model (SPEC section 2) with p1 = p[1], p2 = p[0] adds x*(p1 x + p2 y) + p1 r^2 to x (and the
        mirror to y). That is not Brown's tangential term: exactly it equals OpenCV's 12-coefficient model with
        p1_cv = p[0]/2, p2_cv = p[1]/2 and thin-prism s1 = p[1]/2, s3 = p[0]/2 (``exact=True``, model "h36m").
        ROS CameraInfo and the 8-coefficient training arrays cannot carry thin-prism terms, so by default the
        tangential pair is fitted by least squares over the image (model "plumb_bob"; on the real calibrations it
        deviates from the exact model by 0.07 px on average and at most 0.44 px in a corner, see docs/geometry.md).
        """
        f, c, k, p = (np.asarray(v, dtype=np.float64).ravel() for v in (f, c, k, p))
        if f.size != 2 or c.size != 2 or k.size != 3 or p.size != 2:
            raise CameraError(f"Human3.6M calibration needs f(2), c(2), k(3), p(2); got {f.size}, {c.size}, "
                              f"{k.size}, {p.size}")
        K = np.array([[f[0], 0.0, c[0]], [0.0, f[1], c[1]], [0.0, 0.0, 1.0]])
        exact_dist = np.array([k[0], k[1], p[0] / 2, p[1] / 2, k[2], 0, 0, 0, p[1] / 2, 0, p[0] / 2, 0])
        if exact:
            return cls(K=K, dist=exact_dist, distortion_model="h36m", width=width, height=height)
        tangential = _fit_brown_tangential(K, exact_dist, width, height)
        return cls(K=K, dist=np.array([k[0], k[1], tangential[0], tangential[1], k[2]]),
                   distortion_model="plumb_bob", width=width, height=height)

    # ------------------------------------------------------------------------------------------------ properties
    @property
    def has_distortion(self) -> bool:
        return self.distortion_model != "none"

    def rational_coefficients(self) -> np.ndarray:
        """The 8 coefficients k1 k2 p1 p2 k3 k4 k5 k6 (OpenCV rational order; zeros past plumb_bob's five).

        This is the layout of the training arrays. Raises CameraError for models it cannot express.
        """
        if self.distortion_model in ("equidistant", "h36m"):
            raise CameraError(f"distortion model {self.distortion_model!r} has no 8-coefficient rational form")
        out = np.zeros(8)
        out[: self.dist.size] = self.dist
        return out

    # ------------------------------------------------------------------------------------------------ projection
    def project(self, points_cam: ArrayLike) -> np.ndarray:
        """Project points (..., 3) in this camera's optical frame to raw pixels (..., 2).

        Points that are non-finite or not in front of the camera (z <= 0) give NaN.
        """
        points = np.asarray(points_cam, dtype=np.float64)
        if points.shape[-1:] != (3,):
            raise ValueError(f"points must have shape (..., 3), got {points.shape}")
        flat = points.reshape(-1, 3)
        out = np.full((flat.shape[0], 2), np.nan)
        with np.errstate(invalid="ignore"):
            ok = np.all(np.isfinite(flat), axis=1) & (flat[:, 2] > 0)
        if ok.any():
            out[ok] = self._project_valid(flat[ok])
        return out.reshape(points.shape[:-1] + (2,))

    def undistort_points(self, pixels: ArrayLike, verify: bool = True) -> np.ndarray:
        """Raw pixels (..., 2) -> normalised undistorted coordinates (x/z, y/z) (..., 2); non-finite input -> NaN.

        With ``verify`` the result is projected back and pixels that do not round-trip within
        ``UNDISTORT_TOLERANCE_PX`` become NaN: outside the image a polynomial lens model may have no inverse and
        OpenCV's iteration then returns points hundreds of pixels off.
        """
        pix = np.asarray(pixels, dtype=np.float64)
        if pix.shape[-1:] != (2,):
            raise ValueError(f"pixels must have shape (..., 2), got {pix.shape}")
        flat = pix.reshape(-1, 2)
        out = np.full(flat.shape, np.nan)
        ok = np.all(np.isfinite(flat), axis=1)
        if ok.any():
            rays = self._undistort_valid(flat[ok])
            if verify and self.has_distortion:
                back = self._project_valid(np.concatenate([rays, np.ones((rays.shape[0], 1))], axis=1))
                with np.errstate(invalid="ignore"):
                    converged = np.linalg.norm(back - flat[ok], axis=1) <= UNDISTORT_TOLERANCE_PX
                rays[~converged] = np.nan
            out[ok] = rays
        return out.reshape(pix.shape)

    def _project_valid(self, points: np.ndarray) -> np.ndarray:
        if self.distortion_model == "none":
            normalised = points[:, :2] / points[:, 2:3]
            return normalised @ self.K[:2, :2].T + self.K[:2, 2]
        zero = np.zeros(3)
        if self.distortion_model == "equidistant":
            pixels, _ = cv2.fisheye.projectPoints(points.reshape(-1, 1, 3), zero, zero, self.K, self.dist)
        else:
            pixels, _ = cv2.projectPoints(points.reshape(-1, 1, 3), zero, zero, self.K, self.dist)
        return pixels.reshape(-1, 2)

    def _undistort_valid(self, pixels: np.ndarray) -> np.ndarray:
        if self.distortion_model == "none":
            y = (pixels[:, 1] - self.K[1, 2]) / self.K[1, 1]
            x = (pixels[:, 0] - self.K[0, 2] - self.K[0, 1] * y) / self.K[0, 0]
            return np.stack([x, y], axis=1)
        src = np.ascontiguousarray(pixels.reshape(-1, 1, 2))
        if self.distortion_model == "equidistant":
            out = cv2.fisheye.undistortPoints(src, self.K, self.dist, criteria=_UNDISTORT_CRITERIA)
        else:
            out = cv2.undistortPoints(src, self.K, self.dist, criteria=_UNDISTORT_CRITERIA)
        return out.reshape(-1, 2)


# Calibration plausibility: focal lengths between a 170-degree lens and a 0.6-degree telephoto (in units of the
# longer image side), undistortion that round-trips within this many pixels over the whole image, and a lens that
# changes the distance of an image point from the centre by at most this factor (a strong fisheye's corner is about
# 4x further out once undistorted; D = [1e6, 0, 0, 0, 0] would pull the whole image into a 1-degree cone).
FOCAL_RANGE = (0.04, 100.0)
ROUND_TRIP_TOLERANCE_PX = 0.1
MAX_DISTORTION_FACTOR = 5.0


def calibration_problem(model: CameraModel, grid: int = 21) -> str | None:
    """Why `model` cannot be a real camera's calibration, or None when it is plausible.

    Checks the focal lengths against the image size (e.g. K with fx = 1e-300 passes `CameraModel`'s own checks but
    maps every ray to the principal point), the principal point (within half an image of the image), and the lens
    model on a `grid` x `grid` pixel grid spanning the whole image: undistorting and re-distorting each pixel must
    come back within ROUND_TRIP_TOLERANCE_PX and undistortion must keep the pixels' order along rows and columns
    (e.g. D = [1e6, 0, 0, 0, 0] has no inverse away from the centre).
    """
    w, h = model.width, model.height
    if w <= 0 or h <= 0:
        return f"image size {w}x{h} (width and height must be set)"
    K = model.K
    size = max(w, h)
    lo, hi = FOCAL_RANGE[0] * size, FOCAL_RANGE[1] * size
    for name, f in (("fx", K[0, 0]), ("fy", K[1, 1])):
        if not lo <= f <= hi:
            return (f"focal length {name} = {f:.6g} px is implausible for a {w}x{h} image (expected "
                    f"{lo:.0f}..{hi:.0f} px)")
    if not 0.25 <= K[0, 0] / K[1, 1] <= 4.0:
        return f"focal lengths fx = {K[0, 0]:.6g} and fy = {K[1, 1]:.6g} px differ by more than a factor 4"
    if not (-0.5 * w <= K[0, 2] <= 1.5 * w and -0.5 * h <= K[1, 2] <= 1.5 * h):
        return f"principal point ({K[0, 2]:.6g}, {K[1, 2]:.6g}) px is far outside the {w}x{h} image"
    if not model.has_distortion:
        return None
    xs, ys = np.linspace(0.0, w - 1.0, grid), np.linspace(0.0, h - 1.0, grid)
    pixels = np.stack(np.meshgrid(xs, ys), axis=-1)                                  # (grid, grid, 2), [row, col]
    rays = model.undistort_points(pixels, verify=False)
    with np.errstate(invalid="ignore", over="ignore"):
        back = model.project(np.concatenate([rays, np.ones(rays.shape[:-1] + (1,))], axis=-1))
        error = np.linalg.norm(back - pixels, axis=-1)
        ordered = (np.diff(rays[..., 0], axis=1) > 0).all() and (np.diff(rays[..., 1], axis=0) > 0).all()
    error = np.where(np.isfinite(error), error, np.inf)
    if model.distortion_model == "equidistant":  # beyond 80 degrees off axis no pinhole ray exists (a fisheye's
        error[np.linalg.norm(_pinhole_rays(model, pixels), axis=-1) > 1.4] = 0.0  # corners can be past 90)
    worst = np.unravel_index(np.argmax(error), error.shape)
    coefficients = ", ".join(f"{c:.6g}" for c in model.dist)
    if error[worst] > ROUND_TRIP_TOLERANCE_PX:
        x, y = pixels[worst]
        return (f"distortion {model.distortion_model} D = [{coefficients}] does not round-trip over the image: pixel "
                f"({x:.0f}, {y:.0f}) undistorts to a point that re-distorts {error[worst]:.3g} px away "
                f"(tolerance {ROUND_TRIP_TOLERANCE_PX} px)")
    if not ordered:
        return (f"distortion {model.distortion_model} D = [{coefficients}] folds the image: undistortion does not "
                "keep the pixels' order")
    pinhole = _pinhole_rays(model, pixels)
    radius = np.linalg.norm(pinhole, axis=-1)
    off_centre = radius > 0.05
    factor = np.linalg.norm(rays, axis=-1)[off_centre] / radius[off_centre]
    upper = np.inf if model.distortion_model == "equidistant" else MAX_DISTORTION_FACTOR
    if factor.size and not (factor.min() >= 1.0 / MAX_DISTORTION_FACTOR and factor.max() <= upper):
        return (f"distortion {model.distortion_model} D = [{coefficients}] scales image points' distance from the "
                f"centre by {factor.min():.3g}..{factor.max():.3g} (allowed 1/{MAX_DISTORTION_FACTOR:g}.."
                f"{upper:g}): not a real lens")
    return None


def _pinhole_rays(model: CameraModel, pixels: np.ndarray) -> np.ndarray:
    """Normalised coordinates of `pixels` (..., 2) ignoring the lens distortion."""
    y = (pixels[..., 1] - model.K[1, 2]) / model.K[1, 1]
    x = (pixels[..., 0] - model.K[0, 2] - model.K[0, 1] * y) / model.K[0, 0]
    return np.stack([x, y], axis=-1)


def _fit_brown_tangential(K: np.ndarray, exact_dist: np.ndarray, width: int, height: int) -> np.ndarray:
    """Least-squares Brown (p1, p2) reproducing the exact Human3.6M tangential offsets over the image area."""
    span_x = np.linspace(-K[0, 2], width - K[0, 2], 41) / K[0, 0]
    span_y = np.linspace(-K[1, 2], height - K[1, 2], 41) / K[1, 1]
    x, y = (a.ravel() for a in np.meshgrid(span_x, span_y))
    r2 = x * x + y * y
    p1, p2, s1, s3 = exact_dist[2], exact_dist[3], exact_dist[8], exact_dist[10]
    target_x = 2 * p1 * x * y + p2 * (r2 + 2 * x * x) + s1 * r2
    target_y = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y + s3 * r2
    design = np.concatenate([np.stack([2 * x * y, r2 + 2 * x * x], 1), np.stack([r2 + 2 * y * y, 2 * x * y], 1)])
    solution, *_ = np.linalg.lstsq(design, np.concatenate([target_x, target_y]), rcond=None)
    return solution


@dataclass(eq=False)
class RigidTransform:
    """Rigid transform that maps points from frame A into frame B: x_B = R @ x_A + t (name it ``b_from_a``)."""

    R: np.ndarray
    t: np.ndarray
    TOLERANCE: ClassVar[float] = _ROTATION_TOLERANCE

    def __post_init__(self) -> None:
        R = np.asarray(self.R, dtype=np.float64)
        t = np.asarray(self.t, dtype=np.float64).reshape(-1)
        if R.shape != (3, 3) or t.shape != (3,):
            raise ValueError(f"RigidTransform needs R (3, 3) and t (3,), got {R.shape} and {t.shape}")
        if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t))):
            raise ValueError("RigidTransform R and t must be finite")
        if np.abs(R @ R.T - np.eye(3)).max() > self.TOLERANCE or np.linalg.det(R) <= 0:
            raise ValueError(f"R is not a proper rotation matrix (orthonormal, det +1): {R.tolist()}")
        self.R, self.t = R, t

    @classmethod
    def identity(cls) -> RigidTransform:
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_quaternion(cls, xyzw: ArrayLike, t: ArrayLike) -> RigidTransform:
        """From a quaternion in ROS order (x, y, z, w; normalised here) and a translation."""
        q = np.asarray(xyzw, dtype=np.float64).ravel()
        if q.shape != (4,) or not np.all(np.isfinite(q)) or np.linalg.norm(q) < 1e-12:
            raise ValueError(f"quaternion must be 4 finite values (x, y, z, w) with non-zero norm, got {q.tolist()}")
        return cls(Rotation.from_quat(q / np.linalg.norm(q)).as_matrix(), t)

    @classmethod
    def from_matrix(cls, matrix: ArrayLike) -> RigidTransform:
        """From a 4x4 homogeneous matrix whose last row is (0, 0, 0, 1)."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4) or not np.allclose(m[3], [0, 0, 0, 1]):
            raise ValueError(f"expected a 4x4 homogeneous matrix with last row (0, 0, 0, 1), got {m.tolist()}")
        return cls(m[:3, :3], m[:3, 3])

    @classmethod
    def look_at(cls, eye: ArrayLike, target: ArrayLike, up: ArrayLike = (0.0, 0.0, 1.0)) -> RigidTransform:
        """``cam_from_world`` of an optical-frame camera at ``eye`` looking at ``target`` (z forward, y down).

        ``up`` is the world's up direction; the image's y axis points along -up as seen from the camera.
        """
        eye, target, up = (np.asarray(v, dtype=np.float64).ravel() for v in (eye, target, up))
        forward = target - eye
        if np.linalg.norm(forward) < 1e-12:
            raise ValueError("look_at: eye and target coincide")
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, up)
        if np.linalg.norm(right) < 1e-9:
            raise ValueError("look_at: viewing direction is parallel to up")
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        R = np.stack([right, down, forward])  # rows: camera axes in world coordinates
        return cls(R, -R @ eye)

    def quaternion(self) -> np.ndarray:
        """Rotation as a unit quaternion (x, y, z, w) with w >= 0."""
        return Rotation.from_matrix(self.R).as_quat(canonical=True)

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.R, self.t
        return m

    def apply(self, points: ArrayLike) -> np.ndarray:
        """Map points (..., 3) from frame A to frame B; NaN stays NaN."""
        p = np.asarray(points, dtype=np.float64)
        if p.shape[-1:] != (3,):
            raise ValueError(f"points must have shape (..., 3), got {p.shape}")
        return p @ self.R.T + self.t

    def inverse(self) -> RigidTransform:
        """The transform from B back to A."""
        return RigidTransform(self.R.T, -self.R.T @ self.t)

    def compose(self, other: RigidTransform) -> RigidTransform:
        """``self ∘ other``: apply ``other`` first (c_from_b.compose(b_from_a) = c_from_a)."""
        return RigidTransform(self.R @ other.R, self.R @ other.t + self.t)


def projection_matrix(cam_from_ref: RigidTransform) -> np.ndarray:
    """(3, 4) matrix [R | t] projecting reference-frame points to normalised coordinates of the camera."""
    return np.concatenate([cam_from_ref.R, cam_from_ref.t[:, None]], axis=1)
