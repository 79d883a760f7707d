"""MediaPipe backend on real photographs shipped with scikit-image (skipped without the 'mediapipe' extra)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from cvpose_ros.body.skeleton import COCO17
from cvpose_ros.detection import DetectorError, create_backend, finalize  # before mediapipe: its protobuf shim

if importlib.util.find_spec("mediapipe") is None:
    pytest.skip("the optional extra 'mediapipe' is not installed", allow_module_level=True)
skimage_data = pytest.importorskip("skimage.data")


J = {name: i for i, name in enumerate(COCO17.joint_names)}


def assert_plausible_upper_body(keypoints: np.ndarray, confidence: np.ndarray, width: int, height: int) -> None:
    """Face above shoulders in image y, left/right consistent with a person facing the camera, all inside."""
    face = [J["nose"], J["l_eye"], J["r_eye"], J["l_ear"], J["r_ear"]]
    shoulders = [J["l_shoulder"], J["r_shoulder"]]
    assert np.all(confidence[face + shoulders] > 0.7)
    assert keypoints[face, 1].max() < keypoints[shoulders, 1].min()
    # a person facing the camera has their left side on the image's right
    assert keypoints[J["l_shoulder"], 0] > keypoints[J["r_shoulder"], 0]
    assert keypoints[J["l_eye"], 0] > keypoints[J["r_eye"], 0]
    visible = confidence > 0
    assert np.all((keypoints[visible] >= 0) & (keypoints[visible] <= [width - 1, height - 1]))
    shoulder_width = keypoints[J["l_shoulder"], 0] - keypoints[J["r_shoulder"], 0]
    assert 0.2 * width < shoulder_width < 0.8 * width


@pytest.fixture(scope="module")
def backend():
    with create_backend("mediapipe", tracking=False) as detector:
        yield detector


def test_astronaut_photo_gives_a_plausible_person(backend):
    image = skimage_data.astronaut()  # 512 x 512 RGB, upper body of a person facing the camera
    raw = backend.detect(image)
    assert raw.num_people == 1 and raw.layout == "coco17" and backend.multi_person
    det = finalize(raw, image.shape[1], image.shape[0])
    assert_plausible_upper_body(det.keypoints[0], det.confidence[0], 512, 512)
    # the legs are outside the photo: they must not come out as confident joints
    assert np.all(det.confidence[0, [J["l_ankle"], J["r_ankle"]]] < 0.5)


def test_h36m_output_and_empty_image(backend):
    image = skimage_data.astronaut()
    det = finalize(backend.detect(image), 512, 512, "h36m17")
    thorax, head = det.keypoints[0, 8], det.keypoints[0, 10]
    assert det.layout == "h36m17" and head[1] < thorax[1]
    blank = backend.detect(np.full((240, 320, 3), 127, np.uint8))
    assert blank.num_people == 0 and blank.keypoints.shape == (0, 17, 2)


def test_tracking_mode_and_bad_settings():
    image = skimage_data.astronaut()
    with create_backend("mediapipe", tracking=True) as tracker:
        first, second = tracker.detect(image), tracker.detect(image)
    assert first.num_people == second.num_people == 1
    face = [J["nose"], J["l_eye"], J["r_eye"]]
    assert np.abs(first.keypoints[0, face] - second.keypoints[0, face]).max() < 5.0
    with pytest.raises(DetectorError, match="min_detection_confidence"):
        create_backend("mediapipe", min_detection_confidence=1.5)
    with pytest.raises(DetectorError, match="num_poses"):
        create_backend("mediapipe", num_poses=0)
    with pytest.raises(DetectorError, match="window_aspect"):
        create_backend("mediapipe", window_aspect=0.5)


def tiled_people(count: int) -> tuple[np.ndarray, list[int]]:
    """`count` copies of the photo side by side (every other one mirrored), grey gaps between; x offsets."""
    photo = skimage_data.astronaut()
    gap = np.full((512, 256, 3), 127, np.uint8)
    tiles, offsets, x = [], [], 0
    for i in range(count):
        tiles += [photo[:, ::-1] if i % 2 else photo, gap]
        offsets.append(x)
        x += 512 + 256
    return np.ascontiguousarray(np.concatenate(tiles[:-1], axis=1)), offsets


def test_every_person_of_a_tiled_image_is_found_where_the_single_person_result_puts_them(backend):
    """2 and 3 people side by side: one detection per tile, each matching the single-person result on that tile
    (mirrored back for the mirrored copies)."""
    reference = backend.detect(skimage_data.astronaut())
    face = [J["nose"], J["l_eye"], J["r_eye"], J["l_shoulder"], J["r_shoulder"]]
    for count in (2, 3):
        image, offsets = tiled_people(count)
        det = finalize(backend.detect(image), image.shape[1], image.shape[0])
        assert det.num_people == count, f"{count} people: found {det.num_people}"
        centres = np.sort(np.nanmedian(det.keypoints[:, face, 0], axis=1))
        for i, (centre, offset) in enumerate(zip(centres, offsets, strict=True)):
            assert offset < centre < offset + 512
            person = det.keypoints[np.argmin(np.abs(np.nanmedian(det.keypoints[:, face, 0], axis=1) - centre))]
            expected = reference.keypoints[0, face].copy()
            if i % 2:  # mirrored copy: x flips, left and right swap
                expected[:, 0] = 511 - expected[:, 0]
                expected = expected[[0, 2, 1, 4, 3]]
            assert np.median(np.linalg.norm(person[face] - expected - [offset, 0], axis=1)) < 12.0


def test_max_people_bounds_the_search_and_video_mode_follows_everyone():
    two, _ = tiled_people(2)
    for num_poses, expected in ((1, 1), (4, 2)):  # whole image: num_poses bounds the people found
        with create_backend("mediapipe", tracking=False, num_poses=num_poses, window_aspect=0.0) as whole:
            assert whole.detect(two).num_people == expected
    image, _ = tiled_people(3)
    with create_backend("mediapipe", tracking=True) as video:
        counts = [video.detect(image).num_people for _ in range(3)]
    assert counts == [3, 3, 3]


def test_people_standing_close_are_found_by_the_rescan():
    """Two copies of the photo touching: MediaPipe alone keeps one of the two overlapping landmark regions; the
    second search with the first person hidden finds the other."""
    photo = skimage_data.astronaut()
    pair = np.ascontiguousarray(np.concatenate([photo, photo[:, ::-1]], axis=1))
    found = {}
    for rescan in (False, True):
        with create_backend("mediapipe", tracking=False, window_aspect=0.0, rescan=rescan) as detector:
            found[rescan] = finalize(detector.detect(pair), 1024, 512)
    assert found[False].num_people == 1 and found[True].num_people == 2
    nose_x = np.sort(found[True].keypoints[:, J["nose"], 0])
    assert nose_x[0] < 512 < nose_x[1]


def test_refinement_pass_runs_on_whole_people_and_leaves_people_cut_by_the_frame_alone():
    """refine_crops: the astronaut photo shows an upper body (MediaPipe guesses the legs below the frame), so the
    pass keeps the first result exactly; on a large grey canvas the whole guessed body lies inside the image, so
    the pass runs: keypoints change a little, not to somewhere else, and each tiled person is still found."""
    photo = skimage_data.astronaut()
    canvas = np.full((1300, 1800, 3), 127, np.uint8)
    canvas[100:612, 200:712], canvas[100:612, 1000:1512] = photo, photo[:, ::-1]
    face = [J["nose"], J["l_eye"], J["r_eye"], J["l_shoulder"], J["r_shoulder"]]
    with (create_backend("mediapipe", tracking=False) as plain,
          create_backend("mediapipe", tracking=False, refine_crops=1) as one,
          create_backend("mediapipe", tracking=False, refine_crops=2) as refined):
        alone = plain.detect(photo).keypoints
        assert np.array_equal(one.detect(photo).keypoints, alone)
        assert np.array_equal(refined.detect(photo).keypoints, alone)
        before, after = plain.detect(canvas), refined.detect(canvas)
    assert before.num_people == after.num_people == 2
    order_before, order_after = np.argsort(before.keypoints[:, 0, 0]), np.argsort(after.keypoints[:, 0, 0])
    moved = np.linalg.norm(after.keypoints[order_after][:, face] - before.keypoints[order_before][:, face], axis=-1)
    assert moved.max() > 0.0                    # the pass ran
    assert np.median(moved) < 25.0              # and found the same people
    with pytest.raises(DetectorError, match="refine_crops"):
        create_backend("mediapipe", refine_crops=-1)
