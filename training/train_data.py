"""Training and validation data of one `cvpose-train` run.

Fixed sources (Human3.6M files, TwoViewSamples .npz files, samples passed from Python) are triangulated once.
Generated sources (motion capture and procedural motion) draw a fresh set of samples every epoch: new frames, bodies,
headings, rigs and noise, so a long run never sees the same input twice. Validation sets are built once with a
fixed seed: held-back motion sequences through the "wide" and "narrow" rigs with `validation_noise`, a set with
`validation_light_noise` (the do-no-harm check) and a clean set (exact 2D), Human3.6M validation subjects, or a
held-back share of the fixed samples.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from training.data.h36m import load_h36m, parse_pairs
from training.data.motion import load_motion, motion_samples, procedural_sequences, split_sequences
from training.data.samples import (
    TriangulatedSamples,
    TwoViewSamples,
    concat_triangulated,
    subset_triangulated,
    triangulate_samples,
)
from training.train_config import TrainConfig

VALIDATION_SEED = 7919


class DataSources:
    """Builds each epoch's triangulated training samples and the fixed validation sets."""

    def __init__(self, config: TrainConfig, extra: list[TwoViewSamples], rng: np.random.Generator):
        self.cfg, self.rng = config, rng
        self.validation: dict[str, TriangulatedSamples] = {}
        self.fixed = self._fixed_sources(extra)
        self.train_sequences: dict[str, dict[str, np.ndarray]] = {}
        held: dict[str, dict[str, np.ndarray]] = {}
        if config.motion:
            sequences = load_motion(config.motion, stride=config.motion_stride)
            train_names, held_names = split_sequences(list(sequences), config.motion_holdout_every)
            self.train_sequences["mocap"] = {n: sequences[n] for n in train_names}
            held["mocap"] = {n: sequences[n] for n in held_names}
        if config.procedural_sequences > 0:
            self.train_sequences["procedural"] = procedural_sequences(config.procedural_sequences, config.seed)
            held["procedural"] = procedural_sequences(max(1, config.procedural_sequences // 8), config.seed + 10**6)
        self._generated_validation(held)

    # ------------------------------------------------------------------------------------------------- fixed
    def _fixed_sources(self, extra: list[TwoViewSamples]) -> TriangulatedSamples | None:
        cfg = self.cfg
        parts = list(extra)
        pairs = parse_pairs(cfg.h36m_pairs)
        if cfg.h36m_3d:
            parts.append(load_h36m(cfg.h36m_3d, cfg.h36m_2d, tuple(cfg.h36m_subjects), pairs, cfg.h36m_stride).samples)
            if cfg.h36m_val_subjects:
                val = load_h36m(cfg.h36m_3d, cfg.h36m_2d, tuple(cfg.h36m_val_subjects), pairs, cfg.h36m_stride)
                self.validation["h36m"] = self._cap(triangulate_samples(val.samples, cfg.min_confidence))
        parts += [TwoViewSamples.load(path) for path in cfg.samples]
        if cfg.bags:
            from training.data.bags import bag_samples  # rosbags is only needed when bags are used

            parts.append(bag_samples(cfg.bags, min_confidence=cfg.min_confidence))
        if not parts:
            return None
        fixed = concat_triangulated([triangulate_samples(p, cfg.min_confidence) for p in parts])
        if not self.validation and not cfg.motion and cfg.procedural_sequences <= 0 and cfg.val_fraction > 0:
            order = np.random.default_rng(VALIDATION_SEED).permutation(len(fixed))
            n_val = max(1, int(round(cfg.val_fraction * len(fixed)))) if len(fixed) > 4 else 0
            if n_val:
                self.validation["held_back"] = subset_triangulated(fixed, order[:n_val])
                fixed = subset_triangulated(fixed, order[n_val:])
        return fixed

    def _cap(self, data: TriangulatedSamples) -> TriangulatedSamples:
        if len(data) <= self.cfg.val_samples:
            return data
        pick = np.random.default_rng(VALIDATION_SEED).choice(len(data), self.cfg.val_samples, replace=False)
        return subset_triangulated(data, np.sort(pick))

    # --------------------------------------------------------------------------------------------- generated
    def _generate(self, sequences: dict[str, dict[str, np.ndarray]], count: int, rig_mix: dict[str, float],
                  noise_mix: dict[str, float], rng: np.random.Generator) -> TriangulatedSamples:
        """`count` samples split between mocap and procedural motion by `procedural_fraction`."""
        share = {"procedural": self.cfg.procedural_fraction if "mocap" in sequences else 1.0,
                 "mocap": 1.0 - self.cfg.procedural_fraction if "procedural" in sequences else 1.0}
        parts = []
        for kind, seqs in sequences.items():
            n = int(round(count * share[kind]))
            if n > 0 and seqs:
                samples = motion_samples(seqs, n, rig_mix, noise_mix, rng, mocap_convention=kind == "mocap",
                                         layout=self.cfg.layout, bone_spread=self.cfg.bone_spread)
                parts.append(triangulate_samples(samples, self.cfg.min_confidence))
        return concat_triangulated(parts)

    def _generated_validation(self, held: dict[str, dict[str, np.ndarray]]) -> None:
        held = {k: v for k, v in held.items() if v}
        if not held:
            return
        rng = np.random.default_rng(VALIDATION_SEED)
        n = max(3, self.cfg.val_samples // 3)
        noise = self.cfg.validation_noise
        self.validation[f"wide_{noise}"] = self._generate(held, n, {"wide": 1.0}, {noise: 1.0}, rng)
        self.validation[f"narrow_{noise}"] = self._generate(held, n, {"narrow": 1.0}, {noise: 1.0}, rng)
        if self.cfg.validation_light_noise:
            light = self.cfg.validation_light_noise
            self.validation[f"mixed_{light}"] = self._generate(held, n, self.cfg.rig_mix, {light: 1.0}, rng)
        self.validation["mixed_clean"] = self._generate(held, n, self.cfg.rig_mix, {"clean": 1.0}, rng)

    def epoch_data(self) -> TriangulatedSamples:
        """This epoch's training samples: fresh generated ones plus a random draw of the fixed ones."""
        cfg = self.cfg
        total = cfg.samples_per_epoch
        parts = []
        if self.train_sequences:
            n_generated = total if self.fixed is None else total // 2
            parts.append(self._generate(self.train_sequences, n_generated, cfg.rig_mix, cfg.noise_mix, self.rng))
        if self.fixed is not None:
            n_fixed = min(len(self.fixed), total - sum(len(p) for p in parts))
            parts.append(subset_triangulated(self.fixed, self.rng.choice(len(self.fixed), n_fixed, replace=False)))
        return concat_keeping_truth(parts)


def concat_keeping_truth(parts: list[TriangulatedSamples]) -> TriangulatedSamples:
    """`concat_triangulated`, but when some parts have 3D ground truth and others not (generated mocap mixed with
    real 2D-only samples), the others get NaN ground truth instead of everyone losing it: the supervised term then
    still trains on the generated samples and skips the real ones."""
    if any(p.samples.gt3d is not None for p in parts) and any(p.samples.gt3d is None for p in parts):
        parts = [p if p.samples.gt3d is not None else replace(p, samples=replace(
            p.samples, gt3d=np.full((len(p), p.samples.kp2d.shape[2], 3), np.nan, np.float32))) for p in parts]
    return concat_triangulated(parts)
