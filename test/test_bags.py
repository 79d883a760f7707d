"""rosbag2 tools: make -> eval through the real refiner node, damaged bags, missing topics, bag -> samples, fine-tuning.

Bags are made here from synthetic scenes (never from shared data). DDS traffic stays on this host
(scripts/run_tests.sh sets ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE).
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cvpose_ros.devtools import bag_io, synthetic
from cvpose_ros.devtools.scoring import PoseScore, match_people, root_relative_errors
from training import bag_cli
from training.data import bags


@pytest.fixture(scope="module")
def clean_bag(tmp_path_factory) -> Path:
    """2 s, 2 people, exact 2D, mcap."""
    out = tmp_path_factory.mktemp("bags") / "clean"
    assert bag_cli.main(["make", "--synthetic", "--out", str(out), "--duration", "2", "--people", "2",
                         "--noise", "none", "--seed", "3"]) == 0
    return out


def test_made_bag_has_the_node_topics(clean_bag: Path) -> None:
    topics = bag_io.bag_topics(clean_bag)
    for topic in bags.REQUIRED_TOPICS + (bag_io.GROUND_TRUTH_TOPIC, bag_io.TF_STATIC_TOPIC):
        assert topic in topics
    assert topics["/cam0/keypoints"] == (bag_io.KEYPOINTS_TYPE, 60)
    assert topics["/ground_truth"] == (bag_io.SKELETONS_TYPE, 60)


def test_sqlite3_storage_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "lite"
    assert bag_cli.main(["make", "--synthetic", "--out", str(out), "--duration", "0.5", "--storage", "sqlite3",
                         "--track-ids"]) == 0
    assert next(out.glob("*.db3"))
    rec = bags.load_recording(out)
    assert len(rec.pairs) == 15
    assert set(rec.pairs[0][0].track_ids.tolist()) <= {1, 2}
    # The recorder writes from one thread: sqlite3 refuses connections shared across the executor's threads.
    outputs = tmp_path / "lite_outputs"
    assert bag_cli.main(["eval", str(out), "--out", str(outputs), "--storage", "sqlite3", "--no-progress"]) == 0
    assert bag_io.bag_topics(outputs)["/skeletons"][1] >= 14


def test_eval_replays_through_the_node(clean_bag: Path, tmp_path: Path) -> None:
    out_bag, report = tmp_path / "outputs", tmp_path / "report.json"
    code = bag_cli.main(["eval", str(clean_bag), "--out", str(out_bag), "--json", str(report), "--no-progress"])
    assert code == 0
    r = json.loads(report.read_text())
    assert r["pairs_published"] == 60 and r["outputs"] >= 57 and r["outputs"] + r["dropped"] == 60  # best effort
    assert r["people_max"] == 2
    # Exact 2D through the whole graph (bag -> DDS -> node -> DDS -> scoring): triangulation is exact.
    assert r["triangulation"]["mpjpe_mm"] < 1.0
    assert r["triangulation"]["people_matched"] >= 110
    assert r["refined"]["mpjpe_mm"] is not None
    assert r["latency"]["p50_ms"] > 0
    assert bag_io.bag_topics(out_bag)["/skeletons"][1] == r["outputs"]


def test_eval_realtime_uses_bag_clock(tmp_path: Path) -> None:
    bag = tmp_path / "short"
    assert bag_cli.main(["make", "--synthetic", "--out", str(bag), "--duration", "1", "--people", "1",
                         "--noise", "light"]) == 0
    report = tmp_path / "rt.json"
    assert bag_cli.main(["eval", str(bag), "--realtime", "--json", str(report), "--no-progress"]) == 0
    r = json.loads(report.read_text())
    # At the recorded rate a loaded machine may drop frames (they are reported): ask for a third of them.
    assert r["realtime"] and r["pairs_published"] == 30 and r["outputs"] >= 10
    assert r["outputs"] + r["dropped"] == 30
    assert r["triangulation"]["mpjpe_mm"] < 30.0  # outputs carry the bag's stamps: they match its ground truth


def test_truncated_and_corrupt_bags_fail_with_one_line(clean_bag: Path, tmp_path: Path, capsys) -> None:
    truncated = tmp_path / "truncated"
    shutil.copytree(clean_bag, truncated)
    mcap = next(truncated.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "metadata.yaml").write_text("rosbag2_bagfile_information: [not, a, bag]\n")
    for bag in (truncated, garbage, tmp_path / "absent"):
        capsys.readouterr()
        assert bag_cli.main(["eval", str(bag), "--no-progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("cvpose-bag eval:") and str(bag) in err and "\n" not in err


def test_unloadable_checkpoint_fails_with_one_line(clean_bag: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert bag_cli.main(["eval", str(clean_bag), "--checkpoint", str(bad), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cvpose-bag eval:") and "bad.pt" in err and "\n" not in err


def test_missing_topics_are_named(tmp_path: Path, capsys) -> None:
    bag = tmp_path / "no_info"
    scene = synthetic.generate_scene(1, 0.3, seed=0)
    rig = synthetic.make_rig("demo")
    views = synthetic.project_scene(scene, rig, None)
    with bag_io.BagWriter(bag) as w:
        for t in range(scene.num_frames):
            for i in range(2):
                w.write(bag_io.KEYPOINTS_TOPICS[i], bag_io.KEYPOINTS_TYPE, t + 1, bag_io.keypoints_message(
                    t + 1, rig.cameras[i].frame_id, views[i].keypoints[t], views[i].confidence[t]))
    assert bag_cli.main(["eval", str(bag), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "missing topics" in err and "/cam0/camera_info" in err and "/cam1/camera_info" in err
    with pytest.raises(bag_io.BagError, match="missing topics"):
        bags.bag_samples([bag])


def test_bag_samples_pair_views_and_people_correctly(clean_bag: Path) -> None:
    samples = bags.bag_samples([clean_bag])
    scene = synthetic.generate_scene(2, 2.0, seed=3)
    rig = synthetic.make_rig("demo")
    views = synthetic.project_scene(scene, rig, None)
    both = views[0].visible & views[1].visible
    assert len(samples) == both.sum()
    # Each sample's two views show the same person (association by geometry, no track ids in this bag).
    exact = [np.nan_to_num(v.keypoints.reshape(-1, 17, 2), nan=1e6) for v in views]
    who = [np.argmin(np.abs(exact[v][None] - np.nan_to_num(samples.kp2d[:, v], nan=1e6)[:, None]).sum((-1, -2)),
                     axis=1) % 2 for v in range(2)]
    np.testing.assert_array_equal(who[0], who[1])
    np.testing.assert_allclose(samples.R10[0], rig.cam1_from_cam0.R, atol=1e-6)
    assert samples.gt3d is None


def test_pair_by_stamp_respects_slop() -> None:
    s0 = np.array([0, 100, 200, 300, 400])
    s1 = np.array([2, 98, 260, 401, 405])
    i0, i1 = bags.pair_by_stamp(s0, s1, slop_ns=5)
    assert list(zip(i0.tolist(), i1.tolist(), strict=True)) == [(0, 0), (1, 1), (4, 3)]


def test_extrinsics_from_parameter_file(clean_bag: Path, tmp_path: Path) -> None:
    rig = synthetic.make_rig("demo")
    pose = rig.cam1_from_cam0.inverse()
    params = tmp_path / "refiner.yaml"
    params.write_text(f"""refiner_node:
  ros__parameters:
    cam0: {{translation: [0, 0, 0], rotation: [0, 0, 0, 1]}}
    cam1: {{translation: {pose.t.tolist()}, rotation: {pose.quaternion().tolist()}}}
""")
    rec = bags.load_recording(clean_bag, params_file=params)
    assert rec.reference_frame == "cam0_optical_frame"
    np.testing.assert_allclose(rec.cam1_from_cam0.matrix(), rig.cam1_from_cam0.matrix(), atol=1e-9)


def test_scoring_matches_people_and_ignores_missing_joints() -> None:
    scene = synthetic.generate_scene(3, 0.1, seed=2)
    truth = scene.joints[0]
    est = truth[[2, 0]].copy()
    est[0] += 0.01  # a pure translation: no root-relative error
    est[1, 5] += [0.0, 0.0, 0.17]  # one joint 170 mm off -> 10 mm mean over 17 joints
    est[1, 7] = np.nan
    i_est, i_gt = match_people(est, truth)
    assert i_gt.tolist() == [2, 0]
    np.testing.assert_allclose(root_relative_errors(est[i_est], truth[i_gt]), [0.0, 170 / 16], atol=1e-6)
    score = PoseScore()
    score.add(est, truth)
    assert score.summary()["people_missed"] == 1 and score.summary()["people_extra"] == 0


def test_finetune_on_bag_changes_the_weights(clean_bag: Path, tmp_path: Path) -> None:
    import torch

    from cvpose_ros.model.checkpoint import load_checkpoint

    small = {"view_channels": 8, "joint_channels": 16, "part_channels": 16, "decoder_channels": 8,
             "batch_size": 32, "samples_per_epoch": 64, "progress": "off", "threads": 1}
    first = bags.finetune_on_bags([clean_bag], tmp_path / "a", epochs=1, **small)
    tuned = bags.finetune_on_bags([clean_bag], tmp_path / "b", init=first, epochs=2, **small)
    before, after = load_checkpoint(first).model.state_dict(), load_checkpoint(tuned).model.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    log = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(np.isfinite(r["train"]["loss"]) for r in log)


def test_make_from_motion_file(tmp_path: Path) -> None:
    scene = synthetic.generate_scene(2, 1.0, seed=5)
    motion = tmp_path / "motion.npz"
    np.savez(motion, walk_a=(scene.joints[:, 0] * 1000).astype(np.float32),
             walk_b=(scene.joints[:, 1] * 1000).astype(np.float32), joint_names=np.array(["x"] * 17))
    out = tmp_path / "motion_bag"
    assert bag_cli.main(["make", "--motion", str(motion), "--out", str(out), "--noise", "none", "--rig", "narrow"]) == 0
    rec = bags.load_recording(out)
    assert len(rec.pairs) == 30 and len(rec.truth) == 30
    ids, truth = rec.truth[min(rec.truth)]
    assert truth.shape == (2, 17, 3)
    np.testing.assert_allclose(truth[:, 3:, 2].min(), synthetic.ANKLE_HEIGHT_M, atol=1e-5)  # floor-aligned
    assert bag_cli.main(["make", "--motion", str(motion), "--out", str(tmp_path / "x"), "--sequence", "nope"]) == 1


def test_make_from_h36m_files(tmp_path: Path) -> None:
    from training.data.h36m import load_cameras

    scene = synthetic.generate_scene(1, 0.5, fps=50, seed=6)
    world = scene.joints[:, 0] + [-3.0, -2.5, 0.0]  # around the Human3.6M capture volume's origin
    cams = load_cameras()["S9"]
    views_2d = [c.model.project(c.cam_from_world.apply(world)).astype(np.float32) for c in cams]
    f3d, f2d = tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz"
    np.savez(f3d, positions_3d={"S9": {"Walking 1": world.astype(np.float32)}})
    np.savez(f2d, positions_2d={"S9": {"Walking 1": views_2d}}, metadata={"layout_name": "h36m"})
    out = tmp_path / "h36m_bag"
    assert bag_cli.main(["make", "--h36m-3d", str(f3d), "--h36m-2d", str(f2d), "--subject", "S9", "--pair", "1-3",
                         "--out", str(out)]) == 0
    rec = bags.load_recording(out)
    assert len(rec.pairs) == 25
    np.testing.assert_allclose(rec.pairs[0][1].pixels[0], views_2d[3][0], atol=1e-3)
    rel = cams[3].cam_from_world.compose(cams[1].cam_from_world.inverse())
    np.testing.assert_allclose(rec.cam1_from_cam0.matrix(), rel.matrix(), atol=1e-6)
    assert bag_cli.main(["make", "--h36m-3d", str(f3d), "--subject", "S11", "--out", str(tmp_path / "y")]) == 1


def test_uncalibrated_camera_info_is_a_clear_error(tmp_path: Path, capsys) -> None:
    bag = tmp_path / "uncalibrated"
    rig = synthetic.make_rig("demo")
    fields = synthetic.camera_info_fields(rig.cameras[1]) | {"k": [0.0] * 9}
    with bag_io.BagWriter(bag) as w:
        for i in range(2):
            info = fields if i == 1 else synthetic.camera_info_fields(rig.cameras[0])
            w.write(bag_io.CAMERA_INFO_TOPICS[i], bag_io.CAMERA_INFO_TYPE, 1, bag_io.camera_info_message(1, info))
            w.write(bag_io.KEYPOINTS_TOPICS[i], bag_io.KEYPOINTS_TYPE, 1, bag_io.keypoints_message(
                1, rig.cameras[i].frame_id, np.zeros((0, 17, 2)), np.zeros((0, 17))))
    assert bag_cli.main(["eval", str(bag), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "/cam1/camera_info" in err and "uncalibrated" in err


def _swapped_recording() -> tuple[bags.Recording, np.ndarray, np.ndarray]:
    """A two-camera recording (in memory, exact 2D) of one person whose left and right camera 1 swaps in every
    other frame; returns it with camera 1's true and swapped keypoints (T, J, 2)."""
    from cvpose_ros.body.skeleton import H36M17

    scene = synthetic.generate_scene(1, 1.0, 10.0, seed=5)
    rig = synthetic.make_rig("demo")
    v0, v1 = synthetic.project_scene(scene, rig, None)
    true1 = v1.keypoints[:, 0].copy()
    swapped1 = true1.copy()
    swapped1[::2] = true1[::2][:, H36M17.flip_permutation()]
    pairs = []
    for t in range(scene.num_frames):
        f0 = bags.ViewFrame(t, v0.keypoints[t], v0.confidence[t], np.array([-1]))
        f1 = bags.ViewFrame(t, swapped1[t][None], v1.confidence[t], np.array([-1]))
        pairs.append((f0, f1))
    cams = tuple(c.model for c in rig.cameras)
    poses = tuple(c.cam_from_world.inverse() for c in rig.cameras)
    return bags.Recording(cams, ("c0", "c1"), "world", poses, pairs), true1, swapped1


def test_samples_carry_the_repaired_keypoints_the_node_triangulates() -> None:
    rec, true1, swapped1 = _swapped_recording()
    repaired = bags.recording_samples(rec)
    raw = bags.recording_samples(rec, repair=False)
    assert len(repaired) == len(raw) == len(true1)
    np.testing.assert_allclose(raw.kp2d[:, 1], swapped1)  # the detector's labels, swaps included
    # repaired: every frame's camera-1 keypoints carry the true labels again (camera 0 was right)
    np.testing.assert_allclose(repaired.kp2d[:, 1], true1, atol=1e-6)
