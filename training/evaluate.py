"""`cvpose-eval`: triangulation vs CV-UGCN refinement on Human3.6M files or on held-back motion data.

Human3.6M mode (`--data-3d`, optional `--data-2d`): every action of the chosen subjects through the chosen camera
pairs, tables per action and per pair. Motion mode (`--motion`): held-back sequences of a motion file rebuilt and
projected through `--rig` geometries with `--noise` presets (the model card numbers), tables per rig and per noise.
Real-video mode (`--videos DIR --calibration FILE`): synchronised-ish videos of >= 4 calibrated cameras, every
camera pair scored against the cameras it did not use (no ground truth needed; `training/realvideo.py`).
Errors are protocol #1 (root-relative MPJPE in the camera frame) and #2 (P-MPJPE), averaged over both views.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from cvpose_ros.detection.backend import DetectorError
from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError
from cvpose_ros.refine.guard import EvidenceGuard
from training.data.h36m import DEFAULT_PAIRS, load_h36m, parse_pairs
from training.data.motion import RIG_KINDS, load_motion, motion_samples, split_sequences
from training.data.samples import SampleError, TriangulatedSamples, concat_triangulated, triangulate_samples
from training.metrics import compare, load_model, summarise
from training.realvideo import evaluate_videos


def _block(errors: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict:
    pick = (lambda a: a) if mask is None else (lambda a: a[mask])
    tri = {"mpjpe_mm": summarise(pick(errors["tri_mpjpe"])), "pmpjpe_mm": summarise(pick(errors["tri_pmpjpe"]))}
    ref = {"mpjpe_mm": summarise(pick(errors["ref_mpjpe"])), "pmpjpe_mm": summarise(pick(errors["ref_pmpjpe"]))}
    ratio = ref["mpjpe_mm"] / tri["mpjpe_mm"] if tri["mpjpe_mm"] > 0 else float("nan")
    return {"triangulation": tri, "refined": ref, "ratio": ratio,
            "frames": int(len(errors["tri_mpjpe"]) if mask is None else mask.sum())}


def grouped_report(errors: dict[str, np.ndarray], groups: dict[str, np.ndarray]) -> dict:
    """Overall block plus one block per value of each grouping (name -> (N,) labels)."""
    report = _block(errors)
    for name, labels in groups.items():
        report[name] = {str(v): _block(errors, labels == v) for v in sorted(set(labels.tolist()))}
    return report


def format_table(title: str, blocks: dict[str, dict]) -> str:
    """Plain-text table: rows of triangulation and refined MPJPE / P-MPJPE (mm) and the ratio."""
    lines = [f"{title:<24}{'frames':>8}{'tri MPJPE':>11}{'ref MPJPE':>11}{'ratio':>7}{'tri P-MP':>10}{'ref P-MP':>10}"]
    for name, b in blocks.items():
        ratio = f"{b['ratio']:.3f}" if b["triangulation"]["mpjpe_mm"] >= 1.0 else "-"  # exact input: no ratio
        lines.append(f"{name:<24}{b['frames']:>8}{b['triangulation']['mpjpe_mm']:>11.1f}"
                     f"{b['refined']['mpjpe_mm']:>11.1f}{ratio:>7}{b['triangulation']['pmpjpe_mm']:>10.1f}"
                     f"{b['refined']['pmpjpe_mm']:>10.1f}")
    return "\n".join(lines)


def motion_eval_data(path: str, rigs: list[str], noises: list[str], count: int, seed: int, stride: int,
                     holdout_every: int, min_confidence: float = 0.1,
                     layout: str = "h36m17") -> tuple[TriangulatedSamples, dict]:
    """Samples for every (rig, noise) setting from the held-back sequences of one motion file, in `layout`."""
    sequences = load_motion([path], stride=stride)
    _, held = split_sequences(list(sequences), holdout_every)
    chosen = {n: sequences[n] for n in (held or list(sequences))}
    parts, rig_labels, noise_labels = [], [], []
    for rig in rigs:
        for noise in noises:
            rng = np.random.default_rng(seed)  # same frames and placements for every noise level of a rig
            data = triangulate_samples(motion_samples(chosen, count, {rig: 1.0}, {noise: 1.0}, rng, layout=layout),
                                       min_confidence)
            parts.append(data)
            rig_labels += [rig] * len(data)
            noise_labels += [noise] * len(data)
    groups = {"per_rig": np.array(rig_labels), "per_noise": np.array(noise_labels),
              "per_setting": np.array([f"{r}/{n}" for r, n in zip(rig_labels, noise_labels, strict=True)])}
    return concat_triangulated(parts), groups


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cvpose-eval", description="Evaluate triangulation and CV-UGCN refinement.")
    p.add_argument("--data-3d", help="data_3d_h36m.npz (Human3.6M mode)")
    p.add_argument("--data-2d", help="data_2d_h36m_<detector>.npz (default: exact projections of the 3D poses)")
    p.add_argument("--subjects", default="S9,S11")
    p.add_argument("--pairs", default=",".join(f"{a}-{b}" for a, b in DEFAULT_PAIRS))
    p.add_argument("--stride", type=int, default=1, help="use every n-th frame")
    p.add_argument("--cameras", help="calibration JSON in the package's format (default: embedded)")
    p.add_argument("--motion", help="motion .npz (motion mode): held-back sequences are evaluated")
    p.add_argument("--rig", default="wide,narrow", help=f"motion mode rigs, comma-separated from {RIG_KINDS}")
    p.add_argument("--noise", default="cpn_like,clean", help="motion mode noise presets, comma-separated")
    p.add_argument("--samples", type=int, default=3000, help="motion mode samples per rig and noise")
    p.add_argument("--holdout-every", type=int, default=8, help="motion mode: same split as training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--videos", help="real-video mode: folder of *.mp4/*.avi, one per calibrated camera (by name, "
                                    "else in sorted order)")
    p.add_argument("--calibration", help="real-video mode: camera calibration (Qualisys .qca.txt)")
    p.add_argument("--detections-cache", help="real-video mode: .npz of the 2D detections, reused when it matches")
    p.add_argument("--max-lag", type=int, default=6, help="real-video mode: largest camera lag searched (frames)")
    p.add_argument("--layout", default="coco17", choices=["coco17", "h36m17"],
                   help="real-video mode: refine the coco17 detections as they are (default) or mapped to h36m17")
    p.add_argument("--no-guard", action="store_true",
                   help="switch off the node's do-no-harm guard (default: refined poses pass it with the node's "
                        "defaults, as on a robot)")
    p.add_argument("--checkpoint", help="weights (default: the packaged cvugcn_h36m17.pt)")
    p.add_argument("--no-fuse", action="store_true", help="do not average the two refined views")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="write the results here")
    return p


def run(args: argparse.Namespace) -> dict:
    """Evaluate as the arguments say and return the report dict (also printed)."""
    if sum(bool(m) for m in (args.data_3d, args.motion, args.videos)) != 1:
        raise ValueError("give exactly one of --data-3d (Human3.6M mode), --motion (motion mode) or --videos "
                         "(real-video mode)")
    if args.videos:
        if not args.calibration:
            raise ValueError("--videos needs --calibration FILE")
        if args.max_lag < 0:
            raise ValueError(f"--max-lag must be >= 0, got {args.max_lag}")
        return evaluate_videos(args.videos, args.calibration, args.checkpoint, args.device, args.detections_cache,
                               args.json, args.max_lag, fuse_views=not args.no_fuse, layout=args.layout,
                               guard=EvidenceGuard(enabled=not args.no_guard))
    checkpoint = Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT
    loaded = load_model(checkpoint, device=args.device)
    if args.data_3d:
        subjects = tuple(s.strip() for s in args.subjects.split(",") if s.strip())
        h36m = load_h36m(args.data_3d, args.data_2d, subjects, parse_pairs(args.pairs), args.stride, args.cameras)
        data = triangulate_samples(h36m.samples)
        groups = {"per_action": h36m.action, "per_pair": h36m.pair, "per_subject": h36m.subject}
    else:
        rigs = [r.strip() for r in args.rig.split(",") if r.strip()]
        noises = [n.strip() for n in args.noise.split(",") if n.strip()]
        data, groups = motion_eval_data(args.motion, rigs, noises, args.samples, args.seed, 2, args.holdout_every,
                                        layout=loaded.model.layout.name)
    with torch.no_grad():
        errors = compare(loaded.model, loaded.spec, data, device=args.device, fuse=not args.no_fuse,
                         guard=EvidenceGuard(enabled=not args.no_guard))
    report = grouped_report(errors, groups)
    report["checkpoint"] = str(checkpoint)
    report["fused_views"] = not args.no_fuse
    report["guard"] = not args.no_guard
    for name in groups:
        print(format_table(name.replace("per_", "per "), report[name]))
        print()
    print(format_table("all", {"all": {k: report[k] for k in ("triangulation", "refined", "ratio", "frames")}}))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    """Console entry point; one line on stderr and exit status 2 on bad input."""
    try:
        run(build_parser().parse_args(argv))
    except (SampleError, CheckpointError, DetectorError, ValueError, OSError) as exc:
        print(f"cvpose-eval: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
