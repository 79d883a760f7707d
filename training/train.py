"""`cvpose-train`: weakly supervised (optionally + supervised) training of CV-UGCN on two-view samples.

Sources: Human3.6M preprocessed files, motion capture files and procedural motion (regenerated every epoch with
fresh bodies, rigs and detector noise), ready-made TwoViewSamples .npz files, or samples passed from Python
(`train(config, sources=[...])`, used by the robot-bag fine-tuning). Writes OUT_DIR/metrics.jsonl (one line per
epoch), last.pt, best.pt (best validation score) and last_state.pt (optimiser state for --resume).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from cvpose_ros.devtools.bag_io import BagError
from cvpose_ros.model.backend import resolve_device
from cvpose_ros.model.checkpoint import CheckpointError, save_checkpoint
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.losses import WeakLossWeights, weak_supervision_loss
from cvpose_ros.model.pipeline import create_model, refine_tensors
from training.data.samples import EXTRA_FIELDS, SampleError, TriangulatedSamples, TwoViewSamples
from training.metrics import compare, load_model, summarise
from training.train_config import ConfigError, TrainConfig, config_from_args
from training.train_data import DataSources

_BATCH_KEYS_PER_VIEW = ("kp2d", "conf", "K", "dist")


def swap_views(batch: dict[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Exchange the two views of the samples where `mask` (B,) is True (camera 1 becomes camera 0)."""
    out = dict(batch)
    m = mask.view(-1, 1, 1)
    out["coarse0"] = torch.where(m, batch["coarse1"], batch["coarse0"])
    out["coarse1"] = torch.where(m, batch["coarse0"], batch["coarse1"])
    for key in _BATCH_KEYS_PER_VIEW:
        value = batch[key]
        out[key] = torch.where(mask.view((-1,) + (1,) * (value.dim() - 1)), value.flip(1), value)
    R01 = batch["R10"].transpose(1, 2)
    out["R10"] = torch.where(m, R01, batch["R10"])
    out["t10"] = torch.where(mask.view(-1, 1), -(R01 @ batch["t10"][..., None])[..., 0], batch["t10"])
    gt1 = batch["gt3d"] @ batch["R10"].transpose(1, 2) + batch["t10"][:, None]
    out["gt3d"] = torch.where(m, gt1, batch["gt3d"])
    if "extra_R" in batch:  # further cameras are stored relative to camera 0: re-anchor them on the new camera 0
        t01 = -(R01 @ batch["t10"][..., None])[..., 0]
        R = batch["extra_R"] @ R01[:, None]
        t = (batch["extra_R"] @ t01[:, None, :, None])[..., 0] + batch["extra_t"]
        out["extra_R"] = torch.where(mask.view(-1, 1, 1, 1), R, batch["extra_R"])
        out["extra_t"] = torch.where(mask.view(-1, 1, 1), t, batch["extra_t"])
    return out


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """Put every BatchNorm layer in eval mode: running statistics stay those of the initial training and each
    batch is normalised with them (a small, one-rig real set must not redefine the input distribution)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def _device(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _distributed(device_name: str) -> tuple[int, int, torch.device | None]:
    """(rank, world size, this rank's device or None when single-process); joins the process group when launched by
    torchrun with WORLD_SIZE > 1: NCCL with one GPU per local rank when CUDA is used (device auto or cuda), gloo on
    the CPU (device cpu, or auto without CUDA). Several machines use the same torchrun rendezvous (docs/training.md)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if device_name.startswith("cuda") and not use_cuda:
        raise ConfigError(f"device {device_name!r} requested under torchrun but CUDA is not available; use cpu "
                          "(gloo) or auto")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s): start "
                              "at most one process per GPU (torchrun --nproc_per_node)")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), world, torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")


def _all_reduce(values: list[float], device: torch.device, op: str = "sum") -> list[float]:
    """Element-wise sum (or max/min) of `values` over all ranks."""
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}[op])
    return tensor.tolist()


class Trainer:
    """Owns the model, optimiser, data and logs of one run."""

    def __init__(self, config: TrainConfig, sources: Sequence[TwoViewSamples] = ()):
        self.cfg = cfg = config
        self.rank, self.world, rank_device = _distributed(cfg.device)
        self.device = rank_device or _device(cfg.device)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed + self.rank)  # view swaps and dropout differ per rank; DDP syncs the weights
        # Every rank draws the same epoch data and takes its own share of it (DistributedSampler)
        self.rng = np.random.default_rng(cfg.seed)
        self.out = Path(cfg.out_dir)
        if self.rank == 0:  # only rank 0 writes outputs
            self.out.mkdir(parents=True, exist_ok=True)
        self.weights = WeakLossWeights(cfg.w_reprojection, cfg.w_symmetry, cfg.w_transform, cfg.w_bone_direction,
                                       cfg.w_supervised, cfg.w_reprojection if cfg.w_extra_views is None
                                       else cfg.w_extra_views)
        self.data = DataSources(cfg, list(sources), self.rng)
        self._build_model()
        self.epoch, self.best_score, self.started = 0, math.inf, time.time()
        if cfg.resume:
            self._resume()

    def _build_model(self) -> None:
        cfg = self.cfg
        if cfg.init:
            loaded = load_model(cfg.init)
            self.spec, model = loaded.spec, loaded.model.train()
        else:
            self.spec = FeatureSpec(use_reprojection_error=cfg.use_reprojection_error, use_validity=cfg.use_validity)
            model = create_model(self.spec, view_channels=cfg.view_channels, joint_channels=cfg.joint_channels,
                                 part_channels=cfg.part_channels, decoder_channels=cfg.decoder_channels,
                                 dropout=cfg.dropout, layout=cfg.layout)
        if model.layout.name != cfg.layout:
            raise ConfigError(f"init checkpoint {cfg.init} is for layout {model.layout.name!r}, the config trains "
                              f"{cfg.layout!r}")
        self.model = model.to(self.device)
        self.net = self.model
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, amsgrad=True)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="min", factor=cfg.lr_decay,
                                                                    patience=cfg.lr_patience)

    def _resume(self) -> None:
        last, state_path = self.out / "last.pt", self.out / "last_state.pt"
        if not last.exists() or not state_path.exists():
            raise ConfigError(f"--resume: no {last} and {state_path} to continue from")
        loaded = load_model(last)
        self.model.load_state_dict(loaded.model.state_dict())
        state = torch.load(state_path, map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best_score = int(state["epoch"]), float(state["best_score"])
        # draw new samples rather than replaying the first epochs' data
        self.rng = self.data.rng = np.random.default_rng([self.cfg.seed, self.epoch])
        self.log(f"resumed from {last} after epoch {self.epoch}")

    def log(self, text: str) -> None:
        if self.rank == 0:
            print(text, flush=True)

    # ------------------------------------------------------------------------------------------------- training
    def train_epoch(self, data: TriangulatedSamples) -> dict[str, float]:
        """One pass over `data` (this rank's share); returns mean loss terms and throughput."""
        self.net.train()
        if self.cfg.freeze_batchnorm:
            freeze_batchnorm(self.model)
        sampler = DistributedSampler(range(len(data)), num_replicas=self.world, rank=self.rank, shuffle=True,
                                     seed=self.cfg.seed, drop_last=self.world > 1)  # equal shares: equal steps
        sampler.set_epoch(self.epoch)
        order = torch.tensor(list(sampler), dtype=torch.long)
        batches = [order[i:i + self.cfg.batch_size] for i in range(0, len(order), self.cfg.batch_size)]
        batches = [b for b in batches if len(b) > 1]  # BatchNorm needs two samples
        show = self.rank == 0 and (self.cfg.progress == "on" or (self.cfg.progress == "auto" and sys.stderr.isatty()))
        sums: dict[str, float] = {}
        start, seen = time.time(), 0
        for index in tqdm(batches, desc=f"epoch {self.epoch + 1}", disable=not show, mininterval=2.0, leave=False):
            batch = data.batch(index)
            batch = swap_views(batch, torch.rand(len(index)) < 0.5)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            refined0, refined1 = refine_tensors(self.net, batch["coarse0"], batch["coarse1"], batch["reproj_err"],
                                                batch["valid"], batch["R10"], batch["t10"], spec=self.spec)
            loss, terms = weak_supervision_loss(refined0, refined1, batch["kp2d"], batch["conf"], batch["K"],
                                                batch["dist"], batch["R10"], batch["t10"], self.weights,
                                                gt3d=batch["gt3d"], layout=self.model.layout,
                                                extra={k: v for k, v in batch.items() if k in EXTRA_FIELDS}
                                                if "extra_kp2d" in batch else None)
            finite = bool(torch.isfinite(loss))
            if self.world > 1:  # every rank skips together, or the gradient all-reduce would wait forever
                finite = _all_reduce([float(finite)], self.device, "min")[0] > 0
            if not finite:
                continue  # a degenerate batch must not poison the weights
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.optimizer.step()
            for name, value in {"loss": loss.detach(), **terms}.items():
                sums[name] = sums.get(name, 0.0) + float(value) * len(index)
            seen += len(index)
        elapsed = max(time.time() - start, 1e-9)
        if self.world > 1:  # means over all ranks, so that every rank's scheduler sees the same loss
            names = sorted(sums)
            *totals, seen = _all_reduce([sums[n] for n in names] + [float(seen)], self.device)
            sums, seen = dict(zip(names, totals, strict=True)), int(seen)
            self._average_buffers()
        return {**{k: v / max(seen, 1) for k, v in sums.items()}, "samples_per_s": seen / elapsed}

    def _average_buffers(self) -> None:
        """Average BatchNorm running statistics over ranks (each rank saw its own batches), so that every rank, and
        the checkpoint rank 0 writes, holds the statistics of all the data."""
        import torch.distributed as dist

        for buffer in self.model.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer, dist.ReduceOp.SUM)
                buffer.div_(self.world)

    def rank_disagreement(self) -> float:
        """Largest |weight or buffer of this rank - rank 0's| over all ranks (0.0 when in sync; 0.0 single-process).
        Checked after every epoch: ranks that drift apart would silently train different models."""
        if self.world == 1:
            return 0.0
        import torch.distributed as dist

        state = torch.cat([t.detach().double().flatten() for t in self.model.state_dict().values()])
        reference = state.clone()
        dist.broadcast(reference, src=0)
        return _all_reduce([float((state - reference).abs().max())], self.device, "max")[0]

    def validate(self) -> tuple[dict, float]:
        """Validation metrics per set and the score used to keep best.pt (lower is better)."""
        results, ratios, clean = {}, [], []
        for name, data in self.data.validation.items():
            if data.samples.gt3d is None:
                continue
            errors = compare(self.model, self.spec, data, device=self.device)
            tri, ref = summarise(errors["tri_mpjpe"]), summarise(errors["ref_mpjpe"])
            results[name] = {"tri_mpjpe_mm": tri, "ref_mpjpe_mm": ref, "ratio": ref / tri if tri > 0 else math.nan,
                             "tri_pmpjpe_mm": summarise(errors["tri_pmpjpe"]),
                             "ref_pmpjpe_mm": summarise(errors["ref_pmpjpe"])}
            (clean if name.endswith("clean") else ratios).append(ref if name.endswith("clean") else ref / tri)
        if not results:
            return results, math.nan
        score = (float(np.mean(ratios)) if ratios else 0.0) + 0.01 * (float(np.mean(clean)) if clean else 0.0)
        return results, score

    def save(self, metrics: dict, best: bool) -> None:
        training = {"config": self.cfg.to_dict(), "epoch": self.epoch}
        save_checkpoint(self.out / "last.pt", self.model, self.spec, training=training, metrics=metrics)
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                    "epoch": self.epoch, "best_score": self.best_score}, self.out / "last_state.pt")
        if best:
            save_checkpoint(self.out / "best.pt", self.model, self.spec, training=training, metrics=metrics)

    def run(self) -> Path:
        """Train until `epochs` or `max_minutes`; returns the path of the best checkpoint."""
        cfg = self.cfg
        self.log(f"training on {self.device} (world {self.world}), {sum(p.numel() for p in self.model.parameters())}"
                 f" parameters, output {self.out}")
        while self.epoch < cfg.epochs:
            epoch_start = time.time()
            data = self.data.epoch_data()
            stats = self.train_epoch(data)
            self.epoch += 1
            self.scheduler.step(stats.get("loss", math.inf))
            disagreement = self.rank_disagreement()
            results, score = self.validate() if self.rank == 0 else ({}, math.nan)
            if math.isnan(score):
                score = stats.get("loss", math.inf)
            best = score < self.best_score
            self.best_score = min(self.best_score, score)
            record = {"epoch": self.epoch, "lr": self.optimizer.param_groups[0]["lr"], "train": stats,
                      "val": results, "score": score, "best": best, "epoch_s": time.time() - epoch_start,
                      "elapsed_s": time.time() - self.started, "samples": len(data), "world_size": self.world,
                      "rank_max_difference": disagreement}
            if self.rank == 0:
                with open(self.out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                self.save({"val": results, "score": score, "epoch": self.epoch}, best)
                val_text = " ".join(f"{k}={v['ref_mpjpe_mm']:.1f}/{v['tri_mpjpe_mm']:.1f}mm"
                                    for k, v in results.items())
                self.log(f"epoch {self.epoch}: loss {stats.get('loss', math.nan):.4f} lr {record['lr']:.2e} "
                         f"{stats['samples_per_s']:.0f} samples/s | val {val_text} score {score:.4f}"
                         f"{' (best)' if best else ''}")
            if disagreement > 0:
                raise RuntimeError(f"distributed ranks disagree after epoch {self.epoch}: weights differ by up to "
                                   f"{disagreement:.3g}")
            stop = cfg.max_minutes > 0 and time.time() - self.started > cfg.max_minutes * 60
            if self.world > 1:  # rank 0's clock decides, so that all ranks leave the loop together
                stop = _all_reduce([float(stop and self.rank == 0)], self.device)[0] > 0
            if stop:
                self.log(f"stopping: {cfg.max_minutes} min budget used")
                break
        return self.out / ("best.pt" if (self.out / "best.pt").exists() else "last.pt")


def train(config: TrainConfig, sources: Sequence[TwoViewSamples] = (), init: str | Path | None = None) -> Path:
    """Train with `config` plus in-memory `sources` (e.g. robot-bag samples); `init` starts from a checkpoint
    (fine-tuning; the checkpoint's architecture and feature spec are kept). Returns the best checkpoint's path."""
    if init is not None:
        config.init = str(init)
    config.validate(has_extra_sources=bool(sources))
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    try:
        best = Trainer(config, sources).run()
        if distributed:
            import torch.distributed as dist

            # Every rank arrives before any tears gloo down: a rank that destroys its group while another still
            # talks to it can abort in gloo's threads ("terminate called without an active exception"). Only on
            # success: after an error the other ranks are not coming, and torchrun stops them.
            dist.barrier()
        return best
    finally:
        if distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    """Console entry point; one line on stderr and exit status 2 on bad configuration or data."""
    try:
        config = config_from_args(argv)
        best = train(config)
    except (ConfigError, SampleError, CheckpointError, BagError, ValueError, OSError) as exc:
        print(f"cvpose-train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cvpose-train: interrupted", file=sys.stderr)
        return 130
    print(f"best checkpoint: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
