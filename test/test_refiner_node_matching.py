"""Cross-view matching in the running node over real DDS: disagreeing track ids, one-view swaps, crowds.

The node runs in-process with `max_people: 5`; a synthetic rig publishes the keypoints. Checks the published
skeletons against the truth and the /diagnostics counters (`problem_track_id_disagreement`,
`problem_people_over_limit`, `swap_repairs`).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from refiner_harness import Harness, rig_parameters  # noqa: E402

from cvpose_ros.body.skeleton import H36M17  # noqa: E402
from cvpose_ros.devtools.synthetic import generate_scene, make_rig, project_scene  # noqa: E402
from cvpose_ros.ros.conversions import skeletons_from_msg  # noqa: E402

RIG = make_rig("demo")
MAX_PEOPLE = 5


@pytest.fixture(scope="module")
def harness():
    h = Harness(rig_parameters(RIG, max_people=MAX_PEOPLE, refine=False, max_stamp_age=5.0))
    h.send_camera_info(RIG)
    yield h
    h.close()




def three_people(t: int = 4):
    scene = generate_scene(3, 0.5, 30.0, seed=9)
    views = project_scene(scene, RIG, noise=None)
    rng = np.random.default_rng(t)
    kp = tuple(v.keypoints[t] + rng.normal(0, 0.7, v.keypoints[t].shape) for v in views)
    conf = tuple(np.where(np.isfinite(k).all(-1), 0.9, 0.0) for k in kp)
    return RIG.cameras[0].world_to_camera(scene.joints[t]), kp, conf


def errors_to_truth(msg, truth: np.ndarray) -> np.ndarray:
    """(P,) mean joint error (m) of each published skeleton to its nearest true person."""
    _, joints, _, _ = skeletons_from_msg(msg)
    return np.nanmean(np.linalg.norm(joints[:, None] - truth[None], axis=-1), axis=-1).min(axis=1)


def test_disagreeing_track_ids_give_correct_skeletons_and_a_counted_warning(harness):
    truth, kp, conf = three_people()
    reports = len(harness.received["/diagnostics"])
    msg = harness.frame(harness.next_stamp(), kp, conf, track_ids=([0, 1, 2], [2, 1, 0]))
    assert len(msg.skeletons) == 3
    assert (errors_to_truth(msg, truth) < 0.03).all()  # matching by id alone put two of them metres off
    values = harness.latest_diagnostics()  # a report published after the frame (0.5 s later)
    assert int(values["problem_track_id_disagreement"]) >= 2
    assert any(m.status[0].level == DiagnosticStatus.WARN for m in harness.received["/diagnostics"][reports:])
    before = int(values["problem_track_id_disagreement"])
    msg = harness.frame(harness.next_stamp(), kp, conf, track_ids=([0, 1, 2], [0, 1, 2]))  # agreeing ids
    assert (errors_to_truth(msg, truth) < 0.03).all()
    assert int(harness.latest_diagnostics()["problem_track_id_disagreement"]) == before


def test_a_whole_body_flip_in_one_view_is_repaired(harness):
    truth, kp, conf = three_people(8)
    before = int(harness.latest_diagnostics()["swap_repairs"])
    flipped = kp[1].copy()
    flipped[2] = flipped[2][H36M17.flip_permutation()]
    stamp = harness.next_stamp()
    harness.frame(stamp, (kp[0], flipped), conf)
    coarse = harness.skeletons_at(stamp, "skeletons_coarse")
    _, joints, _, _ = skeletons_from_msg(coarse)
    assert len(joints) == 3
    # every published joint keeps its label: within centimetres of the same joint of some true person
    per_joint = np.linalg.norm(joints[:, None] - truth[None], axis=-1)  # (P, truth, J)
    best = np.nanmean(per_joint, axis=-1).argmin(axis=1)
    assert np.nanmax(per_joint[np.arange(3), best]) < 0.05
    assert int(harness.latest_diagnostics()["swap_repairs"]) >= before + 1


def crowd(count: int, seed: int):
    scene = generate_scene(count, 0.1, 30.0, seed=seed, room=(30.0, 30.0))
    rig = make_rig("demo", room=(30.0, 30.0))
    views = project_scene(scene, rig, noise=None)
    kp = tuple(np.nan_to_num(v.keypoints[0], nan=-1.0) for v in views)  # every person reported, some off-image
    conf = tuple(np.where(np.isfinite(v.keypoints[0]).all(-1), 0.8, 0.0) for v in views)
    return kp, conf


@pytest.mark.parametrize("count", [40, 200])
def test_a_crowd_is_cut_to_max_people_and_counted_without_stalling(harness, count):
    kp, conf = crowd(count, seed=count)
    before = int(harness.latest_diagnostics()["problem_people_over_limit"])
    start = time.monotonic()
    msg = harness.frame(harness.next_stamp(), kp, conf, timeout_s=20.0)
    took = time.monotonic() - start
    assert len(msg.skeletons) <= MAX_PEOPLE
    reported = [int(((c > 0).sum(-1) >= 6).sum()) for c in conf]  # people that pass the node's validation
    values = harness.latest_diagnostics()
    assert int(values["problem_people_over_limit"]) - before == sum(max(0, r - MAX_PEOPLE) for r in reported)
    assert took < 20.0
    # the node keeps answering ordinary frames
    truth, kp3, conf3 = three_people()
    assert (errors_to_truth(harness.frame(harness.next_stamp(), kp3, conf3), truth) < 0.03).all()
