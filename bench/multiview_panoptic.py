"""Three and four cameras against the best pair on a real studio rig with real people and 3D truth (by hand).

Run: ``python bench/multiview_panoptic.py --panoptic DIR [DIR ...] [--cameras 4] [--seeds 10] [--noise detector]
[--json out.json]`` with CMU Panoptic sequence folders (`calibration_<seq>.json` and
`hdPose3d_stage1_coco19/body3DScene_*.json`; Panoptic Studio terms, never committed).

The rig is `--cameras` of the studio's 31 HD cameras (1920x1080) that see nearly everyone, spread evenly in azimuth
around the people, read with `cvpose_ros.calibration` (format `panoptic`); the people are the sequences' reconstructed
3D bodies (19 joints, mapped to coco17). Their 2D keypoints are the truth projected through each camera's lens with the
`--noise` detector error model (`cvpose_ros.devtools.synthetic.project_view`: fixed per-view offsets, jitter, swaps,
outliers), one stream per camera and seed. Every pair runs through the node's two-camera path and every larger set
through its N-camera path (`SkeletonPipeline`, packaged coco17 weights, one CPU thread), frame by frame with a fresh
pipeline per sequence and seed. Printed per camera set: MPJPE against the truth, root-relative (mid-hip) and absolute,
of the coarse and refined skeletons, and the people found; then each larger set against the best pair (hindsight, by
refined root-relative MPJPE) with the 95 % interval of the difference (paired bootstrap over frames).

Real here: the camera geometry, the lenses and the people (three musicians, 40 frames). Not real: the 2D errors.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
from pathlib import Path

import numpy as np
from bench_multiview import scene_view_input
from tqdm import tqdm

from cvpose_ros.body.skeleton import COCO17
from cvpose_ros.calibration import read_calibration
from cvpose_ros.devtools import synthetic
from cvpose_ros.devtools.scoring import match_people, root_relative_errors
from cvpose_ros.pipeline.frame_processor import CameraSetup, RigSetup, SkeletonPipeline
from cvpose_ros.pipeline.view_input import FrameError
from cvpose_ros.refine.refiner import LayoutRefiners
from training.tools.measure_placement import PANOPTIC19_NAMES

FRAME_NS = 33_333_333  # the HD cameras' 30 fps


def load_bodies(folder: Path, min_confidence: float = 0.1) -> np.ndarray:
    """(T, P, 17, 3) coco17 joints in metres, world frame, of one sequence's bodies (P = every body id seen; NaN
    where a body is absent or a joint was not reconstructed)."""
    files = sorted(folder.glob("hdPose3d_stage1_coco19/body3DScene_*.json"))
    if not files:
        raise SystemExit(f"no hdPose3d_stage1_coco19/body3DScene_*.json under {folder}")
    frames = [{b["id"]: np.asarray(b["joints19"], float).reshape(19, 4) for b in json.loads(f.read_text())["bodies"]}
              for f in files]
    ids = sorted({i for frame in frames for i in frame})
    index = [PANOPTIC19_NAMES.index(name) for name in COCO17.joint_names]  # coco17 by name
    out = np.full((len(frames), len(ids), 17, 3), np.nan)
    for t, frame in enumerate(frames):
        for p, body_id in enumerate(ids):
            if body_id in frame:
                joints = frame[body_id][index]
                out[t, p] = np.where(joints[:, 3:] >= min_confidence, joints[:, :3] / 100.0, np.nan)
    return out


def spread_cameras(cameras: list, count: int, truth: np.ndarray, min_seen: float = 0.95) -> list:
    """`count` HD cameras that see nearly everyone (`min_seen` of the person-frames with every joint in the image),
    evenly spaced in azimuth about the vertical (Panoptic: -y) through the people's centre."""
    hd = [c for c in cameras if c.name.startswith("00_")]
    present = np.isfinite(truth).all(axis=-1).any(axis=-1)                          # (T, P)
    seen = []
    for cam in hd:
        pixels = cam.model.project(cam.cam_from_world.apply(truth))
        size = np.array([cam.model.width, cam.model.height])
        inside = (np.isfinite(pixels).all(axis=-1) & np.all((pixels >= 0) & (pixels < size), axis=-1)) | ~np.isfinite(
            truth).all(axis=-1)
        seen.append(inside.all(axis=-1)[present].mean())
    usable = [c for c, s in zip(hd, seen, strict=True) if s >= min_seen]
    if len(usable) < count:
        raise SystemExit(f"only {len(usable)} HD cameras see {min_seen:.0%} of the people; ask for fewer")
    centre = np.nanmean(truth.reshape(-1, 3), axis=0)
    azimuth = np.array([np.arctan2(*(c.center - centre)[[2, 0]]) for c in usable])
    order = np.argsort(azimuth)
    return [usable[order[int(round(k * len(usable) / count)) % len(usable)]] for k in range(count)]


def run_set(rig: list, views: list, truth: np.ndarray, sel: tuple[int, ...], refiner) -> np.ndarray:
    """(T, P, 4) errors in mm per truth person: coarse root-relative, coarse absolute, refined root-relative,
    refined absolute (NaN where the person was not found)."""
    world_from_first = rig[sel[0]].cam_from_world.inverse()
    poses = tuple(rig[i].cam_from_world.compose(world_from_first) for i in sel)
    pipe = SkeletonPipeline(refiner, default_layout="coco17")
    out = np.full(truth.shape[:2] + (4,), np.nan)
    for t in range(truth.shape[0]):
        inputs = [scene_view_input(views[i], t, "coco17", FRAME_NS) for i in sel]
        try:
            if len(sel) == 2:
                result = pipe.process(CameraSetup(rig[sel[0]].model, rig[sel[1]].model, poses[1], world_from_first),
                                      *inputs)
            else:
                result = pipe.process_views(RigSetup(tuple(rig[i].model for i in sel), poses, world_from_first), inputs)
        except FrameError:
            continue
        present = np.flatnonzero(np.isfinite(truth[t]).any(axis=(1, 2)))
        for column, skeletons in ((0, result.coarse), (2, result.refined)):
            if not len(skeletons.joints):
                continue
            est, gt = match_people(skeletons.joints, truth[t, present])
            estimate, target = skeletons.joints[est], truth[t, present[gt]]
            out[t, present[gt], column] = root_relative_errors(estimate, target, "coco17")
            out[t, present[gt], column + 1] = root_relative_errors(estimate, target, "coco17", root_relative=False)
    return out


def mean_difference_interval(a: np.ndarray, b: np.ndarray, seed: int = 0, resamples: int = 2000,
                             ) -> tuple[float, float]:
    """95 % interval of mean(a) - mean(b) over person-frames both found, resampling frames (axis 0) together."""
    both = np.isfinite(a) & np.isfinite(b)
    diff = np.where(both, a - b, 0.0).reshape(len(a), -1)
    count = both.reshape(len(a), -1).sum(axis=1)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(a), size=(resamples, len(a)))
    means = diff[pick].sum(axis=(1, 2)) / np.maximum(count[pick].sum(axis=1), 1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--panoptic", type=Path, nargs="+", required=True, help="Panoptic sequence folder(s)")
    p.add_argument("--cameras", type=int, default=4, help="HD cameras of the rig (3 or more)")
    p.add_argument("--seeds", type=int, default=10, help="detector error streams per sequence")
    p.add_argument("--noise", default="detector")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.cameras < 3:
        raise SystemExit("--cameras must be 3 or more")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}")
    refiner = LayoutRefiners([], "cpu", num_threads=1)
    sets = [s for size in range(2, args.cameras + 1) for s in itertools.combinations(range(args.cameras), size)]
    errors: dict[tuple[int, ...], list[np.ndarray]] = {s: [] for s in sets}
    sequences = []
    for folder in args.panoptic:
        calibration = sorted(folder.glob("calibration_*.json"))
        if not calibration:
            raise SystemExit(f"no calibration_*.json in {folder}")
        sequences.append((folder, read_calibration(calibration[:1], "panoptic"), load_bodies(folder)))
    # one rig for every sequence: the cameras that see nearly everyone in all of them
    everyone = np.concatenate([truth.reshape(-1, 17, 3) for _, _, truth in sequences])[:, None]
    names = [c.name for c in spread_cameras(sequences[0][1], args.cameras, everyone)]
    present = 0
    for folder, cameras, truth in sequences:
        by_name = {c.name: c for c in cameras}
        rig = [by_name[name] for name in names]
        rig_cams = [synthetic.RigCamera(c.name, c.model, c.cam_from_world, c.name) for c in rig]
        scene = synthetic.Scene(truth, 30.0, np.arange(truth.shape[1]), np.zeros(truth.shape[:2], int), "coco17")
        present += args.seeds * int(np.isfinite(truth).all(axis=-1).any(axis=-1).sum())
        for seed in tqdm(range(args.seeds), desc=folder.name):
            views = [synthetic.project_view(scene, cam, args.noise, 1000 * seed + i) for i, cam in enumerate(rig_cams)]
            for s in sets:
                errors[s].append(run_set(rig, views, truth, s, refiner))
    table = {s: np.concatenate(errors[s]) for s in sets}  # (frames, P, 4)
    key = {s: "+".join(str(i) for i in s) for s in sets}
    print(f"Panoptic {', '.join(f.name for f in args.panoptic)}: cameras {names}, noise {args.noise}, "
          f"{args.seeds} seeds; MPJPE mm, root-relative / absolute")
    print(f"{'cameras':<10} {'coarse':>15} {'refined':>15} {'found':>7}")
    report: dict = {"cameras": names, "noise": args.noise, "seeds": args.seeds, "sets": {}}
    for s in sets:
        e = table[s]
        row = [float(np.nanmean(e[..., c])) for c in range(4)]
        found = float(np.isfinite(e[..., 2]).sum() / present)
        report["sets"][key[s]] = {"coarse_rel": row[0], "coarse_abs": row[1], "refined_rel": row[2],
                                  "refined_abs": row[3], "found": found}
        print(f"{key[s]:<10} {row[0]:7.1f} / {row[1]:5.1f} {row[2]:7.1f} / {row[3]:5.1f} {found:7.2f}")
    pairs = [s for s in sets if len(s) == 2]
    for size in range(3, args.cameras + 1):
        for s in (x for x in sets if len(x) == size):
            inside = [q for q in pairs if set(q) <= set(s)]
            best = min(inside, key=lambda q: np.nanmean(table[q][..., 2]))
            rel = mean_difference_interval(table[s][..., 2], table[best][..., 2])
            ab = mean_difference_interval(table[s][..., 3], table[best][..., 3])
            report["sets"][key[s]] |= {"best_pair": key[best], "minus_best_pair_rel": rel, "minus_best_pair_abs": ab}
            print(f"{key[s]:<10} minus its best pair {key[best]}: refined root-relative [{rel[0]:+.1f}, {rel[1]:+.1f}]"
                  f" mm, absolute [{ab[0]:+.1f}, {ab[1]:+.1f}] mm")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
