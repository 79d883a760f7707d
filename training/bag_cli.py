"""`cvpose-bag`: make rosbag2 files the refiner node can replay, and evaluate the node on a bag.

    cvpose-bag make --out BAG (--synthetic | --motion FILE | --h36m-3d FILE --h36m-2d FILE --subject S9 --pair 0-1)
    cvpose-bag eval BAG [--realtime] [--out OUT_BAG] [--json OUT] [--checkpoint FILE]
    cvpose-bag samples BAG... --out SAMPLES.npz        (then: cvpose-train --samples SAMPLES.npz --init CKPT)
    cvpose-bag finetune BAG... [--init CKPT] [--epochs N] [--out-dir DIR] [--motion MOCAP.npz] [--max-median-px PX]

Exit status: 0 on success, 1 when the bag or the run is unusable (one line on stderr says why), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cvpose_ros.devtools import synthetic
from cvpose_ros.devtools.bag_io import BagError
from cvpose_ros.geometry.camera import CameraError
from cvpose_ros.model.checkpoint import CheckpointError
from cvpose_ros.pipeline.sync import NS_PER_S
from training.data.bags import write_two_view_bag
from training.data.samples import SampleError

START_NS = 1_700_000_000 * NS_PER_S  # bag time of the first frame of made bags


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cvpose-bag", description="rosbag2 tools for cvpose_ros")
    sub = ap.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make", help="write a bag of camera_info + keypoints (+ ground truth) for two cameras")
    src = mk.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", action="store_true", help="procedural people (cvpose_ros.devtools.synthetic)")
    src.add_argument("--motion", help="motion .npz (name -> (T, 17, 3) mm, z up), one person per sequence")
    src.add_argument("--h36m-3d", help="data_3d_h36m.npz (with --h36m-2d, --subject, --pair)")
    mk.add_argument("--h36m-2d", help="data_2d_h36m_<detector>.npz (omit for exact projections)")
    mk.add_argument("--subject", default="S9")
    mk.add_argument("--pair", default="0-1", help="Human3.6M camera pair, e.g. 0-1")
    mk.add_argument("--action", help="Human3.6M action (default: the first)")
    mk.add_argument("--sequence", action="append", help="motion sequence name (repeat for several people)")
    mk.add_argument("--out", required=True, help="bag folder to create")
    mk.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    mk.add_argument("--noise", default="cpn_like", help="2D noise preset for projected keypoints (or 'none')")
    mk.add_argument("--rig", default="demo", help="rig for synthetic/motion sources: demo, wide, narrow, random")
    mk.add_argument("--people", type=int, default=2, help="synthetic people / motion sequences (default 2)")
    mk.add_argument("--duration", type=float, default=10.0, help="seconds (synthetic, default 10)")
    mk.add_argument("--fps", type=float, default=30.0, help="frame rate (synthetic and motion; default 30)")
    mk.add_argument("--track-ids", action="store_true", help="give keypoints the true person ids")
    mk.add_argument("--seed", type=int, default=0)

    ev = sub.add_parser("eval", help="replay a bag through the refiner node and score it")
    ev.add_argument("bag")
    ev.add_argument("--realtime", action="store_true", help="recorded rate with /clock (use_sim_time)")
    ev.add_argument("--out", help="bag folder to record the node's outputs into")
    ev.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    ev.add_argument("--json", help="write the results here")
    ev.add_argument("--checkpoint", default="", help="refiner weights (default: packaged weights)")
    ev.add_argument("--params", help="refiner parameter YAML with cam0/cam1 poses (when the bag has no /tf_static)")
    ev.add_argument("--sync-slop", type=float, default=0.01)
    ev.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each output (default 2)")
    ev.add_argument("--torch-threads", type=int, default=1, help="torch CPU threads (default 1; 0 = torch's choice)")
    ev.add_argument("--no-progress", action="store_true")

    sm = sub.add_parser("samples", help="export training samples (TwoViewSamples .npz) for cvpose-train --samples")
    ft = sub.add_parser("finetune", help="fine-tune the refiner on bags (weak losses, no 3D needed)")
    for p in (sm, ft):
        p.add_argument("bags", nargs="+")
        p.add_argument("--params", help="refiner parameter YAML with cam0/cam1 poses (bags without /tf_static)")
        p.add_argument("--sync-slop", type=float, default=0.01)
    sm.add_argument("--out", required=True, help=".npz file to write")
    ft.add_argument("--out-dir", default="runs/finetune")
    ft.add_argument("--init", help="checkpoint to start from (default: the packaged weights)")
    ft.add_argument("--epochs", type=int, default=5)
    ft.add_argument("--lr", type=float, default=1e-4)
    ft.add_argument("--device", default="auto")
    ft.add_argument("--motion", action="append", default=[],
                    help="mocap file(s) to rehearse alongside (3D-supervised, as the shipped weights were trained; "
                         "recommended: weak losses alone pull the network towards the noisy 2D, docs/training.md)")
    ft.add_argument("--max-median-px", type=float, default=10.0,
                    help="drop samples whose two views disagree (median reprojection of their triangulation above "
                         "this, px: swaps, wrong matches); 0 keeps all")
    return ap


# ---------------------------------------------------------------------------------------------------------------
# make
def _noise(name: str) -> str | None:
    return None if name in ("none", "exact") else name


def _make_synthetic(a: argparse.Namespace) -> tuple:
    scene = synthetic.generate_scene(a.people, a.duration, a.fps, seed=a.seed)
    rig = synthetic.make_rig(a.rig, seed=a.seed)
    views = synthetic.project_scene(scene, rig, _noise(a.noise), a.seed)
    return scene.stamps(), rig.cameras, views, scene.joints, scene.track_ids


def _make_motion(a: argparse.Namespace) -> tuple:
    from training.data.motion import load_motion

    sequences = load_motion([a.motion])
    names = a.sequence or sorted(sequences)[: a.people]
    missing = [n for n in names if n not in sequences]
    if missing:
        raise SampleError(f"{a.motion}: no sequences {missing}; it has e.g. {sorted(sequences)[:5]}")
    length = min(len(sequences[n]) for n in names)
    rng = np.random.default_rng(a.seed)
    centre = np.array(synthetic.ROOM_SIZE_M) / 2
    people = []
    for k, n in enumerate(names):  # spread people around the room centre
        seq = sequences[n][:length].copy()
        angle = 2 * np.pi * k / len(names) + rng.uniform(0, 0.5)
        spot = centre + (0.0 if len(names) == 1 else 1.2) * np.array([np.cos(angle), np.sin(angle)])
        seq[..., :2] += spot - seq[:, 0, :2].mean(axis=0)
        people.append(seq)
    joints = np.stack(people, axis=1)
    scene = synthetic.Scene(joints, a.fps, np.arange(1, len(names) + 1), np.zeros(joints.shape[:2], int))
    rig = synthetic.make_rig(a.rig, seed=a.seed)
    return scene.stamps(), rig.cameras, synthetic.project_scene(scene, rig, _noise(a.noise), a.seed), joints, \
        scene.track_ids


def _make_h36m(a: argparse.Namespace) -> tuple:
    from training.data.h36m import KEEP_FROM_32, load_cameras, parse_pairs

    (c0, c1), = parse_pairs(a.pair)
    try:
        with np.load(a.h36m_3d, allow_pickle=True) as f:
            poses = f["positions_3d"].item()[a.subject]
        kp2d = None
        if a.h36m_2d:
            with np.load(a.h36m_2d, allow_pickle=True) as f:
                kp2d = f["positions_2d"].item()[a.subject]
    except (OSError, KeyError, ValueError) as err:
        raise SampleError(f"cannot read subject {a.subject} from the Human3.6M files: {err!r}") from err
    action = a.action or sorted(poses)[0]
    if action not in poses:
        raise SampleError(f"no action {action!r} for {a.subject}; choose from {sorted(poses)}")
    world = np.asarray(poses[action], np.float64)
    world = world[:, KEEP_FROM_32] if world.shape[1] == 32 else world
    cams = load_cameras()[a.subject]
    rig = tuple(synthetic.RigCamera(f"cam{i}", cams[c].model, cams[c].cam_from_world, f"cam{i}_optical_frame")
                for i, c in enumerate((c0, c1)))
    scene = synthetic.Scene(world[:, None], 50.0, np.array([1]), np.zeros((len(world), 1), int))
    if kp2d is None:
        views = tuple(synthetic.project_view(scene, cam, _noise(a.noise), a.seed + i) for i, cam in enumerate(rig))
    else:
        views = []
        for c in (c0, c1):
            px = np.asarray(kp2d[action][c], np.float64)[: len(world), None]
            px = px if px.shape[-1] == 2 else px[..., :2]
            conf = np.ones(px.shape[:-1])
            views.append(synthetic.SceneKeypoints(px, conf, np.ones(px.shape[:2], bool)))
    return scene.stamps(), rig, views, scene.joints, scene.track_ids


def make(a: argparse.Namespace) -> int:
    source = _make_synthetic if a.synthetic else _make_motion if a.motion else _make_h36m
    stamps, cameras, views, truth, ids = source(a)
    stamps_ns = START_NS + np.round(np.asarray(stamps) * NS_PER_S).astype(np.int64)
    count = write_two_view_bag(a.out, stamps_ns, cameras, views, truth, ids, a.storage,
                               publish_track_ids=a.track_ids)
    print(f"wrote {a.out} ({a.storage}): {len(stamps_ns)} frames, {truth.shape[1]} people, {count} messages")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# eval
def _fmt(v: float | None, unit: str) -> str:
    return "n/a" if v is None else f"{v:.1f} {unit}"


def evaluate(a: argparse.Namespace) -> int:
    from training.bag_eval import EvalOptions, evaluate_bag

    opts = EvalOptions(realtime=a.realtime, out_bag=a.out, storage=a.storage, checkpoint=a.checkpoint,
                       params_file=a.params, sync_slop=a.sync_slop, output_timeout=a.timeout,
                       progress=not a.no_progress, torch_threads=a.torch_threads)
    r = evaluate_bag(a.bag, opts)
    print(f"{a.bag}: {r['outputs']} outputs for {r['pairs_published']} keypoint pairs "
          f"({r['dropped']} dropped); people per frame {r['people_mean']:.2f} (max {r['people_max']})")
    print(f"  refinement: {r['refinement']}")
    if "refined" in r:
        print(f"  MPJPE: triangulation {_fmt(r['triangulation']['mpjpe_mm'], 'mm')} -> refined "
              f"{_fmt(r['refined']['mpjpe_mm'], 'mm')} over {r['refined']['people_matched']} person-frames")
    print(f"  latency p50 {_fmt(r['latency']['p50_ms'], 'ms')}, p99 {_fmt(r['latency']['p99_ms'], 'ms')}; "
          f"rate {_fmt(r['rate_hz'], 'Hz')}" + (f"; node problems {r['node_problems']}" if r["node_problems"] else ""))
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2))
    if r["outputs"] == 0:
        print(f"cvpose-bag: the refiner node produced no output for {a.bag}", file=sys.stderr)
        return 1
    return 0


def export_samples(a: argparse.Namespace) -> int:
    from training.data.bags import bag_samples

    samples = bag_samples(a.bags, a.sync_slop, a.params)
    samples.save(a.out)
    print(f"wrote {a.out}: {len(samples)} two-view samples from {len(a.bags)} bag(s)")
    return 0


def finetune(a: argparse.Namespace) -> int:
    from training.data.bags import finetune_on_bags

    rehearsal = {}
    if a.motion:  # the shipped weights' recipe: 3D supervision on fresh mocap plus light weak terms
        rehearsal = dict(motion=a.motion, w_supervised=1.0, w_reprojection=0.1, w_symmetry=0.1, w_transform=0.1,
                         w_bone_direction=0.01, batch_size=64, samples_per_epoch=3000, threads=1)
    best = finetune_on_bags(a.bags, a.out_dir, a.init, a.epochs, a.params, a.sync_slop, a.lr,
                            max_median_px=a.max_median_px, device=a.device, **rehearsal)
    print(f"best checkpoint: {best}  (use it with: refiner_node --ros-args -p checkpoint:={best})")
    return 0


COMMANDS = {"make": make, "eval": evaluate, "samples": export_samples, "finetune": finetune}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (BagError, SampleError, CameraError, CheckpointError, ValueError, OSError, RuntimeError) as err:
        print(f"cvpose-bag {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
