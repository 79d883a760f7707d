"""Fine-tuning on real 2D: BatchNorm statistics stay frozen, and mixing 2D-only samples with mocap keeps the
mocap's 3D supervision (both were measured to matter, docs/training.md)."""

from __future__ import annotations

import numpy as np
import torch

from cvpose_ros.model.pipeline import create_model
from training.data.samples import TwoViewSamples, triangulate_samples
from training.train import freeze_batchnorm
from training.train_data import concat_keeping_truth


def test_frozen_batchnorm_keeps_running_statistics():
    model = create_model(view_channels=8, joint_channels=16, part_channels=16, decoder_channels=8).train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    freeze_batchnorm(model)
    model(torch.randn(4, 2, 17, 5) * 3.0 + 1.0)
    after = {k: v for k, v in model.state_dict().items() if "running" in k}
    assert before and all(torch.equal(before[k], after[k]) for k in before)
    model.train()
    model(torch.randn(4, 2, 17, 5) * 3.0 + 1.0)
    assert any(not torch.equal(before[k], model.state_dict()[k]) for k in before)  # unfrozen: they move


def _samples(n: int, with_truth: bool, seed: int) -> TwoViewSamples:
    rng = np.random.default_rng(seed)
    K = np.array([[800.0, 0, 320], [0, 800.0, 240], [0, 0, 1]])
    R10 = np.array([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]])  # camera 1 looks along camera 0's x axis
    t10 = np.array([3.0, 0.0, 3.0])
    gt = rng.uniform(-0.5, 0.5, (n, 17, 3)) + [0.0, 0.0, 3.0]
    cam1 = gt @ R10.T + t10
    kp = np.stack([gt[..., :2] / gt[..., 2:] * 800 + [320, 240], cam1[..., :2] / cam1[..., 2:] * 800 + [320, 240]], 1)
    return TwoViewSamples(kp, np.ones((n, 2, 17)), np.broadcast_to(K, (n, 2, 3, 3)), np.zeros((n, 2, 8)),
                          np.broadcast_to(R10, (n, 3, 3)), np.broadcast_to(t10, (n, 3)), gt if with_truth else None)


def test_mixing_2d_only_samples_keeps_the_others_truth():
    mocap = triangulate_samples(_samples(5, True, 0))
    real = triangulate_samples(_samples(3, False, 1))
    mixed = concat_keeping_truth([mocap, real])
    assert len(mixed) == 8 and mixed.samples.gt3d is not None
    assert np.isfinite(mixed.samples.gt3d[:5]).all() and np.isnan(mixed.samples.gt3d[5:]).all()
    only_real = concat_keeping_truth([real, real])
    assert only_real.samples.gt3d is None
