"""Synthetic twin of the real-video fine-tune with every camera as a weak target (docs/training.md, issue 15).

The data of `test/test_multiview_weak.py` (four cameras, each with its own fixed `detector` offsets) with the truth
known: a small network refining pair (0, 1) is trained with the pair's 2D only and with the 2D of every camera
(`w_extra_views` = --weight), then scored against the truth AND by the real-video measure (absolute MPJPE against
the triangulation of cameras 2 and 3, median reprojection in them), to see how that measure reads a true gain when
its reference cameras were weak targets. `--one-extra`: cameras 1, 2, 3 only (pair (1, 2), extra camera 3), scored
against the truth and by the reprojection into camera 0, which training never saw.

    python bench/multiview_weak_twin.py --weight 1 --epochs 30 [--one-extra] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))
from test_multiview_weak import _detections, _rig, random_bodies  # noqa: E402

from cvpose_ros.geometry.multiview import triangulate_views  # noqa: E402
from cvpose_ros.model.pipeline import refine_tensors  # noqa: E402
from training.data.samples import triangulate_samples  # noqa: E402
from training.data.video_samples import video_samples  # noqa: E402
from training.metrics import load_model  # noqa: E402
from training.train import train  # noqa: E402
from training.train_config import TrainConfig  # noqa: E402


def run(seed: int, weight: float, epochs: int, one_extra: bool, out_dir: Path) -> dict:
    """Triangulation, pair-only and every-camera scores for one draw of bodies and detector offsets."""
    cams = _rig()
    rng = np.random.default_rng(seed)
    world_train, world_test = random_bodies(1500, rng), random_bodies(300, rng)
    pix_train = _detections(cams, world_train, np.random.default_rng(10 + seed), rng)
    pix_test = _detections(cams, world_test, np.random.default_rng(10 + seed), rng)
    used, pair, scored = ([1, 2, 3], (1, 2), [0]) if one_extra else ([0, 1, 2, 3], (0, 1), [2, 3])
    sub = [cams[v] for v in used]
    ones = np.ones(pix_train[used].shape[:3])
    local = (used.index(pair[0]), used.index(pair[1]))
    data = {"pair_only": video_samples(sub, pix_train[used], ones, pairs=[local]).samples,
            "every_camera": video_samples(sub, pix_train[used], ones, pairs=[local], extra_views=True).samples}
    test = triangulate_samples(video_samples(cams, pix_test, np.ones(pix_test.shape[:3]), pairs=[pair]).samples)
    batch = test.batch(torch.arange(len(test)))
    reference = triangulate_views([cams[v] for v in scored], pix_test[scored], np.ones(pix_test[scored].shape[:3]),
                                  0.1) if len(scored) >= 2 else None
    world_from_cam = cams[pair[0]].cam_from_world.inverse()

    def score(pose_cam: np.ndarray) -> dict:
        world = world_from_cam.apply(pose_cam)
        out = {"truth_mm": 1000 * float(np.nanmean(np.linalg.norm(world - world_test, axis=-1))),
               "reprojection_px": float(np.nanmedian(np.linalg.norm(
                   np.stack([cams[v].project(world) - pix_test[v] for v in scored]), axis=-1)))}
        if reference is not None:
            out["vs_other_cameras_mm"] = 1000 * float(np.nanmean(np.linalg.norm(world - reference, axis=-1)))
        return out

    result = {"triangulation": score(batch["coarse0"].double().numpy())}
    for name, samples in data.items():
        cfg = TrainConfig(out_dir=str(out_dir / f"{name}_{seed}"), layout="h36m17", view_channels=16,
                          joint_channels=32, part_channels=64, decoder_channels=32, batch_size=128,
                          samples_per_epoch=1500, epochs=epochs, lr=3e-3, val_fraction=0.0, threads=1, device="cpu",
                          progress="off", seed=0, w_extra_views=weight)
        with contextlib.redirect_stdout(io.StringIO()):
            loaded = load_model(train(cfg, [samples]))
        with torch.no_grad():
            refined, _ = refine_tensors(loaded.model.eval(), batch["coarse0"], batch["coarse1"], batch["reproj_err"],
                                        batch["valid"], batch["R10"], batch["t10"], spec=loaded.spec, fuse=True)
        result[name] = score(refined.double().numpy())
        result[name]["ratio"] = {k: v / result["triangulation"][k] for k, v in result[name].items()}
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weight", type=float, default=1.0, help="w_extra_views (w_reprojection is 1)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--one-extra", action="store_true")
    p.add_argument("--out-dir", default="runs/multiview_weak_twin")
    p.add_argument("--json")
    a = p.parse_args()
    torch.set_num_threads(1)
    results = {}
    for seed in (int(s) for s in a.seeds.split(",")):
        results[seed] = run(seed, a.weight, a.epochs, a.one_extra, Path(a.out_dir))
        for name, r in results[seed].items():
            print(f"seed {seed} {name:<14}" + "  ".join(f"{k} {v:.2f}" for k, v in r.items() if k != "ratio")
                  + ("  ratio " + " ".join(f"{v:.3f}" for v in r["ratio"].values()) if "ratio" in r else ""))
    if a.json:
        Path(a.json).write_text(json.dumps({"weight": a.weight, "epochs": a.epochs, "one_extra": a.one_extra,
                                            "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
