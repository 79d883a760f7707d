"""Camera models (validation, projection, undistortion round trips, Human3.6M lens) and rigid transforms."""

from __future__ import annotations

import numpy as np
import pytest
import transforms3d
from scipy.spatial.transform import Rotation

from cvpose_ros.geometry.camera import CameraError, CameraModel, RigidTransform, projection_matrix

pytestmark = pytest.mark.filterwarnings("error")

K_VGA = [600.0, 0.0, 322.5, 0.0, 604.0, 238.0, 0.0, 0.0, 1.0]

# Realistic lenses: a webcam-like plumb_bob, an 8-coefficient wide lens, a fisheye (equidistant).
LENSES = {
    "plumb_bob": ([-0.28, 0.085, 1.2e-3, -8.0e-4, -0.012], K_VGA),
    "rational_polynomial": ([0.62, -0.05, 6.0e-4, -3.0e-4, 0.002, 0.98, 0.11, 0.006], K_VGA),
    "equidistant": ([0.035, -0.012, 0.004, -0.0009], [290.0, 0.0, 318.0, 0.0, 291.0, 241.0, 0.0, 0.0, 1.0]),
}

# Human3.6M-like calibration (magnitudes of the real ones; p in stored order, i.e. p1 = p[1], p2 = p[0]).
H36M_F, H36M_C = (1148.2, 1146.9), (509.7, 506.3)
H36M_K, H36M_P = (-0.2012, 0.2395, 0.0042), (-0.0026, 0.0013)


def h36m_spec_projection(normalised: np.ndarray) -> np.ndarray:
    """The Human3.6M lens formula exactly as written in SPEC section 2."""
    u, v = normalised[..., 0], normalised[..., 1]
    r2 = u * u + v * v
    k1, k2, k3 = H36M_K
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    p1, p2 = H36M_P[1], H36M_P[0]
    tangential = p1 * u + p2 * v
    distorted = normalised * (radial + tangential)[..., None] + np.stack([p1 * r2, p2 * r2], axis=-1)
    return np.asarray(H36M_F) * distorted + np.asarray(H36M_C)


def image_grid(camera: CameraModel, n: int = 25) -> np.ndarray:
    """Pixels on an n x n grid covering the whole image, corners included."""
    xs, ys = np.meshgrid(np.linspace(0, camera.width, n), np.linspace(0, camera.height, n))
    return np.stack([xs, ys], axis=-1)


def all_cameras() -> dict[str, CameraModel]:
    cams = {name: CameraModel.from_camera_info(k, d, name, 640, 480) for name, (d, k) in LENSES.items()}
    cams["h36m_exact"] = CameraModel.from_h36m(H36M_F, H36M_C, H36M_K, H36M_P, 1000, 1000, exact=True)
    cams["h36m_plumb_bob"] = CameraModel.from_h36m(H36M_F, H36M_C, H36M_K, H36M_P, 1000, 1000)
    cams["none"] = CameraModel.from_camera_info(K_VGA, [], "", 640, 480)
    return cams


@pytest.mark.parametrize("name", list(all_cameras()))
def test_pixel_round_trip_is_exact(name: str) -> None:
    camera = all_cameras()[name]
    pixels = image_grid(camera)  # (25, 25, 2): batch shape is preserved
    normalised = camera.undistort_points(pixels)
    assert normalised.shape == pixels.shape
    rays = np.concatenate([normalised, np.ones(normalised.shape[:-1] + (1,))], axis=-1)
    back = camera.project(rays * 3.7)  # any depth along the ray
    assert np.abs(back - pixels).max() < 1e-3


@pytest.mark.parametrize("name", list(all_cameras()))
def test_point_round_trip_recovers_rays(name: str) -> None:
    camera = all_cameras()[name]
    rays = camera.undistort_points(image_grid(camera, 9)).reshape(-1, 2)
    rng = np.random.default_rng(1)
    depth = rng.uniform(0.5, 8.0, (rays.shape[0], 1))
    points = np.concatenate([rays, np.ones_like(depth)], axis=1) * depth
    recovered = camera.undistort_points(camera.project(points))
    focal = camera.K[0, 0]
    assert np.abs(recovered - rays).max() * focal < 1e-3
    assert camera.has_distortion == (name != "none")


def test_distortion_actually_moves_pixels() -> None:
    for name, camera in all_cameras().items():
        if name == "none":
            continue
        ideal = CameraModel(camera.K, [], "none", camera.width, camera.height)
        corner = np.array([[camera.width * 0.95, camera.height * 0.95]])
        assert np.linalg.norm(camera.undistort_points(corner) - ideal.undistort_points(corner)) * camera.K[0, 0] > 1


def test_h36m_exact_model_matches_spec_formula() -> None:
    camera = CameraModel.from_h36m(H36M_F, H36M_C, H36M_K, H36M_P, 1000, 1000, exact=True)
    normalised = camera.undistort_points(image_grid(camera))
    rays = np.concatenate([normalised, np.ones(normalised.shape[:-1] + (1,))], axis=-1)
    np.testing.assert_allclose(camera.project(rays), h36m_spec_projection(normalised), atol=1e-9)


def test_h36m_plumb_bob_fit_is_close_and_beats_naive_mappings() -> None:
    exact = CameraModel.from_h36m(H36M_F, H36M_C, H36M_K, H36M_P, 1000, 1000, exact=True)
    fitted = CameraModel.from_h36m(H36M_F, H36M_C, H36M_K, H36M_P, 1000, 1000)
    assert fitted.distortion_model == "plumb_bob"
    np.testing.assert_allclose(fitted.rational_coefficients()[[0, 1, 4]], H36M_K)
    normalised = exact.undistort_points(image_grid(exact))
    rays = np.concatenate([normalised, np.ones(normalised.shape[:-1] + (1,))], axis=-1)
    truth = h36m_spec_projection(normalised)

    def worst(model: CameraModel) -> float:
        return float(np.linalg.norm(model.project(rays) - truth, axis=-1).max())

    k1, k2, k3 = H36M_K
    as_stored = CameraModel(exact.K, [k1, k2, H36M_P[0], H36M_P[1], k3], "plumb_bob", 1000, 1000)
    swapped = CameraModel(exact.K, [k1, k2, H36M_P[1], H36M_P[0], k3], "plumb_bob", 1000, 1000)
    assert worst(fitted) < 0.5
    assert worst(fitted) < worst(as_stored) < worst(swapped)


def test_pinhole_projection_and_invalid_points() -> None:
    camera = CameraModel.from_camera_info(K_VGA, [0, 0, 0, 0, 0], "plumb_bob", 640, 480)
    assert camera.distortion_model == "none"  # all-zero D is an ideal pinhole
    points = np.array([[0.3, -0.2, 2.0], [0.0, 0.0, -1.0], [np.nan, 0.0, 1.0], [1.0, 1.0, 0.0]])
    pixels = camera.project(points)
    K = np.reshape(K_VGA, (3, 3))
    expected = K @ points[0] / points[0, 2]
    np.testing.assert_allclose(pixels[0], expected[:2])
    assert np.isnan(pixels[1:]).all()
    skewed = CameraModel.from_camera_info([600.0, 3.0, 320.0, 0.0, 590.0, 240.0, 0, 0, 1], [], "none", 640, 480)
    np.testing.assert_allclose(skewed.undistort_points(skewed.project(points[:1])), [points[0, :2] / points[0, 2]])
    distorted = all_cameras()["plumb_bob"]
    assert np.isnan(distorted.project(points[1:])).all()
    assert np.isnan(distorted.undistort_points(np.array([[np.nan, 3.0], [np.inf, 1.0]]))).all()
    assert distorted.project(np.zeros((0, 3))).shape == (0, 2)
    assert distorted.undistort_points(np.zeros((2, 0, 2))).shape == (2, 0, 2)
    with pytest.raises(ValueError, match="shape"):
        distorted.project(np.zeros((4, 2)))


@pytest.mark.parametrize(
    ("k", "d", "model", "message"),
    [
        ([0.0] * 9, [], "plumb_bob", "uncalibrated"),
        ([-600, 0, 320, 0, 600, 240, 0, 0, 1], [], "plumb_bob", "positive"),
        ([600, 0, 320, 0, np.nan, 240, 0, 0, 1], [], "plumb_bob", "non-finite"),
        ([600, 0, 320, 0, 600, 240], [], "plumb_bob", "9 entries"),
        ([600, 0, 320, 0, 600, 240, 0, 0, 2], [], "plumb_bob", "upper triangular"),
        (K_VGA, [0.1, 0.01, 0.0], "plumb_bob", "coefficients"),
        (K_VGA, [0.1, 0.01, 0.0, 0.0, 0.0], "rational_polynomial", "coefficients"),
        (K_VGA, [0.1, 0.01, 0.0, 0.0, 0.2], "equidistant", "coefficients"),
        (K_VGA, [0.1, 0.01, 0.0, 0.0, 0.0], "kannala_brandt_9", "unknown distortion model"),
        (K_VGA, [0.1, np.inf, 0.0, 0.0, 0.0], "plumb_bob", "finite"),
        (K_VGA, [0.1, 0.0, 0.0, 0.0, 0.0, 0.3, 0.0, 0.0], "plumb_bob", "coefficients"),
        (K_VGA, [0.1, 0.0], "", "coefficients"),
        ([600, 2.0, 320, 0, 600, 240, 0, 0, 1], [0.1, 0.01, 0.0, 0.0, 0.0], "plumb_bob", "skew"),
    ],
)
def test_invalid_camera_info_raises(k: list, d: list, model: str, message: str) -> None:
    with pytest.raises(CameraError, match=message):
        CameraModel.from_camera_info(k, d, model, 640, 480)


def test_camera_error_is_value_error_and_rational_coefficients() -> None:
    assert issubclass(CameraError, ValueError)
    four = CameraModel.from_camera_info(K_VGA, [-0.1, 0.02, 0.001, 0.0], "plumb_bob", 640, 480)
    np.testing.assert_array_equal(four.rational_coefficients(), [-0.1, 0.02, 0.001, 0.0, 0, 0, 0, 0])
    with pytest.raises(CameraError, match="equidistant"):
        all_cameras()["equidistant"].rational_coefficients()
    padded = CameraModel.from_camera_info(K_VGA, [-0.1, 0.02, 0.001, 0.0, 0.003, 0, 0, 0], "plumb_bob", 640, 480)
    np.testing.assert_array_equal(padded.dist, [-0.1, 0.02, 0.001, 0.0, 0.003])


def random_rotations(n: int, seed: int) -> np.ndarray:
    return Rotation.random(n, random_state=seed).as_matrix()


def test_quaternion_round_trip_against_transforms3d_and_scipy() -> None:
    for R in random_rotations(50, seed=3):
        transform = RigidTransform(R, [0.1, -2.0, 3.0])
        x, y, z, w = transform.quaternion()
        assert w >= 0
        np.testing.assert_allclose(transforms3d.quaternions.quat2mat([w, x, y, z]), R, atol=1e-12)
        again = RigidTransform.from_quaternion([x, y, z, w], transform.t)
        np.testing.assert_allclose(again.R, R, atol=1e-12)
        scipy_xyzw = Rotation.from_matrix(R).as_quat()
        np.testing.assert_allclose(np.abs(scipy_xyzw @ transform.quaternion()), 1.0, atol=1e-12)
    # un-normalised input is normalised; zero quaternion is rejected
    np.testing.assert_allclose(RigidTransform.from_quaternion([0, 0, 0, 5.0], [0, 0, 0]).R, np.eye(3))
    with pytest.raises(ValueError, match="quaternion"):
        RigidTransform.from_quaternion([0, 0, 0, 0], [0, 0, 0])


def test_compose_inverse_matrix() -> None:
    rng = np.random.default_rng(7)
    Rs = random_rotations(3, seed=11)
    b_from_a, c_from_b = RigidTransform(Rs[0], rng.normal(size=3)), RigidTransform(Rs[1], rng.normal(size=3))
    points = rng.normal(size=(4, 17, 3))
    c_from_a = c_from_b.compose(b_from_a)
    np.testing.assert_allclose(c_from_a.apply(points), c_from_b.apply(b_from_a.apply(points)), atol=1e-12)
    np.testing.assert_allclose(b_from_a.inverse().apply(b_from_a.apply(points)), points, atol=1e-12)
    np.testing.assert_allclose(c_from_a.matrix(), c_from_b.matrix() @ b_from_a.matrix(), atol=1e-12)
    np.testing.assert_allclose(RigidTransform.from_matrix(c_from_a.matrix()).t, c_from_a.t)
    homogeneous = np.concatenate([points, np.ones(points.shape[:-1] + (1,))], axis=-1)
    np.testing.assert_allclose(homogeneous @ projection_matrix(b_from_a).T, b_from_a.apply(points), atol=1e-12)
    with pytest.raises(ValueError, match="rotation"):
        RigidTransform(np.diag([1.0, 1.0, -1.0]), np.zeros(3))
    with pytest.raises(ValueError, match="4x4"):
        RigidTransform.from_matrix(np.ones((4, 4)))


def test_look_at_builds_optical_frame() -> None:
    eye, target = np.array([4.0, -3.0, 2.5]), np.array([0.0, 0.5, 1.0])
    cam_from_world = RigidTransform.look_at(eye, target)
    ahead = cam_from_world.apply(target)
    np.testing.assert_allclose(ahead[:2], 0.0, atol=1e-12)
    assert ahead[2] == pytest.approx(np.linalg.norm(target - eye))
    np.testing.assert_allclose(cam_from_world.apply(eye), 0.0, atol=1e-12)
    above = cam_from_world.apply(target + [0, 0, 1.0])
    assert above[1] < 0  # world up is image up (negative y in the optical frame)
    right_of_view = cam_from_world.apply(target + np.cross(target - eye, [0, 0, 1.0]))
    assert right_of_view[0] > 0  # x points right
    with pytest.raises(ValueError, match="parallel"):
        RigidTransform.look_at([0, 0, 5], [0, 0, 0])


def test_undistortion_without_inverse_gives_nan_not_garbage() -> None:
    camera = CameraModel.from_camera_info(K_VGA, [-0.45, 0.2, 0.0, 0.0, -0.05], "plumb_bob", 640, 480)
    xs, ys = np.meshgrid(np.linspace(-300, 940, 40), np.linspace(-300, 780, 40))
    pixels = np.stack([xs, ys], axis=-1).reshape(-1, 2)
    rays = camera.undistort_points(pixels)
    unchecked = camera.undistort_points(pixels, verify=False)
    solved = np.isfinite(rays).all(axis=1)
    inside = (pixels >= 0).all(axis=1) & (pixels <= [640, 480]).all(axis=1)
    assert solved[inside].all() and not solved.all()
    back = camera.project(np.concatenate([rays[solved], np.ones((solved.sum(), 1))], axis=1))
    assert np.abs(back - pixels[solved]).max() < 1e-3
    unchecked_back = camera.project(np.concatenate([unchecked[~solved], np.ones(((~solved).sum(), 1))], axis=1))
    assert np.nanmax(np.linalg.norm(unchecked_back - pixels[~solved], axis=1)) > 10  # what the check removes


# ---------------------------------------------------------------------------------------------------------------
# Calibration plausibility (issue 11): absurd camera_info must not pass
def test_real_rigs_are_plausible_calibrations():
    from cvpose_ros.devtools.synthetic import make_rig
    from cvpose_ros.geometry.camera import calibration_problem

    for cam in make_rig("demo").cameras:
        assert calibration_problem(cam.model) is None
    for model, (d, k) in LENSES.items():
        assert calibration_problem(CameraModel.from_camera_info(k, d, model, 640, 480)) is None, model
    h36m = CameraModel.from_h36m(H36M_F, H36M_C, H36M_K, H36M_P)
    assert calibration_problem(h36m) is None
    assert calibration_problem(CameraModel.from_h36m(H36M_F, H36M_C, H36M_K, H36M_P, exact=True)) is None
    wide = CameraModel.from_camera_info([700, 0, 640, 0, 700, 360, 0, 0, 1], [-0.12, 0.03, 0.001, -0.001, 0.0],
                                        "plumb_bob", 1280, 720)
    fisheye = CameraModel.from_camera_info([285, 0, 424, 0, 285, 400, 0, 0, 1], [0.05, -0.01, 0.002, 0.0],
                                           "equidistant", 848, 800)  # T265-like: corners past 90 deg
    assert calibration_problem(wide) is None and calibration_problem(fisheye) is None


@pytest.mark.parametrize("k,d,fragment", [
    ([1e-300, 0, 640, 0, 1e-300, 360, 0, 0, 1], [], "focal length fx"),
    ([1e9, 0, 640, 0, 1e9, 360, 0, 0, 1], [], "focal length fx"),
    ([900, 0, 640, 0, 90, 360, 0, 0, 1], [], "factor 4"),
    ([900, 0, 9000, 0, 900, 360, 0, 0, 1], [], "principal point"),
    ([900, 0, 640, 0, 900, 360, 0, 0, 1], [1e6, 0, 0, 0, 0], "not a real lens"),
    ([900, 0, 640, 0, 900, 360, 0, 0, 1], [0, 0, 0, 0, 1e6], "not a real lens"),
    ([900, 0, 640, 0, 900, 360, 0, 0, 1], [-3.0, 0, 0, 0, 0], "round-trip"),
])
def test_absurd_calibrations_are_named(k, d, fragment):
    from cvpose_ros.geometry.camera import calibration_problem

    model = CameraModel.from_camera_info(k, d, "plumb_bob", 1280, 720)
    problem = calibration_problem(model)
    assert problem is not None and fragment in problem
