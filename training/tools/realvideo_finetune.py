"""Fine-tune on real multi-camera 2D (weak losses) and measure the real video before/after on held-out frames.

    python -m training.tools.realvideo_finetune --detections dets.npz --calibration Calib.qca.txt \
        --init CKPT --recipe rehearsal --motion MOCAP.npz --train-frames 0:60 --eval-frames 60: --out-dir runs/rv_ft

Recipes (TrainConfig overrides, see RECIPES): `bags_default` is what `cvpose-bag finetune` did (real samples only,
SPEC weak weights 1/1/1/0.1, lr 1e-4, 5 epochs, batch 256, checkpoint chosen by the training loss);
`bn_only` the same at lr 1e-12 (only BatchNorm running statistics move); `bags_frozen_bn` the same with BatchNorm
frozen; `rehearsal` real 2D (weak) mixed with fresh mocap samples (3D + weak, the original mix), BatchNorm frozen,
the shipped weak weights, checkpoint chosen on held-back mocap. `--extra-views` adds the 2D of every other
camera of the frame as weak reprojection targets (weight `w_extra_views`, default w_reprojection; `--set
w_extra_views=1.0`), `--repair` builds the samples from the node's repaired keypoints. `--diagnose` prints the
weak loss terms of the triangulation and of the refinement on the real training samples.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from cvpose_ros.model.losses import WeakLossWeights, weak_supervision_loss
from cvpose_ros.model.pipeline import refine_tensors
from cvpose_ros.refine.guard import EvidenceGuard
from cvpose_ros.refine.refiner import Refiner
from training.data.samples import triangulate_samples
from training.data.video_samples import consistent_samples, load_aligned_detections, video_samples
from training.metrics import load_model
from training.realvideo import evaluate_detections
from training.train import train
from training.train_config import TrainConfig

_BAGS = {"epochs": 5, "lr": 1e-4}  # finetune_on_bags defaults; everything else TrainConfig's defaults
_REHEARSAL = {"motion_stride": 2, "motion_holdout_every": 8, "bone_spread": 1.5,
              "rig_mix": {"h36m": 0.25, "wide": 0.2, "narrow": 0.2, "random": 0.35},
              "noise_mix": {"clean": 0.1, "light": 0.1, "detector_light": 0.2, "detector": 0.35, "cpn_like": 0.1,
                            "heavy": 0.15},
              "validation_noise": "detector", "validation_light_noise": "detector_light", "val_samples": 600,
              "samples_per_epoch": 3000, "batch_size": 64, "epochs": 6, "lr": 1e-4, "freeze_batchnorm": True,
              "w_supervised": 1.0, "w_reprojection": 0.1, "w_symmetry": 0.1, "w_transform": 0.1,
              "w_bone_direction": 0.01}
RECIPES: dict[str, dict] = {
    "bags_default": dict(_BAGS),
    "bn_only": {**_BAGS, "lr": 1e-12},
    "bags_frozen_bn": {**_BAGS, "freeze_batchnorm": True},
    "rehearsal": _REHEARSAL,
    "rehearsal_no_freeze": {**_REHEARSAL, "freeze_batchnorm": False},
    # 4x the updates (24 epochs at 3x the rate): long enough for the real 2D to move the network; use with --keep
    # last (the mocap-chosen checkpoint is the first epoch's, before the rig has been learnt)
    "rehearsal_long": {**_REHEARSAL, "epochs": 24, "lr": 3e-4},
}
SPLITS = ("agree", "pair_swap", "reference_swap")


def frame_range(text: str, count: int) -> np.ndarray:
    """'a:b' (Python slice of the aligned frames) -> frame indices."""
    start, _, stop = text.partition(":")
    return np.arange(count)[slice(int(start) if start else None, int(stop) if stop else None)]


def evaluate(cameras, pixels: np.ndarray, confidence: np.ndarray, checkpoint: str | None, guard: bool) -> dict:
    """All-pairs blocks of the real-video evaluation (frames already aligned) for `checkpoint` (None: tri only)."""
    refiner = Refiner(checkpoint, device="cpu", num_threads=1) if checkpoint else None
    report = evaluate_detections(cameras, list(pixels), list(confidence), refiner, lags=[0] * len(cameras),
                                 progress=False, layout="coco17", guard=EvidenceGuard(enabled=guard))
    out = {}
    for split in SPLITS:
        block = report["all_pairs"][split]
        out[split] = {"frames": block["frames"]}
        for method in ("triangulation", "refined"):
            m = block[method]
            out[split][method] = {"abs": m["mpjpe_mm"]["mean"], "rel": m["root_rel_mpjpe_mm"]["mean"],
                                  "reproj_px": m["reprojection_px"]}
    return out


def held_out_camera(cameras, pixels: np.ndarray, confidence: np.ndarray, checkpoint: str | None, guard: bool,
                    camera: int, confident: float = 0.5) -> dict:
    """Reprojection (median px) into `camera` of every pair without it, triangulation vs refined, on frames where no
    view is swapped. With `camera` kept out of training too, no 2D of it informed the network: a check free of the
    shared cameras of the main measure (whose reference cameras were weak targets on the training frames)."""
    from cvpose_ros.geometry.multiview import residuals
    from training.multiview import detect_swaps
    from training.realvideo import run_pair

    refiner = Refiner(checkpoint, device="cpu", num_threads=1) if checkpoint else None
    swapped = detect_swaps(cameras, pixels, confidence, confident).swapped.any(axis=0)
    errors: dict[str, list[np.ndarray]] = {"triangulation": [], "refined": []}
    others = [v for v in range(len(cameras)) if v != camera]
    for i, a in enumerate(others):
        for b in others[i + 1:]:
            coarse, refined, _, _ = run_pair(cameras[a], cameras[b], pixels[[a, b]], confidence[[a, b]], refiner,
                                             guard=EvidenceGuard(enabled=guard))
            for name, pose in (("triangulation", coarse), ("refined", refined)):
                res = residuals([cameras[camera]], pose[~swapped], pixels[[camera]][:, ~swapped],
                                confidence[[camera]][:, ~swapped], confident)
                errors[name].append(res.ravel())
    out = {name: float(np.nanmedian(np.concatenate(e))) for name, e in errors.items()}
    return {"camera": cameras[camera].name, "frames": int((~swapped).sum()), "reprojection_px": out,
            "ratio": out["refined"] / out["triangulation"]}


def weak_terms(checkpoint: str, samples) -> dict[str, dict[str, float]]:
    """Unweighted weak loss terms on `samples` for the triangulation itself and for the (eval-mode) refinement."""
    loaded = load_model(checkpoint)
    model, spec = loaded.model.eval(), loaded.spec
    data = triangulate_samples(samples)
    batch = data.batch(torch.arange(len(data)))
    nan = ~batch["valid"][..., None]
    c0 = batch["coarse0"].masked_fill(nan, float("nan"))
    c1 = batch["coarse1"].masked_fill(nan, float("nan"))
    with torch.no_grad():
        r0, r1 = refine_tensors(model, batch["coarse0"], batch["coarse1"], batch["reproj_err"], batch["valid"],
                                batch["R10"], batch["t10"], spec=spec)
    out = {}
    for name, (p0, p1) in {"triangulation": (c0, c1), "refined": (r0, r1)}.items():
        _, terms = weak_supervision_loss(p0, p1, batch["kp2d"], batch["conf"], batch["K"], batch["dist"],
                                         batch["R10"], batch["t10"], WeakLossWeights(), layout=model.layout)
        out[name] = {k: float(v) for k, v in terms.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run one recipe (or only the baseline / diagnosis) and print a JSON summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detections", required=True)
    p.add_argument("--calibration", required=True)
    p.add_argument("--init", required=True)
    p.add_argument("--recipe", choices=sorted(RECIPES), help="omit for the baseline only")
    p.add_argument("--set", action="append", default=[], help="extra TrainConfig override KEY=VALUE (YAML value)")
    p.add_argument("--train-frames", default="0:60")
    p.add_argument("--eval-frames", default="60:")
    p.add_argument("--out-dir", default="runs/realvideo_finetune")
    p.add_argument("--no-guard", action="store_true")
    p.add_argument("--diagnose", action="store_true")
    p.add_argument("--max-median-px", type=float, default=0.0,
                   help="keep only real samples whose pair triangulation has median reprojection <= this (0: all)")
    p.add_argument("--no-real", action="store_true", help="control: train without the real samples")
    p.add_argument("--extra-views", action="store_true",
                   help="weak reprojection targets in EVERY camera of the recording, not only the pair's two")
    p.add_argument("--repair", action="store_true",
                   help="samples hold the node's repaired pair keypoints (and consensus-repaired extra views)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hold-out-camera", type=int, default=-1,
                   help="leave this camera (index) out of training entirely and also report the reprojection of "
                        "the other pairs into it (-1: none)")
    p.add_argument("--keep", choices=("best", "last"), default="best",
                   help="checkpoint evaluated: best on the held-back mocap (default) or the last epoch's")
    p.add_argument("--motion", action="append", default=[],
                   help="mocap file(s) of the rehearsal recipes (e.g. the team's cmu_h36m17_mm_60fps.npz)")
    p.add_argument("--json")
    a = p.parse_args(argv)
    if a.recipe and a.recipe.startswith("rehearsal") and not a.motion:
        raise SystemExit("realvideo_finetune: the rehearsal recipes need --motion FILE")
    import yaml

    cameras, pix, conf, lags = load_aligned_detections(a.detections, a.calibration)
    train_frames, eval_frames = frame_range(a.train_frames, pix.shape[1]), frame_range(a.eval_frames, pix.shape[1])
    if np.intersect1d(train_frames, eval_frames).size:
        raise SystemExit("train and eval frames overlap")
    used = [v for v in range(len(cameras)) if v != a.hold_out_camera]
    real = video_samples([cameras[v] for v in used], pix[used], conf[used], frames=train_frames,
                         extra_views=a.extra_views, repair=a.repair).samples
    if a.max_median_px > 0:
        real = consistent_samples(real, a.max_median_px)[0]
    result: dict = {"lags": lags, "train_samples": len(real), "extra_views": real.extra_views,
                    "repair": a.repair, "seed": a.seed, "keep": a.keep, "eval_frames": [int(eval_frames[0]),
                                                                              int(eval_frames[-1])]}
    ev_pix, ev_conf = pix[:, eval_frames], conf[:, eval_frames]
    guard = not a.no_guard
    checkpoint = a.init
    if a.recipe:
        overrides = {**RECIPES[a.recipe], **({"motion": a.motion} if a.recipe.startswith("rehearsal") else {}),
                     **{k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)}}
        cfg = TrainConfig(out_dir=a.out_dir, layout=load_model(a.init).model.layout.name, threads=1, device="cpu",
                          progress="off", seed=a.seed, **overrides)
        cfg.samples_per_epoch = cfg.samples_per_epoch if cfg.motion else min(cfg.samples_per_epoch, len(real))
        checkpoint = str(train(cfg, [] if a.no_real else [real], init=a.init))
        if a.keep == "last":
            checkpoint = str(Path(a.out_dir) / "last.pt")
        result["recipe"], result["overrides"], result["checkpoint"] = a.recipe, overrides, checkpoint
    else:
        result["before"] = evaluate(cameras, ev_pix, ev_conf, a.init, guard)
    if a.diagnose:
        result["weak_terms_on_train"] = weak_terms(checkpoint, real)
    if a.recipe:
        result["after"] = evaluate(cameras, ev_pix, ev_conf, checkpoint, guard)
    if a.hold_out_camera >= 0:
        result["held_out_camera"] = held_out_camera(cameras, ev_pix, ev_conf, checkpoint, guard, a.hold_out_camera)
    text = json.dumps(result, indent=1)
    print(text)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
