"""The demo end to end (short run): scene node -> refiner node -> recorder + scoring; bag and picture left behind."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cvpose_ros.devtools import bag_io
from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS
from cvpose_ros.ros import demo


def test_demo_runs_the_graph_and_reports(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo_output"
    code = demo.main(["--duration", "4", "--people", "2", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    for label in ("refinement", "latency", "p50", "p99", "output rate", "rosbag2 (mcap)", "picture", "coco17",
                  "MPJPE (absolute)"):
        assert label in text
    mpjpe = re.search(r"triangulation ([\d.]+) mm\s+->\s+refined ([\d.]+) mm", text)
    assert mpjpe, text
    triangulation, refined = float(mpjpe.group(1)), float(mpjpe.group(2))
    assert 5.0 < triangulation < 200.0  # detector-like errors: clearly non-zero, clearly not broken
    if DEFAULT_CHECKPOINTS["coco17"].exists():  # the demo's detector speaks coco17: the coco17 weights refine
        assert refined < triangulation, "the shipped coco17 weights must improve on triangulation"
    else:
        assert refined == triangulation  # refinement off: the node passes triangulation through

    results = json.loads((out / "results.json").read_text())
    assert results["triangulation"]["mpjpe_mm"] == pytest.approx(triangulation, abs=0.05)
    png = out / "skeletons.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    topics = bag_io.bag_topics(out / "demo_bag")
    for topic in ("/cam0/keypoints", "/cam1/keypoints", "/cam0/camera_info", "/skeletons", "/skeletons_coarse",
                  "/ground_truth"):
        assert topics.get(topic, ("", 0))[1] > 30, topic
    assert next((out / "demo_bag").glob("*.mcap"))


def test_demo_rejects_bad_arguments(capsys) -> None:
    assert demo.main(["--people", "0"]) == 2
    assert "must be positive" in capsys.readouterr().err


def test_scene_publisher_rejects_bad_parameters(capsys) -> None:
    from cvpose_ros.ros import scene_node

    assert scene_node.main(["--ros-args", "-p", "num_people:=0"]) == 2
    assert "parameter num_people must be in [1, 50]" in capsys.readouterr().err


def test_scene_parameters_place_the_cameras_for_the_refiner() -> None:
    from cvpose_ros.devtools.synthetic import make_rig
    from cvpose_ros.geometry.camera import RigidTransform
    from cvpose_ros.ros.scene_node import extrinsics_parameters

    rig = make_rig("wide")
    p = extrinsics_parameters(rig)
    assert p["reference_frame"] == "world" and p["cam1.frame_id"] == "cam1_optical_frame"
    world_from_cam1 = RigidTransform.from_quaternion(p["cam1.rotation"], p["cam1.translation"])
    np.testing.assert_allclose(world_from_cam1.matrix(), rig.cameras[1].cam_from_world.inverse().matrix(), atol=1e-9)


def test_demo_in_process_mode(tmp_path: Path, capsys) -> None:
    assert demo.main(["--duration", "2", "--people", "1", "--in-process", "--out", str(tmp_path)]) == 0
    assert re.search(r"triangulation [\d.]+ mm", capsys.readouterr().out)


def test_demo_reports_a_refiner_that_cannot_start(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00" * 64)
    assert demo.main(["--duration", "2", "--checkpoint", str(bad), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cvpose-demo: failed:") and "refiner_node did not start" in err and "broken.pt" in err
    assert "\n" not in err
