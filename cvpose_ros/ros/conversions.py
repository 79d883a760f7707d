"""Conversions between ROS messages and the numpy structures of the plain pipeline.

Only this module (and the other files of `cvpose_ros.ros`) touches message classes; everything it returns is plain
numpy so the logic behind it is tested without rclpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from cvpose_ros_msgs.msg import Keypoints2D, PersonKeypoints2D, Skeleton3D, Skeleton3DArray
from geometry_msgs.msg import Point
from sensor_msgs.msg import CameraInfo

from cvpose_ros.body.skeleton import get_layout
from cvpose_ros.geometry.camera import CameraModel, calibration_problem
from cvpose_ros.pipeline.sync import NS_PER_S
from cvpose_ros.pipeline.view_input import FrameError, PersonInput, Problem, ViewInput


def stamp_to_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds -> builtin_interfaces/Time."""
    return Time(sec=int(ns // NS_PER_S), nanosec=int(ns % NS_PER_S))


# ---------------------------------------------------------------------------------------------------------------
# Keypoints
def keypoints_from_msg(msg: Keypoints2D) -> ViewInput:
    """A Keypoints2D message as an unvalidated `ViewInput` (ragged per-person arrays)."""
    people = [PersonInput(track_id=int(p.track_id), x=np.asarray(p.x, np.float64), y=np.asarray(p.y, np.float64),
                          confidence=np.asarray(p.confidence, np.float64)) for p in msg.people]
    return ViewInput(stamp_ns=stamp_to_ns(msg.header.stamp), frame_id=msg.header.frame_id, layout=msg.layout,
                     people=people)


def keypoints_to_msg(stamp_ns: int, frame_id: str, pixels: np.ndarray, confidence: np.ndarray,
                     track_ids: Sequence[int] | None = None, layout: str = "h36m17") -> Keypoints2D:
    """Build a Keypoints2D from (P, J, 2) pixels and (P, J) confidence (used by tests, the bench and tools)."""
    pixels = np.asarray(pixels, np.float32)
    confidence = np.asarray(confidence, np.float32)
    ids = [-1] * len(pixels) if track_ids is None else [int(i) for i in track_ids]
    msg = Keypoints2D(layout=layout)
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.people = [PersonKeypoints2D(track_id=tid, x=px[:, 0].tolist(), y=px[:, 1].tolist(), confidence=c.tolist())
                  for tid, px, c in zip(ids, pixels, confidence, strict=True)]
    return msg


# ---------------------------------------------------------------------------------------------------------------
# Camera info
def _projection_matrix(msg: CameraInfo) -> np.ndarray:
    return np.asarray(msg.p, np.float64).reshape(3, 4)


def camera_model_from_info(msg: CameraInfo, rectified: bool = False) -> CameraModel:
    """CameraModel from CameraInfo; `rectified` uses P's intrinsics without distortion (rectified stereo images).

    Raises FrameError(INVALID_CALIBRATION) on zero/non-finite intrinsics, a zero image size or a calibration that
    cannot be a real camera's (`cvpose_ros.geometry.camera.calibration_problem`: focal lengths for the image size, a
    lens model that does not round-trip over the image), with the reason.
    """
    try:
        if rectified:
            P = _projection_matrix(msg)
            K = P[:, :3]
            return _checked_model(K, np.zeros(0), "none", msg.width, msg.height)
        K = np.asarray(msg.k, np.float64).reshape(3, 3)
        return _checked_model(K, np.asarray(msg.d, np.float64), msg.distortion_model or "none", msg.width,
                              msg.height)
    except FrameError:
        raise
    except Exception as exc:  # the camera module's own error type, or reshape errors on malformed arrays
        raise FrameError(Problem.INVALID_CALIBRATION, f"invalid camera_info: {exc}") from exc


def _checked_model(K: np.ndarray, dist: np.ndarray, model: str, width: int, height: int) -> CameraModel:
    if not (np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0 and np.isfinite(dist).all()):
        raise FrameError(Problem.INVALID_CALIBRATION, f"invalid camera_info: intrinsics {K.ravel().tolist()}")
    if width <= 0 or height <= 0:
        raise FrameError(Problem.INVALID_CALIBRATION, f"invalid camera_info: image size {width}x{height}")
    camera = CameraModel.from_camera_info(K.ravel(), dist, model, int(width), int(height))
    problem = calibration_problem(camera)
    if problem is not None:
        raise FrameError(Problem.INVALID_CALIBRATION, f"implausible camera_info: {problem}")
    return camera


def stereo_translation_from_info(right: CameraInfo) -> np.ndarray:
    """cam1_from_cam0 translation of a rectified stereo pair from the right camera's P (Tx = -fx * baseline)."""
    P = _projection_matrix(right)
    if not (P[0, 0] > 0 and P[1, 1] > 0 and np.isfinite(P).all()):
        raise FrameError(Problem.INVALID_CALIBRATION, "invalid camera_info: right projection matrix P")
    t = np.array([P[0, 3] / P[0, 0], P[1, 3] / P[1, 1], 0.0])
    if not np.any(t):
        raise FrameError(Problem.INVALID_CALIBRATION,
                         "camera_info extrinsics: the right camera's P has no baseline (P[0,3] = 0)")
    return t


# ---------------------------------------------------------------------------------------------------------------
# Skeletons
def skeletons_to_msg(stamp_ns: int, frame_id: str, track_ids: np.ndarray, joints: np.ndarray,
                     confidence: np.ndarray, reprojection_error: np.ndarray, layout: str = "h36m17") -> Skeleton3DArray:
    """Skeleton3DArray from ids (P,), joints (P, J, 3) metres (NaN = missing), confidence (P, J), error (P,), in the
    joint definition `layout` (named in the message's `layout` and `joint_names`)."""
    lay = get_layout(layout)
    msg = Skeleton3DArray(layout=lay.name, joint_names=list(lay.joint_names))
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    conf = np.where(np.isfinite(joints).all(axis=-1), np.nan_to_num(confidence), 0.0)
    msg.skeletons = [
        Skeleton3D(track_id=int(tid), joints=[Point(x=float(x), y=float(y), z=float(z)) for x, y, z in pose.tolist()],
                   confidence=c.astype(np.float32).tolist(), reprojection_error=float(err))
        for tid, pose, c, err in zip(track_ids, joints, conf, reprojection_error, strict=True)
    ]
    return msg


def skeletons_from_msg(msg: Skeleton3DArray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(track_ids (P,), joints (P, J, 3), confidence (P, J), reprojection_error (P,)) of a Skeleton3DArray."""
    ids = np.array([s.track_id for s in msg.skeletons], dtype=np.int64)
    joints = np.array([[(p.x, p.y, p.z) for p in s.joints] for s in msg.skeletons], dtype=np.float64)
    conf = np.array([list(s.confidence) for s in msg.skeletons], dtype=np.float64)
    err = np.array([s.reprojection_error for s in msg.skeletons], dtype=np.float64)
    if not msg.skeletons:
        joints, conf = np.zeros((0, len(msg.joint_names), 3)), np.zeros((0, len(msg.joint_names)))
    return ids, joints, conf, err
