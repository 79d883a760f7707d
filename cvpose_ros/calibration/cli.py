"""`cvpose-calib`: read a multi-camera calibration, check it, and write what the refiner node needs.

    cvpose-calib Calib.qca.txt --out calib/                 # any supported format, detected from the file
    cvpose-calib left.yaml right.yaml --pair 0,1 --out calib/
    cvpose-calib Calib.qca.txt --keypoints detections.npz   # 2D detections per camera: reprojection check
    cvpose-calib calibration_seq.json --cameras 00_07,00_12,00_02 --pair all --out calib/   # 3 of a studio's cameras

Prints each camera (size, intrinsics, centre and rotation in the chosen form) and every warning; with --out
writes `rig.yaml` (all cameras, world_from_camera poses), `<camera>.yaml` camera_info files and
`refiner_extrinsics.yaml` for the chosen pair. Errors: one line on stderr, exit 2; --strict makes warnings exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cvpose_ros.calibration.checks import check_rig
from cvpose_ros.calibration.export import refiner_parameters_yaml
from cvpose_ros.calibration.read import FORMATS, read_calibration
from cvpose_ros.calibration.rig_yaml import rig_yaml
from cvpose_ros.calibration.ros_yaml import camera_info_yaml
from cvpose_ros.calibration.rotation import rotation_to
from cvpose_ros.calibration.types import CalibratedCamera, CalibrationError

UNITS_PER_METRE = {"m": 1.0, "cm": 100.0, "mm": 1000.0}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cvpose-calib", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="calibration file(s); two camera_info or OpenCV files for a pair")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--units", choices=sorted(UNITS_PER_METRE), default="m",
                   help="units of the file's translations for OpenCV and TOML files (Qualisys: mm, others: m)")
    p.add_argument("--invert", action="store_true",
                   help="the file's poses are world-from-camera where camera-from-world is expected: invert them")
    p.add_argument("--cameras", default="",
                   help="keep only these cameras of the file (indices or names, comma-separated, in this order) for "
                        "everything else: the report, the checks, --keypoints, the written files and --pair's indices")
    p.add_argument("--pair", default="0,1", help="the cameras for the refiner (indices or names), e.g. 0,2; three or "
                                                 "more (0,1,2,3 or 'all') write the node's `cameras` list too")
    p.add_argument("--reference-frame", default="",
                   help="name the calibration's world frame as the node's reference_frame; '' = the pair's first "
                        "camera's optical frame")
    p.add_argument("--frame-ids", default="", help="optical frame ids of the --pair cameras, e.g. "
                                                   "cam0_optical,cam1_optical ('' = from the keypoints' headers)")
    p.add_argument("--rotation", choices=("quaternion", "rpy", "matrix"), default="quaternion",
                   help="how rotations are printed (world_from_camera)")
    p.add_argument("--out", type=Path, help="folder for rig.yaml, camera_info YAMLs and refiner_extrinsics.yaml")
    p.add_argument("--keypoints", type=Path,
                   help="npz with keypoints_<i> (T, J, 2) and confidence_<i> (T, J) per camera in file order: "
                        "triangulates all cameras and reports the reprojection residual")
    p.add_argument("--max-lag", type=int, default=6, help="frames searched for unsynchronised cameras (--keypoints)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a check warns")
    return p


def _index(cameras: Sequence[CalibratedCamera], token: str, option: str = "--pair") -> int:
    names = [c.name for c in cameras]
    if token.strip().lstrip("-").isdigit():
        index = int(token)
        if not 0 <= index < len(cameras):
            raise CalibrationError(option, f"camera index {index} out of range 0..{len(cameras) - 1}")
        return index
    if token.strip() not in names:
        raise CalibrationError(option, f"no camera named {token.strip()!r}; cameras: {names}")
    return names.index(token.strip())


def _describe(cameras: Sequence[CalibratedCamera], rotation: str) -> list[str]:
    lines = []
    for i, cam in enumerate(cameras):
        K = cam.model.K
        rot = np.round(rotation_to(cam.cam_from_world.R.T, rotation), 6).tolist()
        lines.append(f"[{i}] {cam.name}: {cam.model.width}x{cam.model.height}, fx {K[0, 0]:.1f} fy {K[1, 1]:.1f} "
                     f"cx {K[0, 2]:.1f} cy {K[1, 2]:.1f}, {cam.model.distortion_model}, centre "
                     f"{np.round(cam.center, 4).tolist()} m, rotation ({rotation}) {rot}")
        lines += [f"    note: {w}" for w in cam.warnings]
    return lines


def _keypoint_check(cameras: Sequence[CalibratedCamera], path: Path, max_lag: int) -> list[str]:
    from cvpose_ros.geometry.multiview import align, estimate_lags, residuals, triangulate_views

    try:
        data = np.load(path)
        pixels = [np.asarray(data[f"keypoints_{i}"], dtype=np.float64) for i in range(len(cameras))]
        confidence = [np.asarray(data[f"confidence_{i}"], dtype=np.float64) for i in range(len(cameras))]
    except (OSError, KeyError, ValueError) as exc:
        raise CalibrationError(path, f"keypoints file needs keypoints_<i> and confidence_<i> for each of the "
                                     f"{len(cameras)} cameras: {exc}") from None
    lags, _ = estimate_lags(cameras, pixels, confidence, max_lag=max_lag)
    pix, conf = np.stack(align(pixels, lags)), np.stack(align(confidence, lags))
    points = triangulate_views(cameras, pix, conf, 0.5, reject_outliers=True)
    error = residuals(cameras, points, pix, conf, 0.5)
    per_camera = ", ".join(f"{c.name} {np.nanmedian(e):.1f}" for c, e in zip(cameras, error, strict=True))
    return [f"keypoints: {pix.shape[1]} frames, lags {lags} frames; {len(cameras)}-camera triangulation reprojects "
            f"with a median residual of {np.nanmedian(error):.1f} px ({per_camera})"]


def run(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(report lines, warnings) for the parsed arguments; writes the --out files."""
    cameras = read_calibration(args.files, args.format, UNITS_PER_METRE[args.units])
    if args.cameras.strip(","):
        kept = [_index(cameras, token, "--cameras") for token in args.cameras.split(",")]
        if len(set(kept)) < len(kept):
            raise CalibrationError("--cameras", "a camera is listed twice")
        cameras = [cameras[i] for i in kept]
    if args.invert:
        cameras = [CalibratedCamera(c.name, c.model, c.cam_from_world.inverse(), c.warnings) for c in cameras]
    warnings = check_rig(cameras)
    lines = _describe(cameras, args.rotation)
    if args.keypoints is not None:
        lines += _keypoint_check(cameras, args.keypoints, args.max_lag)
    if args.out is not None:
        if len(cameras) < 2:
            raise CalibrationError(args.files[0], "one camera only: the refiner needs a pair (give two files)")
        tokens = [str(i) for i in range(len(cameras))] if args.pair.strip() == "all" else args.pair.split(",")
        frame_ids = tuple(args.frame_ids.split(",")) if args.frame_ids.strip(",") else ("",) * len(tokens)
        if len(tokens) < 2 or len(frame_ids) != len(tokens):
            raise CalibrationError("--pair", "--pair takes two or more comma-separated cameras (or 'all') and "
                                             "--frame-ids as many frame ids")
        pair = tuple(_index(cameras, token) for token in tokens)
        if len(set(pair)) < len(pair):
            raise CalibrationError("--pair", "the cameras of the pair must differ")
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "rig.yaml").write_text(rig_yaml(cameras))
        for cam in cameras:
            (args.out / f"{cam.name}.yaml").write_text(camera_info_yaml(cam))
        (args.out / "refiner_extrinsics.yaml").write_text(refiner_parameters_yaml(
            cameras, pair, args.reference_frame, frame_ids, source=", ".join(Path(f).name for f in args.files)))
        baseline = float(np.linalg.norm(cameras[pair[0]].center - cameras[pair[1]].center))
        slots = ", ".join(f"cam{slot} = {cameras[index].name}" for slot, index in enumerate(pair))
        lines.append(f"wrote {args.out}/: rig.yaml, {len(cameras)} camera_info YAMLs, refiner_extrinsics.yaml "
                     f"({slots}, baseline {baseline:.3f} m)")
    return lines, warnings


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        lines, warnings = run(args)
    except CalibrationError as exc:
        print(f"cvpose-calib: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    for warning in warnings:
        print(f"warning: {warning}")
    return 1 if warnings and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
