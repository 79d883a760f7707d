"""Real-video evaluation on a synthetic four-camera recording made here: lags, swaps, measures, cache and CLI."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cvpose_ros.body.skeleton import to_h36m
from cvpose_ros.calibration import CalibratedCamera
from cvpose_ros.detection import DetectorBackend
from cvpose_ros.detection.backend import Detections
from cvpose_ros.devtools.synthetic import generate_scene
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from training.evaluate import main as eval_main
from training.multiview import SWAP_GROUPS, detect_swaps, estimate_lags
from training.realvideo import LIMBS, evaluate_detections, joint_errors, match_cameras
from training.realvideo_io import load_or_detect

FRAMES, LAGS = 48, (0, 0, 2, 0)
BODY_SWAP = (1, range(10, 20))  # camera 1: whole body left/right exchanged in these frames
ARMS_SWAP = (3, range(30, 35))  # camera 3: arms exchanged
NOSE_OFFSET_PX = 8.0            # camera 0 puts the nose this far right of the truth, every frame
SHIFT_M = np.array([0.1, 0.0, 0.0])  # 100 mm


def coco17_person(h36m: np.ndarray) -> np.ndarray:
    """coco17 joints (T, 17, 3) of an h36m17 person: limbs copied, nose = joint 9, eyes and ears beside the head."""
    out = np.empty(h36m.shape[:-2] + (17, 3))
    out[..., 5:17, :] = h36m[..., [11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3], :]
    lateral = h36m[..., 4, :] - h36m[..., 1, :]
    lateral /= np.linalg.norm(lateral, axis=-1, keepdims=True)
    out[..., 0, :] = h36m[..., 9, :]
    for side, (eye, ear) in ((1.0, (1, 3)), (-1.0, (2, 4))):
        out[..., eye, :] = h36m[..., 10, :] + side * 0.03 * lateral
        out[..., ear, :] = h36m[..., 10, :] + side * 0.08 * lateral - np.array([0, 0, 0.03])
    return out


def make_cameras() -> list[CalibratedCamera]:
    model = CameraModel(K=np.array([[700.0, 0, 640], [0, 700.0, 512], [0, 0, 1]]),
                        dist=np.array([-0.05, 0.02, 0.0, 0.0, 0.0]), distortion_model="plumb_bob", width=1280,
                        height=1024)
    corners = [(-1.5, -1.5), (7.5, -1.5), (7.5, 6.5), (-1.5, 6.5)]
    return [CalibratedCamera(f"c{i}", model, RigidTransform.look_at((x, y, 2.5), (3.0, 2.5, 0.9)))
            for i, (x, y) in enumerate(corners)]


def make_detections(cameras: list[CalibratedCamera]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per camera (T, 17, 2) pixels and (T, 17) confidence with lags, swaps, a fixed offset and 0.7 px noise."""
    extra = max(LAGS)
    scene = generate_scene(1, (FRAMES + extra) / 30.0, 30.0, seed=4, actions=("walk",))
    person = coco17_person(scene.joints[:, 0])
    rng = np.random.default_rng(0)
    pixels, confidence = [], []
    for v, cam in enumerate(cameras):
        frames = np.arange(FRAMES) + extra - LAGS[v]  # a camera with lag L shows at frame t + L the moment t
        kp = cam.project(person[frames]) + rng.normal(0.0, 0.7, (FRAMES, 17, 2))
        assert np.all((kp > 0) & (kp < [1280, 1024])), "the synthetic person must stay in every image"
        if v == 0:
            kp[:, 0, 0] += NOSE_OFFSET_PX
        for view, span, group in ((*BODY_SWAP, "body"), (*ARMS_SWAP, "arms")):
            if v == view:
                left, right = SWAP_GROUPS[group]
                order = np.arange(17)
                order[list(left)], order[list(right)] = right, left
                kp[list(span)] = kp[list(span)][:, order]
        pixels.append(kp)
        confidence.append(np.full((FRAMES, 17), 0.9))
    return pixels, confidence


CAMERAS = make_cameras()
PIXELS, CONFIDENCE = make_detections(CAMERAS)


@pytest.fixture(scope="module")
def report() -> dict:
    return evaluate_detections(CAMERAS, PIXELS, CONFIDENCE, None, max_lag=4, progress=False)


def test_lags_are_found():
    lags, curves = estimate_lags(CAMERAS, PIXELS, CONFIDENCE, max_lag=4)
    assert lags == list(LAGS)
    assert min(curves["c2"], key=curves["c2"].get) == 2 and set(curves) == {"c1", "c2", "c3"}


def test_swaps_are_found_by_consensus():
    aligned = [p[: FRAMES - 2] for p in PIXELS]  # lags (0, 0, 2, 0): c2 from its frame 2 on
    aligned[2] = PIXELS[2][2:]
    swaps = detect_swaps(CAMERAS, np.stack(aligned), np.stack([c[: FRAMES - 2] for c in CONFIDENCE]))
    for view in range(4):
        expected = {BODY_SWAP[0]: set(BODY_SWAP[1]), ARMS_SWAP[0]: set(ARMS_SWAP[1])}.get(view, set())
        assert set(np.flatnonzero(swaps.swapped[view])) == expected
    assert set(swaps.kind[BODY_SWAP[0], list(BODY_SWAP[1])]) == {"body"}
    assert set(swaps.kind[ARMS_SWAP[0], list(ARMS_SWAP[1])]) == {"arms"}


def test_report_measures(report):
    assert report["lags"] == {"c0": 0, "c1": 0, "c2": 2, "c3": 0} and report["aligned_frames"] == FRAMES - 2
    assert report["swaps"]["c1"]["frames"] == list(BODY_SWAP[1]) and report["swaps"]["c1"]["kinds"] == {"body": 10}
    assert report["swaps"]["c0"]["share"] == 0.0
    assert len(report["pairs"]) == 6 and not report["refined_applied"]
    pair = report["pairs"]["c0-c2"]
    assert pair["agree"]["frames"] == FRAMES - 2 - 15 and pair["reference_swap"]["frames"] == 15
    assert report["pairs"]["c0-c1"]["pair_swap"]["frames"] == 10
    assert report["pairs"]["c1-c3"]["multiple"]["frames"] == 0
    blocks = report["all_pairs"]
    agree = blocks["agree"]
    tri = agree["triangulation"]
    assert agree["scored_frames"] == agree["frames"] == 6 * (FRAMES - 2 - 15)
    assert tri["mpjpe_mm"]["mean"] < 30 and tri["reprojection_px"] < 3  # 0.7 px noise, people ~200 px tall
    assert agree["refined"] == tri and agree["ratio"]["mpjpe_mm"] == 1.0  # no refiner: refined = triangulation
    # a swapped reference view spoils the reference; a swapped view of the pair is repaired by cross-view matching
    assert blocks["reference_swap"]["triangulation"]["mpjpe_mm"]["mean"] > 3 * tri["mpjpe_mm"]["mean"]
    assert blocks["pair_swap"]["triangulation"]["mpjpe_mm"]["mean"] < 2 * tri["mpjpe_mm"]["mean"]
    assert blocks["pair_swap"]["triangulation"]["reprojection_px"] < 2 * tri["reprojection_px"]
    # ... which the plain DLT of the detections (the "detector" baseline) is not: a whole-body swap in one view
    detector = blocks["pair_swap"]["detector"]
    assert detector["mpjpe_mm"]["mean"] > 3 * blocks["pair_swap"]["triangulation"]["mpjpe_mm"]["mean"]
    assert blocks["pair_swap"]["ratio_vs_detector"]["mpjpe_mm"] < 0.5
    assert agree["detector"]["mpjpe_mm"]["mean"] == pytest.approx(tri["mpjpe_mm"]["mean"], rel=0.05)
    assert set(report["per_joint_agree"]) >= {"l_wrist", "r_ankle"}


@pytest.mark.parametrize("layout", ["coco17", "h36m17"])
def test_joint_errors_of_a_translation(layout):
    reference = coco17_person(generate_scene(1, 0.2, 30.0, seed=1).joints[:, 0])
    if layout == "h36m17":
        reference = to_h36m(reference, np.ones(reference.shape[:-1]), "coco17")[0]
    errors = joint_errors(reference + SHIFT_M, reference, layout)
    np.testing.assert_allclose(errors["absolute"], 100.0)
    np.testing.assert_allclose(errors["limbs"], 100.0)
    assert errors["limbs"].shape[-1] == 12
    np.testing.assert_allclose(errors["relative"], 0.0, atol=1e-9)
    np.testing.assert_allclose(errors["limbs_relative"], 0.0, atol=1e-9)
    moved = reference.copy()
    moved[:, LIMBS[layout][2]] += SHIFT_M  # one wrist 10 cm off: 100 mm / 12 limb joints on average
    np.testing.assert_allclose(np.nanmean(joint_errors(moved, reference, layout)["limbs_relative"], axis=-1),
                               100.0 / 12)


def test_detector_statistics(report):
    nose = report["detector_error_leave_one_out"]["c0"]["joints"]["nose"]
    assert abs(nose["offset_px"][0] - NOSE_OFFSET_PX) < 1.5 and abs(nose["offset_px"][1]) < 1.5
    assert nose["spread_px"] < 2.5
    wrist = report["detector_error"]["c2"]["joints"]["l_wrist"]
    assert wrist["offset_norm_px"] < 1.0 and 0.2 < wrist["spread_px"] < 1.5 and wrist["jitter_px"] < 1.5
    assert abs(report["detector_error"]["c1"]["swap_share"] - 10 / (FRAMES - 2)) < 1e-9


def test_bad_detection_inputs():
    with pytest.raises(ValueError, match="at least 4"):
        evaluate_detections(CAMERAS[:3], PIXELS[:3], CONFIDENCE[:3], None)
    with pytest.raises(ValueError, match="lags"):
        evaluate_detections(CAMERAS, PIXELS, CONFIDENCE, None, lags=[0, 0])


def test_match_cameras_by_name_or_order():
    named = [Path(f"{n}.mp4") for n in ("c2", "c0", "c1", "c3")]
    assert [c.name for c in match_cameras(named, CAMERAS)] == ["c2", "c0", "c1", "c3"]
    plain = [Path(f"v{i}.avi") for i in range(4)]
    assert [c.name for c in match_cameras(plain, CAMERAS)] == ["c0", "c1", "c2", "c3"]
    with pytest.raises(ValueError, match="3 videos but 4"):
        match_cameras(plain[:3], CAMERAS)


class CountingBackend(DetectorBackend):
    """One person whose nose x is a quarter of the frame's mean grey level; counts its calls."""

    calls = 0

    def detect(self, image_rgb: np.ndarray) -> Detections:
        CountingBackend.calls += 1
        kp = np.full((1, 17, 2), 10.0)
        kp[0, 0, 0] = float(image_rgb.mean()) / 4  # inside the 64 x 48 test image
        return Detections(kp, np.full((1, 17), 0.8), np.array([0.8]))


def test_detection_cache(tmp_path):
    videos = []
    for i in range(2):
        path = tmp_path / f"cam{i}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
        for level in (40, 120, 200):
            writer.write(np.full((48, 64, 3), level, np.uint8))
        writer.release()
        videos.append(path)
    cache = tmp_path / "det.npz"
    kp, conf = load_or_detect(videos, CountingBackend, "counting", cache, progress=False)
    assert CountingBackend.calls == 6 and cache.is_file()
    assert kp[0].shape == (3, 17, 2) and conf[1].shape == (3, 17)
    assert np.allclose(kp[1][:, 0, 0], [10, 30, 50], atol=2)
    again, _ = load_or_detect(videos, CountingBackend, "counting", cache, progress=False)
    assert CountingBackend.calls == 6 and np.array_equal(again[0], kp[0])
    load_or_detect(videos, CountingBackend, "other detector", cache, progress=False)
    assert CountingBackend.calls == 12


def test_cli_errors(tmp_path, capsys):
    calib = tmp_path / "calib.qca.txt"
    calib.write_text("<calibration><cameras></calibration>")
    (tmp_path / "videos").mkdir()
    for args in (["--videos", str(tmp_path / "videos")],
                 ["--videos", str(tmp_path / "nowhere"), "--calibration", str(calib)],
                 ["--videos", str(tmp_path / "videos"), "--calibration", str(calib)],
                 ["--videos", str(tmp_path / "videos"), "--motion", "m.npz", "--calibration", str(calib)]):
        assert eval_main(args) == 2
    (tmp_path / "videos" / "a.mp4").write_bytes(b"")
    assert eval_main(["--videos", str(tmp_path / "videos"), "--calibration", str(calib)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("cvpose-eval: error:") for line in err)
    assert "needs --calibration" in err[0] and "not a directory" in err[1] and "no .mp4/.avi" in err[2]
    assert "exactly one of" in err[3] and "malformed XML" in err[4]
