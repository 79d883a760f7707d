"""Videos of a calibrated multi-camera recording -> per-camera coco17 detections (with an .npz cache).

`find_videos` lists a folder's videos, `match_cameras` pairs them with calibration cameras, `detect_videos` runs a
`cvpose_ros.detection` backend over every frame (BGR -> RGB, the node's post-processing, best person only) and
`load_or_detect` keeps the result in an .npz keyed by the videos' names and sizes so re-runs skip the detector.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from cvpose_ros.body.skeleton import COCO17
from cvpose_ros.calibration import CalibratedCamera
from cvpose_ros.detection import DetectorBackend, finalize

VIDEO_SUFFIXES = (".mp4", ".avi")
BackendSource = DetectorBackend | Callable[[], DetectorBackend]


def find_videos(folder: str | Path) -> list[Path]:
    """The folder's *.mp4 / *.avi files, sorted by name; ValueError if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--videos {folder}: not a directory")
    videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise ValueError(f"--videos {folder}: no {'/'.join(VIDEO_SUFFIXES)} files")
    return videos


def match_cameras(videos: Sequence[Path], cameras: Sequence[CalibratedCamera]) -> list[CalibratedCamera]:
    """The calibration camera of each video: by name when every video stem names a camera, else in order."""
    by_name = {cam.name: cam for cam in cameras}
    if all(v.stem in by_name for v in videos):
        return [by_name[v.stem] for v in videos]
    if len(videos) != len(cameras):
        raise ValueError(f"{len(videos)} videos but {len(cameras)} calibrated cameras "
                         f"({', '.join(c.name for c in cameras)}), and the video names do not match camera names")
    return list(cameras)


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """RGB frames (H, W, 3) uint8 of a video file; OSError if OpenCV cannot open it."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise OSError(f"cannot open video {path}")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()


def detect_video(path: Path, backend: DetectorBackend, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """coco17 keypoints (T, 17, 2) pixels and confidence (T, 17) of the best person per frame (NaN / 0 if none)."""
    keypoints, confidence = [], []
    bar = tqdm(total=_frame_count(path) or None, desc=path.name, unit="frame", disable=not progress, leave=False)
    for rgb in read_frames(path):
        found = finalize(backend.detect(rgb), rgb.shape[1], rgb.shape[0], "coco17", max_people=1)
        if found.num_people:
            keypoints.append(found.keypoints[0].astype(np.float64))
            confidence.append(found.confidence[0].astype(np.float64))
        else:
            keypoints.append(np.full((COCO17.num_joints, 2), np.nan))
            confidence.append(np.zeros(COCO17.num_joints))
        bar.update()
    bar.close()
    if not keypoints:
        raise OSError(f"video {path} has no readable frames")
    return np.stack(keypoints), np.stack(confidence)


def detect_videos(video_paths: Sequence[str | Path], backend: BackendSource,
                  progress: bool = True) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-camera coco17 keypoints (T, 17, 2) and confidence (T, 17) of every video.

    backend: one `DetectorBackend` used for all videos, or a factory called once per video (a tracking backend
    such as MediaPipe's must start fresh on every video).
    """
    keypoints, confidence = [], []
    for path in video_paths:
        own = not isinstance(backend, DetectorBackend)
        detector = backend() if own else backend
        try:
            kp, conf = detect_video(Path(path), detector, progress)
        finally:
            if own:
                detector.close()
        keypoints.append(kp)
        confidence.append(conf)
    return keypoints, confidence


def cache_key(video_paths: Sequence[str | Path], detector_name: str) -> str:
    """What a cache must match: the detector and each video's file name and size."""
    return json.dumps({"detector": detector_name,
                       "videos": [[Path(p).name, Path(p).stat().st_size] for p in video_paths]})


def load_or_detect(video_paths: Sequence[str | Path], backend: BackendSource, detector_name: str,
                   cache: str | Path | None = None, progress: bool = True) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`detect_videos`, read from / written to the .npz `cache` when given (a cache of other videos is redone)."""
    key = cache_key(video_paths, detector_name)
    cache = Path(cache) if cache else None
    if cache is not None and cache.is_file():
        try:
            with np.load(cache) as data:
                if str(data["key"]) == key:
                    n = len(video_paths)
                    return [data[f"keypoints_{i}"] for i in range(n)], [data[f"confidence_{i}"] for i in range(n)]
        except (OSError, KeyError, ValueError) as exc:
            print(f"cvpose-eval: ignoring unreadable detections cache {cache}: {exc}")
    keypoints, confidence = detect_videos(video_paths, backend, progress)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"keypoints_{i}": k for i, k in enumerate(keypoints)}
        arrays.update({f"confidence_{i}": c for i, c in enumerate(confidence)})
        with cache.open("wb") as handle:
            np.savez_compressed(handle, key=np.array(key), **arrays)
    return keypoints, confidence
