"""JPEG decoding at reduced size against a full decode, in the same process (the detector's `decode_scale`).

For each size (default 1920x1080 and 1280x720) one JPEG of the frames bench_images.py's camera publishes
(cvpose_ros.ros.image_source.textured_frames, quality 90) is decoded, round robin so that load changes hit every
variant alike:
- `decode`: cv2.imdecode alone, in full and at 1/2, 1/4, 1/8;
- `to network`: what the detector does before a YOLO-pose network of 640x640 input: decode, BGR -> RGB,
  letterbox warp and normalisation (cvpose_ros.detection.onnx_codecs), in full and at the factor `decode_scale: 0`
  picks for that model.
Median and 90th percentile in ms and the ratio full / reduced (median). The machine and its load average are
printed beside the table.

    python bench/bench_jpeg_decode.py [--runs 40] [--sizes 1920x1080 1280x720] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

import cv2
import numpy as np

from cvpose_ros.detection import onnx_codecs as codecs
from cvpose_ros.detection.reduced_decode import AUTO, pick_factor
from cvpose_ros.ros.image_source import textured_frames

FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
         8: cv2.IMREAD_REDUCED_COLOR_8}
NETWORK_INPUT = (640, 640)


def to_network(buffer: np.ndarray, factor: int) -> np.ndarray:
    """Decode at 1/factor and prepare the (1, 3, 640, 640) YOLO-pose input, as the detector node does."""
    rgb = cv2.cvtColor(cv2.imdecode(buffer, FLAGS[factor]), cv2.COLOR_BGR2RGB)
    transform = codecs.letterbox_transform((rgb.shape[1], rgb.shape[0]), NETWORK_INPUT)
    return codecs.warp_to_input(rgb, transform, NETWORK_INPUT, (0.0,) * 3, (255.0,) * 3, codecs.YOLO_PAD_VALUE)


def cases_for(buffer: np.ndarray, auto: int) -> dict[str, Callable[[], object]]:
    """The timed variants for one JPEG: decode alone at every factor, and the path to the network in full and at
    the auto factor."""
    cases: dict[str, Callable[[], object]] = {
        f"decode 1/{f}": (lambda f=f: cv2.imdecode(buffer, FLAGS[f])) for f in FLAGS}
    cases["to network 1/1"] = lambda: to_network(buffer, 1)
    if auto > 1:
        cases[f"to network 1/{auto}"] = lambda: to_network(buffer, auto)
    return cases


def round_robin(cases: dict[str, Callable[[], object]], runs: int, warmup: int = 3) -> dict[str, list[float]]:
    """Milliseconds per call of each case, the cases interleaved run by run."""
    for function in cases.values():
        for _ in range(warmup):
            function()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, function in cases.items():
            start = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="timed calls per variant (default 40)")
    parser.add_argument("--sizes", nargs="+", default=["1920x1080", "1280x720"])
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    load_before = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
          f"Python {platform.python_version()}, OpenCV {cv2.__version__}, cv2 threads {cv2.getNumThreads()}; "
          f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    rows = []
    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        frame = textured_frames(width, height, count=1)[0]
        buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        limit = 1.0 / codecs.letterbox_transform((width, height), NETWORK_INPUT).scale
        auto = pick_factor(AUTO, limit)
        times = round_robin(cases_for(buffer, auto), args.runs)
        for name, values in times.items():
            baseline = times["decode 1/1" if name.startswith("decode") else "to network 1/1"]
            rows.append({"size": size, "kb": round(buffer.size / 1024), "case": name,
                         "median_ms": float(np.median(values)), "p90_ms": float(np.percentile(values, 90)),
                         "ratio": float(np.median(baseline) / np.median(values)), "auto_factor": auto})
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {args.runs} runs each")
    print("| size | KB | case | median ms | p90 ms | speed-up (full / this) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['size']} | {row['kb']} | {row['case']} | {row['median_ms']:.2f} | {row['p90_ms']:.2f} | "
              f"{row['ratio']:.2f} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"load_before": load_before, "load_after": load_after, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
