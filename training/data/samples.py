"""Two-view training samples (the contract shared by every data source) and their cached coarse triangulation.

`TwoViewSamples` holds N samples of one person seen by two calibrated cameras (see docs/ARCHITECTURE.md), and
optionally what E further calibrated cameras saw of the same person at the same instant (`extra_*`: 2D targets of
the weak reprojection loss only; the network still refines the pair).
`TriangulatedSamples` adds, once per sample set, the coarse DLT poses in both camera frames with
`cvpose_ros.geometry.triangulation.triangulate_pair`, so that training epochs only run the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from cvpose_ros.body.skeleton import NUM_JOINTS
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.geometry.triangulation import triangulate_pair

NUM_DIST = 8


class SampleError(ValueError):
    """Malformed training samples (wrong shapes, non-finite calibration)."""


@dataclass
class TwoViewSamples:
    """N two-view samples, float32 arrays; NaN keypoints and zero confidence mark missing joints."""

    kp2d: np.ndarray                 # (N, 2, J, 2) raw pixels per view
    conf: np.ndarray                 # (N, 2, J)
    K: np.ndarray                    # (N, 2, 3, 3)
    dist: np.ndarray                 # (N, 2, 8) OpenCV rational order
    R10: np.ndarray                  # (N, 3, 3) cam1_from_cam0 rotation
    t10: np.ndarray                  # (N, 3) cam1_from_cam0 translation, metres
    gt3d: np.ndarray | None = None   # (N, J, 3) in camera 0's frame, metres
    # further cameras of the recording (all six or none): weak 2D targets beyond the pair
    extra_kp2d: np.ndarray | None = None   # (N, E, J, 2) raw pixels, NaN = missing
    extra_conf: np.ndarray | None = None   # (N, E, J), 0 = missing (also pads a sample with fewer cameras)
    extra_K: np.ndarray | None = None      # (N, E, 3, 3)
    extra_dist: np.ndarray | None = None   # (N, E, 8)
    extra_R: np.ndarray | None = None      # (N, E, 3, 3) extra camera from camera 0, rotation
    extra_t: np.ndarray | None = None      # (N, E, 3) extra camera from camera 0, translation, metres

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                setattr(self, f.name, np.asarray(value, dtype=np.float32))
        self.validate()

    def __len__(self) -> int:
        return int(self.kp2d.shape[0])

    @property
    def extra_views(self) -> int:
        """Number E of further cameras (0 without)."""
        return 0 if self.extra_kp2d is None else int(self.extra_kp2d.shape[1])

    def validate(self) -> None:
        """Raise SampleError unless every array has the contract's shape and the calibration is finite."""
        n, j = self.kp2d.shape[0] if self.kp2d.ndim else -1, NUM_JOINTS
        expected = {"kp2d": (n, 2, j, 2), "conf": (n, 2, j), "K": (n, 2, 3, 3), "dist": (n, 2, NUM_DIST),
                    "R10": (n, 3, 3), "t10": (n, 3)}
        if self.gt3d is not None:
            expected["gt3d"] = (n, j, 3)
        present = [getattr(self, name) is not None for name in EXTRA_FIELDS]
        if any(present) and not all(present):
            raise SampleError(f"TwoViewSamples: give all of {EXTRA_FIELDS} or none")
        if all(present):
            e = self.extra_kp2d.shape[1] if self.extra_kp2d.ndim == 4 else -1
            expected.update(extra_kp2d=(n, e, j, 2), extra_conf=(n, e, j), extra_K=(n, e, 3, 3),
                            extra_dist=(n, e, NUM_DIST), extra_R=(n, e, 3, 3), extra_t=(n, e, 3))
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise SampleError(f"TwoViewSamples.{name} must have shape {shape}, got {getattr(self, name).shape}")
        for name in ("K", "dist", "R10", "t10") + (EXTRA_FIELDS[2:] if all(present) else ()):
            if not np.isfinite(getattr(self, name)).all():
                raise SampleError(f"TwoViewSamples.{name} has non-finite values")
        if n and (self.K[:, :, 0, 0] <= 0).any():
            raise SampleError("TwoViewSamples.K has non-positive focal lengths")

    def subset(self, index: np.ndarray | slice) -> TwoViewSamples:
        """Samples selected by an index array, boolean mask or slice."""
        return TwoViewSamples(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                                 for f in fields(self)})

    def swapped(self) -> TwoViewSamples:
        """The same samples with the two views exchanged (camera 1 becomes camera 0)."""
        R01 = np.transpose(self.R10, (0, 2, 1))
        t01 = -np.einsum("nij,nj->ni", R01, self.t10)
        gt = None if self.gt3d is None else self.gt3d @ np.transpose(self.R10, (0, 2, 1)) + self.t10[:, None]
        extra = {}
        if self.extra_kp2d is not None:  # extra camera from the new camera 0 (the old camera 1)
            extra = {name: getattr(self, name) for name in EXTRA_FIELDS[:4]}
            extra["extra_R"] = np.einsum("neij,njk->neik", self.extra_R, R01)
            extra["extra_t"] = np.einsum("neij,nj->nei", self.extra_R, t01) + self.extra_t
        return TwoViewSamples(self.kp2d[:, ::-1], self.conf[:, ::-1], self.K[:, ::-1], self.dist[:, ::-1],
                              R01, t01, gt, **extra)

    def with_extra_views(self, views: int) -> TwoViewSamples:
        """The same samples with exactly `views` extra-camera slots: missing slots are padded (confidence 0, NaN
        pixels, identity camera), so that sets with different numbers of cameras concatenate."""
        have = self.extra_views
        if have == views and self.extra_kp2d is not None:
            return self
        if have > views:
            raise SampleError(f"cannot shrink {have} extra views to {views}")
        n, j, pad = len(self), self.kp2d.shape[2], views - have
        filler = {"extra_kp2d": np.full((n, pad, j, 2), np.nan), "extra_conf": np.zeros((n, pad, j)),
                  "extra_K": np.broadcast_to(np.eye(3), (n, pad, 3, 3)), "extra_dist": np.zeros((n, pad, NUM_DIST)),
                  "extra_R": np.broadcast_to(np.eye(3), (n, pad, 3, 3)),
                  "extra_t": np.broadcast_to([0.0, 0.0, 1.0], (n, pad, 3))}
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in EXTRA_FIELDS:
            values[name] = filler[name] if values[name] is None else np.concatenate([values[name], filler[name]], 1)
        return TwoViewSamples(**values)

    def save(self, path: str | Path) -> None:
        """Write an .npz (gt3d omitted when unknown)."""
        np.savez_compressed(path, **{f.name: getattr(self, f.name) for f in fields(self)
                                     if getattr(self, f.name) is not None})

    @classmethod
    def load(cls, path: str | Path) -> TwoViewSamples:
        """Read an .npz written by `save`; raises SampleError on missing fields."""
        with np.load(path) as data:
            missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in data]
            if missing:
                raise SampleError(f"{path}: not a TwoViewSamples file (missing {missing})")
            return cls(**{f.name: data[f.name] if f.name in data else None for f in fields(cls)})


EXTRA_FIELDS = ("extra_kp2d", "extra_conf", "extra_K", "extra_dist", "extra_R", "extra_t")


def concat_samples(parts: Sequence[TwoViewSamples]) -> TwoViewSamples:
    """One sample set from several; gt3d is kept only when every part has it; when any part has extra cameras,
    every part is padded to the largest number of them (`with_extra_views`)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        raise SampleError("no samples to concatenate")
    with_gt = all(p.gt3d is not None for p in parts)
    if any(p.extra_kp2d is not None for p in parts):
        views = max(p.extra_views for p in parts)
        parts = [p.with_extra_views(views) for p in parts]
    return TwoViewSamples(**{f.name: (np.concatenate([getattr(p, f.name) for p in parts])
                                      if getattr(parts[0], f.name) is not None and (f.name != "gt3d" or with_gt)
                                      else None) for f in fields(TwoViewSamples)})


def camera_from_arrays(K: np.ndarray, dist: np.ndarray) -> CameraModel:
    """CameraModel from one sample's K (3, 3) and 8 rational coefficients (plumb_bob when k4..k6 are zero)."""
    dist = np.asarray(dist, dtype=np.float64)
    model = "plumb_bob" if not np.any(dist[5:]) else "rational_polynomial"
    return CameraModel(K=np.asarray(K, np.float64), dist=dist[:5] if model == "plumb_bob" else dist,
                       distortion_model=model, width=0, height=0)


@dataclass
class TriangulatedSamples(torch.utils.data.Dataset):
    """Samples plus their coarse triangulation, as float32 torch tensors; a torch Dataset (one dict per item),
    though training slices whole batches with `batch` (much faster than collating single items)."""

    samples: TwoViewSamples
    coarse0: torch.Tensor        # (N, J, 3)
    coarse1: torch.Tensor        # (N, J, 3)
    reproj_err: torch.Tensor     # (N, J) pixels, 0 where invalid
    valid: torch.Tensor          # (N, J) bool

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.batch(torch.tensor([i])).items()}

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tensors of the samples at `index` (a LongTensor) as a dict; gt3d is NaN-filled when unknown."""
        s = self.samples
        idx = index.numpy()
        out = {"coarse0": self.coarse0[index], "coarse1": self.coarse1[index],
               "reproj_err": self.reproj_err[index], "valid": self.valid[index]}
        for name in ("kp2d", "conf", "K", "dist", "R10", "t10"):
            out[name] = torch.from_numpy(getattr(s, name)[idx])
        out["gt3d"] = (torch.from_numpy(s.gt3d[idx]) if s.gt3d is not None
                       else torch.full((len(idx), NUM_JOINTS, 3), float("nan")))
        if s.extra_kp2d is not None:
            for name in EXTRA_FIELDS:
                out[name] = torch.from_numpy(getattr(s, name)[idx])
        return out


def triangulate_samples(samples: TwoViewSamples, min_confidence: float = 0.1,
                        cache: str | Path | None = None) -> TriangulatedSamples:
    """Coarse poses for every sample, one `triangulate_pair` call per distinct camera pair.

    With `cache` (an .npz path) the result is read from there when present and written otherwise.
    """
    if cache is not None and Path(cache).exists():
        with np.load(cache) as c:
            if c["coarse0"].shape[0] == len(samples):
                return _wrap(samples, c["coarse0"], c["coarse1"], c["reproj_err"], c["valid"])
    n = len(samples)
    coarse0 = np.full((n, NUM_JOINTS, 3), np.nan, np.float32)
    coarse1 = np.full_like(coarse0, np.nan)
    reproj = np.zeros((n, NUM_JOINTS), np.float32)
    valid = np.zeros((n, NUM_JOINTS), bool)
    calib = np.concatenate([samples.K.reshape(n, -1), samples.dist.reshape(n, -1), samples.R10.reshape(n, -1),
                            samples.t10], axis=1)
    _, first, group = np.unique(calib, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(group.ravel(), kind="stable")
    bounds = np.searchsorted(group.ravel()[order], np.arange(len(first) + 1))
    for g, i0 in enumerate(first):  # one call per camera pair (rigs are few, samples per rig many)
        members = order[bounds[g]:bounds[g + 1]]
        cam0 = camera_from_arrays(samples.K[i0, 0], samples.dist[i0, 0])
        cam1 = camera_from_arrays(samples.K[i0, 1], samples.dist[i0, 1])
        rel = RigidTransform(_orthonormal(samples.R10[i0]), samples.t10[i0].astype(np.float64))
        tri = triangulate_pair(cam0, cam1, rel, samples.kp2d[members, 0], samples.conf[members, 0],
                               samples.kp2d[members, 1], samples.conf[members, 1], min_confidence=min_confidence)
        coarse0[members], coarse1[members], valid[members] = tri.cam0, tri.cam1, tri.valid
        reproj[members] = np.nan_to_num(tri.reprojection_error, nan=0.0)
    if cache is not None:
        np.savez(cache, coarse0=coarse0, coarse1=coarse1, reproj_err=reproj, valid=valid)
    return _wrap(samples, coarse0, coarse1, reproj, valid)


def _orthonormal(R: np.ndarray) -> np.ndarray:
    """Nearest rotation to a float32-rounded one (SVD), so RigidTransform's strict check accepts it."""
    u, _, vt = np.linalg.svd(np.asarray(R, np.float64))
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def _wrap(samples: TwoViewSamples, coarse0, coarse1, reproj, valid) -> TriangulatedSamples:
    valid = np.asarray(valid, bool) & np.isfinite(coarse0).all(-1) & np.isfinite(coarse1).all(-1)
    return TriangulatedSamples(samples, torch.from_numpy(np.nan_to_num(coarse0).astype(np.float32)),
                               torch.from_numpy(np.nan_to_num(coarse1).astype(np.float32)),
                               torch.from_numpy(np.asarray(reproj, np.float32)), torch.from_numpy(valid))


def concat_triangulated(parts: Sequence[TriangulatedSamples]) -> TriangulatedSamples:
    """One triangulated set from several (samples concatenated like `concat_samples`)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        raise SampleError("no triangulated samples to concatenate")
    return TriangulatedSamples(concat_samples([p.samples for p in parts]),
                               *(torch.cat([getattr(p, name) for p in parts])
                                 for name in ("coarse0", "coarse1", "reproj_err", "valid")))


def subset_triangulated(data: TriangulatedSamples, index: np.ndarray) -> TriangulatedSamples:
    """The samples at `index` (an integer array) with their triangulation."""
    t = torch.from_numpy(np.asarray(index, dtype=np.int64))
    return TriangulatedSamples(data.samples.subset(index), data.coarse0[t], data.coarse1[t], data.reproj_err[t],
                               data.valid[t])
