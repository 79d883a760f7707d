"""Detector time per image per backend on this machine (CPU unless --device says otherwise).

Measures, after warm-up, the median and 90th percentile of `backend.detect()` plus post-processing for:
- MediaPipe BlazePose full on a real photo (scikit-image's astronaut, 512 x 512) and on 3 copies side by side,
  per image and in tracking mode, against the single-person setting in the same process (ratio);
- the 2D tracker's update for 3 people;
- ONNX Runtime with the tiny test models and with random-weight networks of realistic size
  (RTMPose-like SimCC at 256 x 192, YOLO-pose-n-like at 640 x 640), on a 640 x 480 image;
- image conversion: raw rgb8/bgr8 messages and JPEG decoding at 640 x 480 and 1280 x 720.
Usage: python bench/bench_detector.py [--runs 20] [--device cpu|cuda] [--model my.onnx] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from cvpose_ros.detection import create_backend, finalize
from cvpose_ros.detection.image_conversion import ImageConverter
from cvpose_ros.detection.synthetic_models import (
    conv_pose_model,
    simcc_probe_model,
    yolo_pose_constant_model,
)


def time_ms(function: Callable[[], object], runs: int, warmup: int = 3) -> tuple[float, float]:
    """Median and 90th percentile wall time of `function` in milliseconds."""
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples), float(np.percentile(samples, 90))


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def detect_and_finalize(backend, image: np.ndarray) -> Callable[[], object]:
    height, width = image.shape[:2]
    return lambda: finalize(backend.detect(image), width, height, "coco17", 0.3)


def tiled_photo(photo: np.ndarray, people: int) -> np.ndarray:
    """`people` copies of the photo side by side (every other one mirrored) with grey gaps of half a photo."""
    gap = np.full((photo.shape[0], photo.shape[1] // 2, 3), 127, np.uint8)
    tiles = [part for i in range(people) for part in ((photo[:, ::-1] if i % 2 else photo), gap)][:-1]
    return np.ascontiguousarray(np.concatenate(tiles, axis=1))


def bench_mediapipe(runs: int, results: list[dict]) -> None:
    """Single-person baseline (1 pose, whole image, one pass) against the multi-person defaults at 1 and 3
    people, still images and video; ratio = time / baseline time, measured in this process."""
    if importlib.util.find_spec("mediapipe") is None:
        print("mediapipe not installed: skipped (pip install 'cvpose_ros[mediapipe]')")
        return
    from skimage import data

    photo = data.astronaut()
    single = {"num_poses": 1, "window_aspect": 0.0, "rescan": False}
    cases = [("single-person baseline (1 pose, whole image, one pass)", single, 1),
             ("multi-person defaults", {}, 1), ("multi-person defaults", {}, 3)]
    for tracking in (False, True):
        mode = "video" if tracking else "per image"
        baseline = None
        for label, options, people in cases:
            image = photo if people == 1 else tiled_photo(photo, people)
            with create_backend("mediapipe", tracking=tracking, **options) as backend:
                found = backend.detect(image).num_people
                median, p90 = time_ms(detect_and_finalize(backend, image), runs)
            baseline = baseline or median
            results.append({"backend": "mediapipe", "model": f"BlazePose full, {label}, {mode}",
                            "image": f"{image.shape[1]}x{image.shape[0]} {people}p", "median_ms": median,
                            "p90_ms": p90, "ratio": median / baseline, "people_found": found})


def bench_tracker(runs: int, results: list[dict]) -> None:
    """PersonTracker.update for 3 people walking (17 joints), per frame."""
    from cvpose_ros.detection.tracking import PersonTracker

    rng = np.random.default_rng(0)
    template = rng.uniform(0, 300, (17, 2))
    tracker, step = PersonTracker(), [0]

    def update() -> None:
        step[0] += 1
        people = np.stack([template + [400 * k + 2 * step[0], 50] for k in range(3)])
        tracker.update(people + rng.normal(0, 2, people.shape), np.ones((3, 17)))

    median, p90 = time_ms(update, max(runs, 50))
    results.append({"backend": "tracking", "model": "PersonTracker.update, 3 people", "image": "-",
                    "median_ms": median, "p90_ms": p90})


def bench_onnx(runs: int, device: str, results: list[dict], user_model: Path | None = None) -> None:
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        rows = np.zeros((56, 8400), np.float32)
        rows[4, :3] = 0.9
        rows[:4, :3] = [[100, 300, 500], [200, 200, 200], [80, 80, 80], [300, 300, 300]]
        models = [
            ("tiny SimCC probe (test model)", simcc_probe_model(folder / "simcc_probe.onnx"), None),
            ("tiny YOLO-pose constant (test model), 3 people", yolo_pose_constant_model(folder / "y.onnx", rows), None),
        ]
        path, gmac = conv_pose_model(folder / "rtm_like.onnx", "simcc", (192, 256))
        models.append((f"RTMPose-like SimCC 256x192, random weights, {gmac:.2f} GMAC", path, gmac))
        path, gmac = conv_pose_model(folder / "yolo_like.onnx", "yolo_pose", (640, 640), widths=(32, 64, 128))
        models.append((f"YOLO-pose-n-like 640x640, random weights, {gmac:.2f} GMAC", path, gmac))
        if user_model is not None:
            models.append((f"{user_model.name} (user model)", user_model, None))
        for label, path, _ in models:
            backend = create_backend("onnx", model_path=str(path), device=device)
            median, p90 = time_ms(detect_and_finalize(backend, image), runs)
            results.append({"backend": f"onnx ({device})", "model": label, "image": "640x480",
                            "median_ms": median, "p90_ms": p90})


def bench_conversion(runs: int, results: list[dict]) -> None:
    converter = ImageConverter(use_cv_bridge=False)
    for width, height in ((640, 480), (1280, 720)):
        image = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
        for encoding in ("rgb8", "bgr8"):
            msg = SimpleNamespace(height=height, width=width, encoding=encoding, step=width * 3,
                                  data=image.tobytes(), is_bigendian=0)
            median, p90 = time_ms(lambda m=msg: converter.image_to_rgb(m), runs * 3)
            results.append({"backend": "conversion", "model": encoding, "image": f"{width}x{height}",
                            "median_ms": median, "p90_ms": p90})
        smooth = cv2.GaussianBlur(image, (0, 0), 3)  # a photo-like JPEG size
        jpeg = SimpleNamespace(format="jpeg", data=cv2.imencode(".jpg", smooth)[1].tobytes())
        median, p90 = time_ms(lambda m=jpeg: converter.compressed_to_rgb(m), runs * 3)
        results.append({"backend": "conversion", "model": "jpeg decode", "image": f"{width}x{height}",
                        "median_ms": median, "p90_ms": p90})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per case")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="ONNX Runtime device")
    parser.add_argument("--model", type=Path, help="also time this ONNX pose model (any supported export)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results: list[dict] = []
    bench_mediapipe(args.runs, results)
    bench_tracker(args.runs, results)
    bench_onnx(args.runs, args.device, results, args.model)
    bench_conversion(args.runs, results)
    print(f"machine: {machine()}")
    print(f"{'backend':<14} {'model / case':<76} {'image':<15} {'median ms':>9} {'p90 ms':>8} {'ratio':>6}")
    for r in results:
        ratio = f"{r['ratio']:>6.2f}" if "ratio" in r else f"{'':>6}"
        print(f"{r['backend']:<14} {r['model']:<76} {r['image']:<15} {r['median_ms']:>9.2f} {r['p90_ms']:>8.2f} "
              f"{ratio}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
