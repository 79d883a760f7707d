"""The detector-error model next to a real detector, measured the same way on the same cameras.

Real: a detector's keypoints of a calibrated multi-camera recording (the `--detections-cache` of
`cvpose-eval --videos`). Synthetic: a procedural walker placed where the real person walks, seen by the same
cameras through a `cvpose_ros.devtools.noise` preset (per-view offsets fixed over the sequence, jitter, swaps). Both go
through `training.multiview`: lags, left/right swaps by consensus, and per camera and joint the detection minus the
projection of the OTHER cameras' triangulation: the fixed offset (mean over frames), the spread about it and the
frame-to-frame jitter, in pixels. Prints a table, writes JSON and markdown.

    python -m training.tools.noise_vs_real --calibration Calib.qca.txt --detections dets.npz --markdown out.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cvpose_ros.body.skeleton import COCO17
from cvpose_ros.calibration import CalibratedCamera, read_qualisys
from cvpose_ros.devtools.noise import apply_noise, get_preset, view_offsets_3d
from cvpose_ros.devtools.synthetic import generate_scene
from training.multiview import align, detect_swaps, detector_error_stats, estimate_lags, triangulate_views

CONFIDENT = 0.5


def real_detections(path: str | Path, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per camera (T, 17, 2) keypoints and (T, 17) confidence from a `cvpose-eval --detections-cache` file."""
    with np.load(path) as data:
        return ([data[f"keypoints_{i}"] for i in range(count)], [data[f"confidence_{i}"] for i in range(count)])


def synthetic_detections(cameras: list[CalibratedCamera], path_xy: np.ndarray, frames: int, fps: float, preset: str,
                         seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(V, T, 17, 2) keypoints and (V, T, 17) confidence of a coco17 walker moving along `path_xy` ((2, 2): start
    and end on the floor) through each camera with the noise preset (its 3D stage drawn once per camera)."""
    rng = np.random.default_rng(seed)
    scene = generate_scene(1, frames / fps + 0.5, fps, seed=seed, actions=("walk",)).in_layout("coco17")
    person = scene.joints[:frames, 0]  # (T, J, 3) z up
    root = COCO17.root_of(person)
    walked = root[-1, :2] - root[0, :2]
    wanted = path_xy[1] - path_xy[0]
    angle = np.arctan2(wanted[1], wanted[0]) - np.arctan2(walked[1], walked[0])
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    centred = person - np.array([*root[:, :2].mean(axis=0), 0.0])
    world = centred @ rot.T + np.array([*path_xy.mean(axis=0), 0.0])
    cfg = get_preset(preset)
    pixels, conf = [], []
    for cam in cameras:
        seen = view_offsets_3d(cam.cam_from_world.apply(world), cfg, rng, "coco17", fixed_shape=())
        exact = cam.model.project(seen)
        noisy, confidence = apply_noise(exact, cfg, rng, (cam.model.width, cam.model.height), layout="coco17")
        pixels.append(noisy)
        conf.append(confidence)
    return np.stack(pixels), np.stack(conf)


def measure(cameras: list[CalibratedCamera], pixels: list[np.ndarray], confidence: list[np.ndarray],
            max_lag: int) -> dict:
    """Lags, swaps and leave-one-out detector error statistics of one recording."""
    lags, _ = estimate_lags(cameras, pixels, confidence, max_lag, CONFIDENT)
    pix, conf = np.stack(align(pixels, lags)), np.stack(align(confidence, lags))
    swaps = detect_swaps(cameras, pix, conf, CONFIDENT)
    stats = detector_error_stats(cameras, pix, conf, swaps.consensus, swaps.swapped, CONFIDENT)
    return {"lags": [int(x) for x in lags], "frames": int(pix.shape[1]), "cameras": stats,
            "per_joint": _pooled_joints(stats)}


def _pooled_joints(stats: dict) -> dict:
    """Per joint: mean over cameras of |offset|, spread and jitter (px)."""
    out = {}
    for name in COCO17.joint_names:
        rows = [cam["joints"][name] for cam in stats.values() if "offset_norm_px" in cam["joints"][name]]
        if rows:
            out[name] = {key: float(np.mean([r[key] for r in rows if r.get(key) is not None]))
                         for key in ("offset_norm_px", "spread_px", "jitter_px")}
    return out


def markdown(real: dict, synthetic: dict, preset: str) -> str:
    """Side-by-side tables: per camera and per joint, real detector vs the synthetic preset."""
    lines = [f"| camera | real: height px | median err px | mean abs offset px | spread px | swapped | "
             f"'{preset}': median err px | abs offset px | spread px | swapped |", "|---" * 10 + "|"]
    for name, r in real["cameras"].items():
        s = synthetic["cameras"][name]
        lines.append(f"| {name} | {r['person_height_px']:.0f} | {r['median_error_px']:.1f} | "
                     f"{r['mean_offset_norm_px']:.1f} | {r['mean_spread_px']:.1f} | {r['swap_share']:.0%} | "
                     f"{s['median_error_px']:.1f} | {s['mean_offset_norm_px']:.1f} | {s['mean_spread_px']:.1f} | "
                     f"{s['swap_share']:.0%} |")
    lines += ["", f"| joint | real: abs offset px | spread px | jitter px | '{preset}': abs offset px | spread px | "
                  "jitter px |", "|---|---|---|---|---|---|---|"]
    for name in COCO17.joint_names:
        r, s = real["per_joint"].get(name), synthetic["per_joint"].get(name)
        if r and s:
            lines.append(f"| {name} | {r['offset_norm_px']:.1f} | {r['spread_px']:.1f} | {r['jitter_px']:.1f} | "
                         f"{s['offset_norm_px']:.1f} | {s['spread_px']:.1f} | {s['jitter_px']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="noise_vs_real", description=__doc__.split("\n\n")[0])
    ap.add_argument("--calibration", required=True, help="Qualisys calibration of the recording")
    ap.add_argument("--detections", required=True, help="detections cache written by cvpose-eval --videos")
    ap.add_argument("--noise", default="detector", help="noise preset to compare (default detector)")
    ap.add_argument("--fps", type=float, default=60.0, help="frame rate of the recording")
    ap.add_argument("--max-lag", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    args = ap.parse_args(argv)
    try:
        cameras = read_qualisys(args.calibration)
        pixels, confidence = real_detections(args.detections, len(cameras))
        real = measure(cameras, pixels, confidence, args.max_lag)
        pix = np.stack(align(pixels, real["lags"]))
        everyone = triangulate_views(cameras, pix, np.stack(align(confidence, real["lags"])), CONFIDENT)
        root = COCO17.root_of(everyone)[:, :2]
        root = root[np.isfinite(root).all(axis=1)]
        path_xy = np.stack([root[:5].mean(axis=0), root[-5:].mean(axis=0)])
        synth_pix, synth_conf = synthetic_detections(cameras, path_xy, real["frames"], args.fps, args.noise,
                                                     args.seed)
        synthetic = measure(cameras, list(synth_pix), list(synth_conf), args.max_lag)
    except (OSError, ValueError, KeyError) as exc:
        print(f"noise_vs_real: error: {exc}", file=sys.stderr)
        return 2
    table = markdown(real, synthetic, args.noise)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"real": real, "synthetic": synthetic, "preset": args.noise}, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
