"""Detector time per image per backend on this machine (CPU unless --device says otherwise).

Measures, after warm-up, the median and 90th percentile of `backend.detect()` plus post-processing for:
- MediaPipe BlazePose full on a real photo (scikit-image's astronaut, 512 x 512), per image and in tracking mode;
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


def bench_mediapipe(runs: int, results: list[dict]) -> None:
    if importlib.util.find_spec("mediapipe") is None:
        print("mediapipe not installed: skipped (pip install 'cvpose_ros[mediapipe]')")
        return
    from skimage import data

    photo = data.astronaut()
    for tracking in (False, True):
        with create_backend("mediapipe", tracking=tracking) as backend:
            median, p90 = time_ms(detect_and_finalize(backend, photo), runs)
        label = "tracking (video)" if tracking else "per image (detector + landmarks)"
        results.append({"backend": "mediapipe", "model": f"BlazePose full, {label}", "image": "512x512 photo",
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
    bench_onnx(args.runs, args.device, results, args.model)
    bench_conversion(args.runs, results)
    print(f"machine: {machine()}")
    print(f"{'backend':<14} {'model / case':<62} {'image':<13} {'median ms':>9} {'p90 ms':>8}")
    for r in results:
        print(f"{r['backend']:<14} {r['model']:<62} {r['image']:<13} {r['median_ms']:>9.2f} {r['p90_ms']:>8.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
