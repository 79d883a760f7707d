"""Camera calibration for the refiner node: cached camera_info per camera plus extrinsics from one of three sources.

- `parameters`: each camera's pose in the reference frame from node parameters (the node also owns the static TF);
- `camera_info`: a rectified stereo pair (R = I, baseline from the right camera's projection matrix P; the
  keypoints are then expected on rectified images, so the models use P's intrinsics without distortion);
- `tf`: looked up with tf2_ros at the frame's own stamp (waiting up to `tf_timeout` for it; only when tf2_ros is
  importable, the node refuses to start otherwise), so moving cameras or a `map` reference frame place each
  skeleton where the cameras were when the images were taken.

Lens models are rebuilt only when a camera's camera_info content changes (latest message wins). With three or
more cameras (`setup_rig`) a frame uses the cameras present in it that have a usable camera_info; the others are
reported and left out while at least two remain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo

from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.pipeline.frame_processor import CameraSetup, RigSetup
from cvpose_ros.pipeline.view_input import FrameError, Problem
from cvpose_ros.ros.conversions import camera_model_from_info, stereo_translation_from_info
from cvpose_ros.ros.params import RefinerParams


class ExtrinsicsUnavailable(RuntimeError):
    """The configured extrinsics source cannot work in this installation (e.g. tf2_ros missing)."""


def _info_key(msg: CameraInfo) -> tuple:
    return (tuple(msg.k), tuple(msg.d), msg.distortion_model, tuple(msg.p), msg.width, msg.height)


def _transform_from_tf(tf_msg: Any) -> RigidTransform:
    tr, rot = tf_msg.transform.translation, tf_msg.transform.rotation
    return RigidTransform.from_quaternion([rot.x, rot.y, rot.z, rot.w], [tr.x, tr.y, tr.z])


class CalibrationCache:
    """Latest camera_info of each camera and the resulting `CameraSetup` for a frame."""

    def __init__(self, params: RefinerParams, tf_buffer: Any | None = None) -> None:
        self.params = params
        self.rectified = params.extrinsics_source == "camera_info"
        count = len(params.reference_from_cams)
        self._infos: list[CameraInfo | None] = [None] * count
        self._keys: list[tuple | None] = [None] * count
        self._models: list[CameraModel | FrameError | None] = [None] * count
        self._tf_buffer = tf_buffer
        if params.extrinsics_source == "tf" and tf_buffer is None:
            raise ExtrinsicsUnavailable("extrinsics_source=tf needs tf2_ros, which is not importable here; "
                                        "use extrinsics_source=parameters (or install tf2_ros)")
        ref0 = params.reference_from_cams[0]
        self._param_cam_from_cam0 = tuple(ref.inverse().compose(ref0) for ref in params.reference_from_cams)
        self._param_cam1_from_cam0 = self._param_cam_from_cam0[1]

    def update(self, camera: int, msg: CameraInfo) -> FrameError | None:
        """Store camera `camera`'s latest camera_info; returns the error when it is unusable (also remembered)."""
        key = _info_key(msg)
        if key == self._keys[camera]:
            return self._models[camera] if isinstance(self._models[camera], FrameError) else None
        self._infos[camera], self._keys[camera] = msg, key
        try:
            self._models[camera] = camera_model_from_info(msg, rectified=self.rectified)
        except FrameError as err:
            self._models[camera] = err
            return err
        return None

    def setup(self, frame_ids: tuple[str, str], reference_frame: str, stamp_ns: int,
              timeout_s: float = 0.0) -> CameraSetup:
        """Lens models and poses for the frame stamped `stamp_ns`; raises FrameError naming what is missing or
        invalid. `timeout_s`: longest wait for a TF lookup (extrinsics_source=tf)."""
        models = []
        for camera, model in enumerate(self._models):
            if model is None:
                raise FrameError(Problem.NO_CAMERA_INFO, f"no camera_info received yet for cam{camera}")
            if isinstance(model, FrameError):
                raise FrameError(model.problem, f"cam{camera}: {model}")
            models.append(model)
        source = self.params.extrinsics_source
        ref_from_cam0 = self.params.reference_from_cams[0]
        if source == "parameters":
            cam1_from_cam0 = self._param_cam1_from_cam0
        elif source == "camera_info":
            cam1_from_cam0 = RigidTransform(np.eye(3), stereo_translation_from_info(self._infos[1]))
        else:
            ref_from_cam0, ref_from_cam1 = (self._lookup(reference_frame, f, stamp_ns, timeout_s)
                                            for f in frame_ids)
            cam1_from_cam0 = ref_from_cam1.inverse().compose(ref_from_cam0)
        if np.linalg.norm(cam1_from_cam0.t) < 1e-6:
            raise FrameError(Problem.INVALID_CALIBRATION, "the two cameras coincide (zero baseline)")
        return CameraSetup(models[0], models[1], cam1_from_cam0, ref_from_cam0)

    def setup_rig(self, frame_ids: tuple[str | None, ...], reference_frame: str, stamp_ns: int,
                  timeout_s: float = 0.0) -> tuple[RigSetup, list[FrameError]]:
        """Three or more cameras: lens models (None for a camera left out) and poses for the frame stamped
        `stamp_ns`. `frame_ids[i]` None: camera i is not in the frame. A present camera without a usable camera_info
        is left out and its error returned; FrameError when fewer than two cameras remain."""
        models: list[CameraModel | None] = [None] * len(frame_ids)
        errors: list[FrameError] = []
        for camera, (frame_id, model) in enumerate(zip(frame_ids, self._models, strict=True)):
            if frame_id is None:
                continue
            if model is None:
                errors.append(FrameError(Problem.NO_CAMERA_INFO, f"no camera_info received yet for cam{camera}"))
            elif isinstance(model, FrameError):
                errors.append(FrameError(model.problem, f"cam{camera}: {model}"))
            else:
                models[camera] = model
        if sum(m is not None for m in models) < 2:
            if errors:
                raise errors[0]
            raise FrameError(Problem.NO_CAMERA_INFO, "fewer than two cameras with camera_info in the frame")
        ref_from_cam0 = self.params.reference_from_cams[0]
        if self.params.extrinsics_source == "parameters":
            cam_from_cam0 = self._param_cam_from_cam0
        else:  # tf: every camera in the frame at its stamp; camera 0 anchors the rig even when it is left out
            frame0 = frame_ids[0] or self.params.frame_ids[0] or "cam0_optical_frame"
            ref_from_cam0 = self._lookup(reference_frame, frame0, stamp_ns, timeout_s)
            cam_from_cam0 = tuple(
                RigidTransform.identity() if c == 0 or models[c] is None else
                self._lookup(reference_frame, f, stamp_ns, timeout_s).inverse().compose(ref_from_cam0)
                for c, f in enumerate(frame_ids))
        return RigSetup(tuple(models), tuple(cam_from_cam0), ref_from_cam0), errors

    def _lookup(self, target: str, source: str, stamp_ns: int, timeout_s: float) -> RigidTransform:
        """reference_from_camera from tf2 at exactly `stamp_ns` (tf2 interpolates between its samples), waiting up
        to `timeout_s` for it; never the latest transform, which would misplace skeletons by speed x latency."""
        if target == source:
            return RigidTransform.identity()
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            return _transform_from_tf(self._tf_buffer.lookup_transform(
                target, source, Time(nanoseconds=stamp_ns), Duration(nanoseconds=int(timeout_s * 1e9))))
        except Exception as exc:  # tf2 raises several exception types (lookup, connectivity, extrapolation)
            raise FrameError(Problem.NO_TRANSFORM, f"no TF from {target} to {source} at {stamp_ns / 1e9:.6f} s "
                                                   f"within {timeout_s} s: {exc}") from exc
