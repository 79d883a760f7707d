"""Demo source node: two cameras' camera_info and 2D keypoints of procedural people moving through a room.

Stands in for two cameras plus a 2D detector so the refiner node can run with nothing but this package: the people
and rig come from `cvpose_ros.devtools.synthetic`, the detector errors from `cvpose_ros.devtools.noise`. Also publishes
the ground truth (`ground_truth`, Skeleton3DArray in the `world` frame) and the camera poses on `/tf_static`.
Console script: `scene_publisher`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage

from cvpose_ros.body.skeleton import LAYOUTS
from cvpose_ros.devtools import synthetic
from cvpose_ros.param_spec import ParameterError, ParamSpec
from cvpose_ros.ros.conversions import keypoints_to_msg, ns_to_stamp, skeletons_to_msg
from cvpose_ros.ros.entry import run_node
from cvpose_ros.ros.param_kit import LiveParameters
from cvpose_ros.ros.tf import TF_STATIC_QOS, static_camera_transforms

WORLD_FRAME = "world"

# The demo source's parameters; all fixed at start-up (the scene is generated once).
PARAMETERS: dict[str, ParamSpec] = {
    "num_people": ParamSpec(3, "People in the room.", (1, 50), restart=True),
    "duration": ParamSpec(60.0, "Length (s) of the generated motion; it loops.", (0.1, 3600.0), restart=True),
    "rate": ParamSpec(30.0, "Frames per second published for each camera.", (0.1, 1000.0), restart=True),
    "rig": ParamSpec("demo", "Camera rig: demo | wide | narrow | random.", restart=True),
    "noise": ParamSpec("cpn_like", "Detector noise preset: clean | light | cpn_like | heavy | detector | "
                                   "detector_light.", restart=True),
    "layout": ParamSpec("h36m17", "Keypoint layout published (and of the ground truth): h36m17 | coco17.",
                        restart=True),
    "seed": ParamSpec(0, "Seed of the motion, rig (random) and noise.", (0, 2**31 - 1), restart=True),
    "publish_track_ids": ParamSpec(False, "Give keypoints the true person ids (else -1: the refiner associates "
                                          "views).", restart=True),
    "publish_ground_truth": ParamSpec(True, "Publish the true 3D joints on ground_truth (world frame).",
                                      restart=True),
}


def _validate(values: dict) -> dict:
    if values["layout"] not in LAYOUTS:
        raise ParameterError(f"scene_publisher: layout must be one of {sorted(LAYOUTS)}, got {values['layout']!r}")
    return values


def extrinsics_parameters(rig: synthetic.Rig, reference_frame: str = WORLD_FRAME) -> dict[str, object]:
    """Refiner node parameters that place the rig's cameras in `reference_frame` (the world of the scene)."""
    params: dict[str, object] = {"reference_frame": reference_frame, "extrinsics_source": "parameters"}
    for i, cam in enumerate(rig.cameras):
        pose = cam.cam_from_world.inverse()
        params[f"cam{i}.translation"] = [float(v) for v in pose.t]
        params[f"cam{i}.rotation"] = [float(v) for v in pose.quaternion()]
        params[f"cam{i}.frame_id"] = cam.frame_id
    return params


class SceneNode(Node):
    """Publishes one synthetic frame per timer tick: camera_info + keypoints per camera, truth, static TF."""

    def __init__(self, name: str = "scene_publisher", **kwargs) -> None:
        super().__init__(name, **kwargs)
        p = LiveParameters(self, PARAMETERS, _validate).settings  # ParameterError (a ValueError) when invalid
        self.rig = synthetic.make_rig(p["rig"], seed=p["seed"])
        self.scene = synthetic.generate_scene(p["num_people"], p["duration"], p["rate"],
                                              seed=p["seed"]).in_layout(p["layout"])
        self.views = synthetic.project_scene(self.scene, self.rig, noise=p["noise"], seed=p["seed"])
        self.publish_track_ids = bool(p["publish_track_ids"])
        self.publish_ground_truth = bool(p["publish_ground_truth"])
        self._rng = np.random.default_rng(p["seed"] + 1)
        self.frame_index = 0
        self.frames_published = 0
        # Called after each published frame with (stamp_ns, frame index); the demo uses it to time the pipeline.
        self.on_frame: Callable[[int, int], None] | None = None

        self._infos = [self._camera_info(cam) for cam in self.rig.cameras]
        self._pub_info = [self.create_publisher(CameraInfo, f"cam{i}/camera_info", qos_profile_sensor_data)
                          for i in range(2)]
        self._pub_kp = [self.create_publisher(Keypoints2D, f"cam{i}/keypoints", qos_profile_sensor_data)
                        for i in range(2)]
        self._pub_truth = self.create_publisher(Skeleton3DArray, "ground_truth", QoSProfile(depth=50))
        self._pub_static = self.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        self._pub_static.publish(static_camera_transforms(
            self.get_clock().now().nanoseconds, WORLD_FRAME,
            [(cam.frame_id, cam.cam_from_world.inverse()) for cam in self.rig.cameras]))
        self._timer = self.create_timer(1.0 / p["rate"], self.publish_frame)
        self.get_logger().info(
            f"{p['num_people']} people, rig {p['rig']}, noise {p['noise']}, {p['rate']:.0f} Hz; refiner parameters "
            f"for this rig: {extrinsics_parameters(self.rig)}")

    def pause(self) -> None:
        """Stop publishing frames (the demo starts once every node is connected)."""
        self._timer.cancel()

    def resume(self) -> None:
        self._timer.reset()

    @staticmethod
    def _camera_info(cam: synthetic.RigCamera) -> CameraInfo:
        fields = synthetic.camera_info_fields(cam)
        msg = CameraInfo(width=fields["width"], height=fields["height"], distortion_model=fields["distortion_model"],
                         d=fields["d"], k=fields["k"], r=fields["r"], p=fields["p"])
        msg.header.frame_id = fields["frame_id"]
        return msg

    def publish_frame(self) -> None:
        """Publish the next frame stamped with the node clock (sim time when use_sim_time is set)."""
        t = self.frame_index % self.scene.num_frames
        stamp_ns = self.get_clock().now().nanoseconds
        for i, (cam, view) in enumerate(zip(self.rig.cameras, self.views, strict=True)):
            info = self._infos[i]
            info.header.stamp = ns_to_stamp(stamp_ns)
            self._pub_info[i].publish(info)
            people = np.flatnonzero(view.visible[t])
            people = people[self._rng.permutation(len(people))]  # detectors list people in no particular order
            ids = self.scene.track_ids[people] if self.publish_track_ids else None
            self._pub_kp[i].publish(keypoints_to_msg(stamp_ns, cam.frame_id, view.keypoints[t, people],
                                                     view.confidence[t, people], ids, layout=self.scene.layout))
        if self.publish_ground_truth:
            joints = self.scene.joints[t]
            self._pub_truth.publish(skeletons_to_msg(stamp_ns, WORLD_FRAME, self.scene.track_ids, joints,
                                                     np.ones(joints.shape[:2]), np.zeros(len(joints)),
                                                     self.scene.layout))
        self.frame_index += 1
        self.frames_published += 1
        if self.on_frame is not None:
            self.on_frame(stamp_ns, t)


def main(args: list[str] | None = None) -> int:
    """Entry point of `scene_publisher` (ROS arguments such as `--ros-args -p num_people:=2` apply)."""
    return run_node(SceneNode, "scene_publisher: ", (ValueError,), args, error_status=2)


if __name__ == "__main__":
    sys.exit(main())
