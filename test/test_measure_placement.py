"""training/tools/measure_placement.py on constructed poses whose placement is known."""

import json

import numpy as np
import pytest

from training.tools.measure_placement import COCO17_NAMES, PANOPTIC19_NAMES, main

# BODY frame axes (left, up, forward) in world coordinates: a right-handed frame, forward = left x up.
AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
BODY = {  # (left, up, forward) mm from mid-shoulder
    "l_shoulder": (160, 0, 0), "r_shoulder": (-160, 0, 0), "l_elbow": (180, -280, 0), "r_elbow": (-180, -280, 0),
    "l_wrist": (190, -530, 20), "r_wrist": (-190, -530, 20), "l_hip": (100, -450, 0), "r_hip": (-100, -450, 0),
    "l_knee": (100, -880, 30), "r_knee": (-100, -880, 30), "l_ankle": (100, -1300, 0), "r_ankle": (-100, -1300, 0),
}
HEAD = {"nose": (0, 0, 110), "l_eye": (30, 30, 85), "r_eye": (-30, 30, 85), "l_ear": (75, 0, 0), "r_ear": (-75, 0, 0)}
HEAD_ORIGIN = np.array([0.0, 170.0, 60.0])


def _rot(yaw, pitch, roll):
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def _pose(yaw=20.0, pitch=10.0, roll=-5.0, shift=(0.5, 2.0, 0.3)):
    """name -> world point in metres."""
    body = {n: np.array(v, float) for n, v in BODY.items()}
    rot = _rot(yaw, pitch, roll)
    body |= {n: HEAD_ORIGIN + rot @ np.array(v, float) for n, v in HEAD.items()}
    return {n: (v @ AXES) / 1000.0 + np.array(shift) for n, v in body.items()}


def test_coco17_npz_head_model_angles_and_lengths(tmp_path):
    angles = np.array([[20.0, 10.0, -5.0], [-30.0, 25.0, 8.0]])
    poses = np.array([[_pose(*a)[n] for n in COCO17_NAMES] for a in angles])
    npz = tmp_path / "tri.npz"
    np.savez(npz, poses=poses)
    out_json, out_md = tmp_path / "p.json", tmp_path / "p.md"
    assert main(["--coco17-npz", str(npz), "--json", str(out_json), "--markdown", str(out_md)]) == 0
    res = json.loads(out_json.read_text())["sources"]["tri"]
    pooled = res["pooled"]
    for name, want in HEAD.items():
        np.testing.assert_allclose(pooled["head_frame"][name]["mean"], want, atol=0.1)
    np.testing.assert_allclose(pooled["body_frame"]["mid_ear"]["mean"], HEAD_ORIGIN, atol=0.1)
    per_frame = [res["per_person"]["tri"]["head_angles"][k] for k in ("yaw", "pitch", "roll")]
    np.testing.assert_allclose([s["min"] for s in per_frame], angles.min(0), atol=0.1)
    np.testing.assert_allclose([s["max"] for s in per_frame], angles.max(0), atol=0.1)
    lengths = pooled["lengths"]
    assert lengths["ear_to_ear"]["mean"] == pytest.approx(150.0, abs=0.1)
    assert lengths["nose_to_mid_ear"]["mean"] == pytest.approx(110.0, abs=0.1)
    assert lengths["shoulder_to_shoulder"]["mean"] == pytest.approx(320.0, abs=0.1)
    assert pooled["body_scalars"]["hip_half_width"]["mean"] == pytest.approx(100.0, abs=0.1)
    assert res["checks"]["nose_forward_fraction"] == 1.0 and res["checks"]["ear_left_of_right_fraction"] == 1.0
    assert "| ear -> ear | 150.0" in out_md.read_text()


def test_panoptic_json_units_confidence_and_jumps(tmp_path):
    seq = tmp_path / "seqA" / "hdPose3d_stage1_coco19"
    seq.mkdir(parents=True)
    pose = _pose()
    pose["neck"] = (pose["l_shoulder"] + pose["r_shoulder"]) / 2
    pose["pelvis"] = (pose["l_hip"] + pose["r_hip"]) / 2
    for frame in range(8):
        joints = np.array([[*(pose[n] * 100.0), 0.5] for n in PANOPTIC19_NAMES])  # centimetres, confidence
        if frame == 3:
            joints[PANOPTIC19_NAMES.index("l_ear")] = [0.0, 0.0, 0.0, -1.0]  # not reconstructed
        if frame == 5:
            joints[PANOPTIC19_NAMES.index("r_ear"), :3] += 40.0  # a 40 cm failure
        body = {"id": 7, "joints19": joints.ravel().tolist()}
        (seq / f"body3DScene_{frame:08d}.json").write_text(json.dumps({"bodies": [body]}))
    out_json = tmp_path / "p.json"
    assert main(["--panoptic", str(tmp_path), "--json", str(out_json)]) == 0
    res = json.loads(out_json.read_text())["sources"]["panoptic"]
    assert res["persons"] == ["seqA/7"]
    ear = res["pooled"]["lengths"]["ear_to_ear"]
    assert ear["n"] == 6 and ear["mean"] == pytest.approx(150.0, abs=0.1) and ear["std"] < 0.1
    assert res["pooled"]["lengths"]["neck_to_mid_shoulder"]["mean"] == pytest.approx(0.0, abs=0.1)
