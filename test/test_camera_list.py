"""Issue 14: the launch files' camera list (`cvpose_ros.ros.camera_list`), plain Python, no ROS 2 `launch` needed."""

from __future__ import annotations

import pytest

from cvpose_ros.ros.camera_list import MAX_CAMERAS, camera_namespaces, refiner_cameras, refiner_remappings

TWO_CAMERA_REMAPS = [("cam0/keypoints", "cam0/keypoints"), ("cam0/camera_info", "cam0/camera_info"),
                     ("cam1/keypoints", "cam1/keypoints"), ("cam1/camera_info", "cam1/camera_info")]


def test_the_default_is_the_two_camera_launch_unchanged():
    names = camera_namespaces("", "cam0", "cam1")
    assert names == ["cam0", "cam1"]
    assert refiner_remappings(names) == TWO_CAMERA_REMAPS  # what cvpose.launch.py wrote by hand before
    assert refiner_cameras("", names) == {}  # the parameter file keeps deciding
    assert refiner_remappings(camera_namespaces(" ", "/left", "right")) == [
        ("cam0/keypoints", "/left/keypoints"), ("cam0/camera_info", "/left/camera_info"),
        ("cam1/keypoints", "right/keypoints"), ("cam1/camera_info", "right/camera_info")]


@pytest.mark.parametrize("text", ["[left, right, /rig/top]", "left, right, /rig/top", "['left', 'right', '/rig/top']"])
def test_a_camera_list_gives_every_camera_its_topics(text):
    names = camera_namespaces(text, "cam0", "cam1")
    assert names == ["left", "right", "/rig/top"]
    assert refiner_cameras(text, names) == {"cameras": ["cam0", "cam1", "cam2"]}
    remaps = dict(refiner_remappings(names))
    assert remaps["cam2/keypoints"] == "/rig/top/keypoints" and remaps["cam2/camera_info"] == "/rig/top/camera_info"
    assert len(remaps) == 6


@pytest.mark.parametrize(("text", "message"), [
    ("[left]", "2 to 16 camera namespaces, got 1"),
    (",".join(f"c{i}" for i in range(MAX_CAMERAS + 1)), "got 17"),
    ("[left, left]", "listed twice"),
    ("[left, /left]", "listed twice"),
    ("[left, 2nd]", "'2nd' is not a topic namespace"),
    ("[left, right", "not a list"),
    ("[left, [a, b]]", "not a list of namespaces"),
    ("left,,right", "'' is not a topic namespace"),
])
def test_bad_camera_lists_give_one_clear_line(text, message):
    with pytest.raises(ValueError, match="launch argument cameras") as err:
        camera_namespaces(text, "cam0", "cam1")
    assert message in str(err.value) and "\n" not in str(err.value)
