"""Per-camera 2D tracker (cvpose_ros.detection.tracking): stable ids, short memory, no reuse, no swaps."""

from __future__ import annotations

import numpy as np
import pytest

from cvpose_ros.detection.tracking import PersonTracker, box_iou, first_id_for, keypoint_similarity

# a standing person in coco17 order, unit height 1 (x right, y down), centred on x = 0
TEMPLATE = np.array([[0.0, 0.05], [0.03, 0.03], [-0.03, 0.03], [0.06, 0.05], [-0.06, 0.05], [0.12, 0.2],
                     [-0.12, 0.2], [0.16, 0.38], [-0.16, 0.38], [0.18, 0.55], [-0.18, 0.55], [0.08, 0.55],
                     [-0.08, 0.55], [0.09, 0.77], [-0.09, 0.77], [0.09, 1.0], [-0.09, 1.0]])


def person(x: float, y: float, height: float, rng: np.random.Generator | None = None, noise: float = 0.0):
    kp = TEMPLATE * height + [x, y]
    if rng is not None:
        kp = kp + rng.normal(0.0, noise, kp.shape)
    return kp


def frame(people: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    kp = np.stack(people) if people else np.zeros((0, 17, 2))
    return kp, np.ones(kp.shape[:2])


def test_two_walkers_keep_their_ids_whatever_the_detection_order():
    rng = np.random.default_rng(0)
    tracker = PersonTracker(first_id=100)
    seen = []
    for t in range(60):
        a = person(100 + 4 * t, 50, 300, rng, 2.0)
        b = person(600 - 3 * t, 80, 260, rng, 2.0)
        order = rng.permutation(2)
        kp, conf = frame([[a, b][i] for i in order])
        ids = tracker.update(kp, conf)
        seen.append(ids[np.argsort(order)])  # ids of (a, b)
    seen = np.array(seen)
    assert np.all(seen == seen[0]) and set(seen[0]) == {100, 101}


def test_crossing_people_are_not_swapped():
    """Two people walk through each other (one nearer the camera: taller, lower in the image)."""
    rng = np.random.default_rng(1)
    tracker = PersonTracker()
    ids_a, ids_b = [], []
    for t in range(50):
        a = person(100 + 10 * t, 100, 320, rng, 3.0)
        b = person(600 - 10 * t, 60, 250, rng, 3.0)
        conf = np.ones((2, 17))
        conf[1, :7] = 0.0 if 22 <= t <= 28 else 1.0  # the farther person's head is hidden while crossing
        ids = tracker.update(np.stack([b, a]) if t % 2 else np.stack([a, b]), conf if t % 2 else conf[::-1])
        ids_a.append(ids[1] if t % 2 else ids[0])
        ids_b.append(ids[0] if t % 2 else ids[1])
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]


def test_briefly_lost_person_comes_back_with_the_same_id_and_ids_are_never_reused():
    tracker = PersonTracker(max_age=5)
    walker = [person(100 + 5 * t, 50, 300) for t in range(40)]
    first = tracker.update(*frame([walker[0]]))[0]
    for t in range(1, 10):
        assert tracker.update(*frame([walker[t]]))[0] == first
    for _ in range(4):  # missed by the detector for 4 frames (<= max_age), kept walking
        assert tracker.update(*frame([])).shape == (0,)
    assert tracker.update(*frame([walker[14]]))[0] == first  # velocity carried the track along
    for _ in range(7):  # gone for longer than max_age: forgotten
        tracker.update(*frame([]))
    assert tracker.num_tracks == 0
    again = tracker.update(*frame([walker[14]]))[0]
    assert again != first and again == first + 1


def test_someone_else_appearing_gets_a_new_id_not_the_lost_persons():
    tracker = PersonTracker(max_age=10)
    gone = tracker.update(*frame([person(100, 50, 300)]))[0]
    tracker.update(*frame([]))
    newcomer = tracker.update(*frame([person(900, 60, 300)]))[0]  # far away, same size
    assert newcomer != gone
    # and a person replacing another at a very different size is also new
    tracker = PersonTracker()
    big = tracker.update(*frame([person(300, 50, 400)]))[0]
    small = tracker.update(*frame([person(300, 300, 120)]))[0]
    assert small != big


def test_missing_joints_and_people_without_joints():
    tracker = PersonTracker()
    kp, conf = frame([person(100, 50, 300), person(500, 50, 300)])
    first = tracker.update(kp, conf)
    kp2, conf2 = kp.copy(), conf.copy()
    kp2[0, 5:] = np.nan  # only the head of person 0 is seen
    conf2[0, 5:] = 0.0
    conf2[1] = 0.0       # person 1 has no usable joint at all
    ids = tracker.update(kp2, conf2)
    assert ids[0] == first[0] and ids[1] == -1


def test_similarity_measures():
    a = person(100, 50, 300)[None]
    visible = np.ones((1, 17), bool)
    assert keypoint_similarity(a, visible, a, visible, np.array([300.0]))[0, 0] == pytest.approx(1.0)
    far = keypoint_similarity(a, visible, a + 200, visible, np.array([300.0]))[0, 0]
    assert far < 1e-3
    few = visible.copy()
    few[:, 2:] = False  # two shared joints are not enough to compare poses
    assert keypoint_similarity(a, few, a, few, np.array([300.0]))[0, 0] == 0.0
    boxes = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [np.nan] * 4])
    iou = box_iou(boxes, boxes)
    assert iou[0, 0] == pytest.approx(1.0) and iou[0, 1] == pytest.approx(50 / 150) and iou[2, 2] == 0.0


def test_bad_input_and_settings():
    tracker = PersonTracker()
    with pytest.raises(ValueError, match="expected keypoints"):
        tracker.update(np.zeros((2, 17, 3)), np.ones((2, 17)))
    with pytest.raises(ValueError, match="min_similarity"):
        PersonTracker(min_similarity=0.0)
    with pytest.raises(ValueError, match="max_age"):
        PersonTracker(max_age=-1)
    # a layout change (17 -> 12 joints) starts over instead of failing
    tracker.update(*frame([person(100, 50, 300)]))
    ids = tracker.update(np.zeros((1, 12, 2)) + 50, np.ones((1, 12)))
    assert ids.shape == (1,) and ids[0] >= 0


def test_cameras_get_disjoint_id_blocks():
    for names in (("/cam0", "/cam1"), ("/left", "/right"), ("cam0", "cam1")):
        a, b = (first_id_for(n) for n in names)
        assert a != b and a >= 0 and b >= 0
        assert max(a, b) + 1_000_000 < 2**31  # int32 on the wire


def test_mediapipe_windows_cover_wide_images_only():
    """Window layout of the MediaPipe backend (pure function, no mediapipe needed)."""
    from cvpose_ros.detection.mediapipe_backend import merge_window_duplicates, split_windows, touches_inner_edge

    assert split_windows(640, 480, 0.0) == [(0, 0, 640, 480)]
    assert split_windows(480, 640, 1.0) == [(0, 0, 480, 480), (0, 160, 480, 640)]  # portrait: cut across
    assert split_windows(640, 480, 1.5) == [(0, 0, 640, 480)]
    windows = split_windows(4320, 1920, 1.0)
    assert windows[0][0] == 0 and windows[-1][2] == 4320 and all(w[3] - w[1] == 1920 for w in windows)
    starts = [w[0] for w in windows]
    assert max(np.diff(starts)) <= 960  # at least half overlap: anyone narrower than half a window fits in one
    # a person crossing the cut side (x = 1920) of window (0, 0, 1920, 1920) is flagged; one inside is not
    inside, cut = person(400, 100, 600)[None], person(1900, 100, 600)[None]
    assert not touches_inner_edge(inside, (0, 0, 1920, 1920), 4320, 1920)[0]
    assert touches_inner_edge(cut, (0, 0, 1920, 1920), 4320, 1920)[0]
    # the same person from two windows: the one clear of a cut side is kept; two people of one window both stay
    both = np.concatenate([cut, cut + 3.0, person(1000, 100, 600)[None]])
    conf = np.ones(both.shape[:2])
    keep = merge_window_duplicates(both, conf, np.array([True, False, False]), np.array([0, 1, 1]))
    assert sorted(keep.tolist()) == [1, 2]
