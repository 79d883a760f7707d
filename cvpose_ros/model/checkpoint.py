"""One-file CV-UGCN checkpoints: state_dict + metadata, loadable with `torch.load(weights_only=True)`.

File content (plain containers only): {"format_version": int, "state_dict": {name: tensor}, "metadata": {
"model": CVUGCNConfig dict, "features": FeatureSpec dict, "layout": "h36m17" | "coco17" (= the model's layout),
"training": dict, "metrics": dict, "created": ISO-8601 UTC, "package_version": str, "torch_version": str}}.
Every way a file can be unusable raises `CheckpointError(path, reason)` with one line naming the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from cvpose_ros import __version__
from cvpose_ros.body.skeleton import LAYOUTS
from cvpose_ros.model.cvugcn import CVUGCN, CVUGCNConfig
from cvpose_ros.model.features import FeatureSpec

FORMAT_VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
# Packaged default weights per keypoint layout (each file records its layout; see weights/MODEL_CARD*.md).
DEFAULT_CHECKPOINTS = {"h36m17": WEIGHTS_DIR / "cvugcn_h36m17.pt", "coco17": WEIGHTS_DIR / "cvugcn_coco17.pt"}
DEFAULT_CHECKPOINT = DEFAULT_CHECKPOINTS["h36m17"]
_REQUIRED_METADATA = ("model", "features", "layout")


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; str() is one line: 'checkpoint <path>: <reason>'."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"checkpoint {self.path}: {reason}")


@dataclass
class LoadedCheckpoint:
    """A rebuilt model (eval mode) with the feature spec it was trained with and the file's metadata."""

    model: CVUGCN
    spec: FeatureSpec
    metadata: dict
    path: Path


def _plain(value, what: str):
    """Round-trip through JSON so metadata holds only plain containers (weights_only loading accepts them)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint {what} must be JSON-like (dict/list/str/number/bool/None): {exc}") from None


def save_checkpoint(path: str | Path, model: CVUGCN, spec: FeatureSpec, *, training: dict | None = None,
                    metrics: dict | None = None) -> Path:
    """Write model weights and metadata to `path` atomically (temporary file + rename); returns the path.

    `training` describes the data and settings (sources, noise, epochs...), `metrics` the measured results; both
    must be JSON-like. A DataParallel/DDP wrapper is unwrapped.
    """
    model = getattr(model, "module", model)
    if model.config.in_channels != spec.in_channels:
        raise ValueError(f"model has {model.config.in_channels} input channels, spec gives {spec.in_channels}")
    path = Path(path)
    payload = {
        "format_version": FORMAT_VERSION,
        "state_dict": {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()},
        "metadata": {
            "model": model.config.to_dict(),
            "features": spec.to_dict(),
            "layout": model.config.layout,
            "training": _plain(training or {}, "training description"),
            "metrics": _plain(metrics or {}, "metrics"),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "package_version": str(__version__),
            "torch_version": str(torch.__version__),
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp_name)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
    return path


def _read_payload(path: Path) -> dict:
    """torch.load with weights_only=True, turning every failure into a CheckpointError."""
    if not path.exists():
        raise CheckpointError(path, "file does not exist")
    if not path.is_file():
        raise CheckpointError(path, "not a regular file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt, truncated or foreign files
        first_line = (str(exc).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(path, f"not a readable torch checkpoint (corrupt or truncated?): "
                                    f"{type(exc).__name__}: {first_line}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(path, f"expected a dict at top level, found {type(payload).__name__}")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(path, f"format version {version!r} is not supported (this code reads "
                                    f"{FORMAT_VERSION})")
    for key in ("state_dict", "metadata"):
        if not isinstance(payload.get(key), dict):
            raise CheckpointError(path, f"missing or malformed '{key}'")
    missing = [key for key in _REQUIRED_METADATA if key not in payload["metadata"]]
    if missing:
        raise CheckpointError(path, f"metadata lacks {missing}")
    return payload


def read_metadata(path: str | Path) -> dict:
    """Metadata of a checkpoint without building the model (raises CheckpointError like load_checkpoint)."""
    return _read_payload(Path(path))["metadata"]


def _check_state_dict(path: Path, model: CVUGCN, state: dict) -> None:
    """One clear line for missing, unexpected or mis-shaped tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        raise CheckpointError(path, f"state_dict lacks {len(missing)} tensor(s), e.g. {missing[0]!r}")
    if unexpected:
        raise CheckpointError(path, f"state_dict has {len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]!r}")
    for name, tensor in expected.items():
        found = state[name]
        if not isinstance(found, torch.Tensor) or found.shape != tensor.shape:
            shape = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            raise CheckpointError(path, f"tensor {name!r} has shape {shape}, the model built from the file's "
                                        f"hyper-parameters expects {tuple(tensor.shape)}")


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild the model described by a checkpoint, load its weights, move it to `device`, set eval mode."""
    path = Path(path)
    payload = _read_payload(path)
    metadata = payload["metadata"]
    if metadata["layout"] not in LAYOUTS:
        raise CheckpointError(path, f"layout {metadata['layout']!r} is not supported (expected one of "
                                    f"{sorted(LAYOUTS)})")
    try:
        config = CVUGCNConfig.from_dict({"layout": metadata["layout"], **dict(metadata["model"])})
        spec = FeatureSpec.from_dict(dict(metadata["features"]))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(path, f"bad hyper-parameters in metadata: {exc}") from None
    if config.layout != metadata["layout"]:
        raise CheckpointError(path, f"metadata says layout {metadata['layout']!r} but the model was built for "
                                    f"{config.layout!r}")
    if config.in_channels != spec.in_channels:
        raise CheckpointError(path, f"model takes {config.in_channels} input channels but its feature spec gives "
                                    f"{spec.in_channels}")
    model = CVUGCN(config)
    _check_state_dict(path, model, payload["state_dict"])
    model.load_state_dict(payload["state_dict"])
    return LoadedCheckpoint(model=model.to(device).eval(), spec=spec, metadata=metadata, path=path)
