"""What the node needs from a calibration: a parameter YAML with each camera's pose and a camera_info YAML each."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from cvpose_ros.calibration.rotation import rotation_to
from cvpose_ros.calibration.types import CalibratedCamera
from cvpose_ros.geometry.camera import RigidTransform


def poses_in_reference(cameras: Sequence[CalibratedCamera], reference: int | None) -> list[RigidTransform]:
    """Each camera's optical frame pose in the reference (ref_from_cam): the calibration's world frame when
    `reference` is None, else the optical frame of camera `reference`."""
    world_from_ref = RigidTransform.identity() if reference is None else cameras[reference].cam_from_world.inverse()
    ref_from_world = world_from_ref.inverse()
    return [ref_from_world.compose(cam.cam_from_world.inverse()) for cam in cameras]


def refiner_parameters_yaml(cameras: Sequence[CalibratedCamera], pair: Sequence[int], reference_frame: str = "",
                            frame_ids: Sequence[str] | None = None, source: str = "") -> str:
    """Parameter file for the refiner node (extrinsics_source: parameters) for cameras `pair` of `cameras` (two, or
    more: then the node's `cameras` list, cam0 ... camN-1, is written too).

    `reference_frame` "" puts the reference at the first camera of the pair (as the node does by default);
    a name puts it at the calibration's world frame under that name.
    """
    first = pair[0]
    frame_ids = tuple(frame_ids) if frame_ids is not None else ("",) * len(pair)
    poses = poses_in_reference(cameras, first if not reference_frame else None)
    params: dict = {"reference_frame": reference_frame, "extrinsics_source": "parameters"}
    if len(pair) > 2:
        params["cameras"] = [f"cam{slot}" for slot in range(len(pair))]
    for slot, (index, frame_id) in enumerate(zip(pair, frame_ids, strict=True)):
        pose = poses[index]
        params[f"cam{slot}"] = {"frame_id": frame_id, "translation": [round(float(x), 9) for x in pose.t],
                                "rotation": [round(float(x), 12) for x in rotation_to(pose.R, "quaternion")]}
    header = (f"# Refiner extrinsics written by cvpose-calib{f' from {source}' if source else ''}.\n"
              f"# {', '.join(f'cam{slot} = {cameras[i].name}' for slot, i in enumerate(pair))}: each camera's optical "
              "frame in "
              f"{reference_frame or 'cam0'} (x y z metres; quaternion x y z w).\n"
              "# Use with: ros2 run cvpose_ros refiner_node --ros-args --params-file config/refiner.yaml "
              "--params-file THIS_FILE\n")
    return header + yaml.safe_dump({"/**": {"ros__parameters": params}}, sort_keys=False, default_flow_style=None)
