"""Settings of `cvpose-train`: one dataclass, filled from a YAML file and overridden from the command line.

Every field is a YAML key and a `--kebab-case` option. Lists are YAML lists or comma-separated on the command line;
mixes (name -> weight) are YAML mappings or "a=0.5,b=0.5". Anything unknown or malformed raises ConfigError with one
line that names the key.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import yaml

from cvpose_ros.body.skeleton import LAYOUTS
from cvpose_ros.devtools.noise import PRESETS
from cvpose_ros.model.dataclass_dict import unknown_fields


class ConfigError(ValueError):
    """Invalid training configuration."""


@dataclass
class TrainConfig:
    """All options of a training run (see docs/training.md for what each does)."""

    # data: Human3.6M preprocessed files
    h36m_3d: str | None = None
    h36m_2d: str | None = None
    h36m_subjects: list[str] = field(default_factory=lambda: ["S1", "S5", "S6", "S7", "S8"])
    h36m_val_subjects: list[str] = field(default_factory=list)
    h36m_pairs: str = "0-1,0-2,1-3,2-3"
    h36m_stride: int = 4
    layout: str = "h36m17"                 # joint definition of data and model: h36m17 or coco17 (detector placement)
    bone_spread: float = 1.0               # body-size / bone-length variation of generated people (1 = Human3.6M-like)
    # data: motion capture files (regenerated every epoch with fresh rigs, bones and noise)
    motion: list[str] = field(default_factory=list)
    motion_stride: int = 2
    motion_holdout_every: int = 8          # every n-th sequence is held back for validation
    procedural_sequences: int = 0          # procedural motion (cvpose_ros.devtools.synthetic), sequences of 3 people
    procedural_fraction: float = 0.2       # share of generated samples drawn from procedural motion
    rig_mix: dict[str, float] = field(default_factory=lambda: {"h36m": 0.3, "wide": 0.15, "narrow": 0.15,
                                                               "random": 0.4})
    noise_mix: dict[str, float] = field(default_factory=lambda: {"clean": 0.2, "light": 0.2, "cpn_like": 0.45,
                                                                 "heavy": 0.15})
    validation_noise: str = "cpn_like"      # noise preset of the wide/narrow validation sets
    validation_light_noise: str = ""       # preset of an extra do-no-harm validation set ("" = none)
    # data: ready-made TwoViewSamples .npz files (e.g. from robot bags via cvpose-bag)
    samples: list[str] = field(default_factory=list)
    bags: list[str] = field(default_factory=list)   # rosbag2 recordings of keypoints + camera_info (weak only)
    val_fraction: float = 0.05             # share of fixed samples (h36m/bags) held back when no other validation
    samples_per_epoch: int = 20000
    val_samples: int = 2000
    min_confidence: float = 0.1
    # model and features
    view_channels: int = 128
    joint_channels: int = 256
    part_channels: int = 512
    decoder_channels: int = 256
    dropout: float = 0.0
    use_reprojection_error: bool = True
    use_validity: bool = True
    # loss weights (SPEC section 1) and optimiser
    w_reprojection: float = 1.0
    w_symmetry: float = 1.0
    w_transform: float = 1.0
    w_bone_direction: float = 0.1
    w_supervised: float = 0.0
    w_extra_views: float | None = None     # reprojection into further cameras of multi-camera samples (None: =
                                           # w_reprojection; 0 ignores them)
    freeze_batchnorm: bool = False         # keep BatchNorm running statistics fixed (fine-tuning on small real sets)
    lr: float = 1e-3
    lr_decay: float = 0.9
    lr_patience: int = 10                  # epochs without a better training loss before lr *= lr_decay
    batch_size: int = 256
    epochs: int = 100
    max_minutes: float = 0.0               # stop after this wall time (0 = no limit); the finished epochs count
    # run
    seed: int = 0
    out_dir: str = "runs/train"
    device: str = "auto"
    threads: int = 0                       # torch CPU threads (0 = torch's default)
    init: str | None = None                # checkpoint to start from (fine-tuning)
    resume: bool = False                   # continue from out_dir/last.pt
    progress: str = "auto"                 # tqdm bars: auto (only on a terminal), on, off

    def validate(self, has_extra_sources: bool = False) -> None:
        """Raise ConfigError on values that cannot work (`has_extra_sources`: samples passed in from Python)."""
        if not has_extra_sources and not (self.h36m_3d or self.motion or self.samples or self.bags
                                          or self.procedural_sequences > 0):
            raise ConfigError("no training data: give h36m_3d, motion, samples, bags or procedural_sequences")
        positive = ("batch_size", "epochs", "samples_per_epoch", "h36m_stride", "motion_stride", "lr_patience")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 < self.lr_decay <= 1:
            raise ConfigError(f"need lr > 0 and 0 < lr_decay <= 1, got {self.lr}, {self.lr_decay}")
        if not 0 <= self.val_fraction < 1 or not 0 <= self.procedural_fraction <= 1:
            raise ConfigError("val_fraction must be in [0, 1) and procedural_fraction in [0, 1]")
        if self.w_extra_views is not None and self.w_extra_views < 0:
            raise ConfigError(f"w_extra_views must be >= 0, got {self.w_extra_views}")
        if self.progress not in ("auto", "on", "off"):
            raise ConfigError(f"progress must be auto, on or off, got {self.progress!r}")
        for name in (self.validation_noise, self.validation_light_noise):
            if name and name not in PRESETS:
                raise ConfigError(f"unknown noise preset {name!r}; expected one of {sorted(PRESETS)}")
        if not 0.0 <= self.bone_spread <= 3.0:
            raise ConfigError(f"bone_spread must be in [0, 3], got {self.bone_spread}")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {sorted(LAYOUTS)}, got {self.layout!r}")
        for name in ("rig_mix", "noise_mix"):
            mix = getattr(self, name)
            if not mix or any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
                raise ConfigError(f"{name} needs non-negative weights with a positive sum, got {mix}")
        for path in [self.h36m_3d, self.h36m_2d, *self.motion, *self.samples, self.init]:
            if path and not Path(path).is_file():
                raise ConfigError(f"file not found: {path}")
        for path in self.bags:
            if not Path(path).exists():
                raise ConfigError(f"bag not found: {path}")

    def to_dict(self) -> dict:
        return asdict(self)


def _field_kind(name: str) -> str:
    """"dict", "list", "bool", "int", "float" or "str" from the field's type hint (Optional unwrapped)."""
    hint = typing.get_type_hints(TrainConfig)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = typing.get_origin(hint) or hint
    if args and base not in (list, dict):
        base = typing.get_origin(args[0]) or args[0]
    return {dict: "dict", list: "list", bool: "bool", int: "int", float: "float"}.get(base, "str")


def _convert(name: str, value):
    """Coerce a YAML or command-line value to the field's type; ConfigError names the key on failure."""
    kind = _field_kind(name)
    try:
        if value is None:
            return None
        if kind == "list":
            return [str(v).strip() for v in (value.split(",") if isinstance(value, str) else value) if str(v).strip()]
        if kind == "dict":
            if isinstance(value, str):
                value = dict(item.split("=", 1) for item in value.split(",") if item.strip())
            return {str(k).strip(): float(v) for k, v in dict(value).items()}
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"option {name}: cannot read {value!r} as {kind} ({exc})") from None


def load_yaml(path: str | Path) -> dict:
    """Options from a YAML mapping; unknown keys raise ConfigError."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of option: value")
    unknown = unknown_fields(TrainConfig, data)
    if unknown:
        raise ConfigError(f"config {path}: unknown option(s) {unknown}")
    return {k: _convert(k, v) for k, v in data.items()}


def build_parser() -> argparse.ArgumentParser:
    """`--config FILE` plus one option per TrainConfig field (default None = keep the YAML/default value)."""
    parser = argparse.ArgumentParser(prog="cvpose-train", description="Train CV-UGCN (weakly supervised).")
    parser.add_argument("--config", help="YAML file with options (command-line options override it)")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "resume":
            parser.add_argument(flag, action="store_const", const=True, default=None,
                                help="continue from OUT_DIR/last.pt")
        else:
            default = f.default if f.default is not MISSING else f.default_factory()
            parser.add_argument(flag, dest=f.name, default=None, help=f"default: {default}")
    return parser


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Defaults <- YAML (--config) <- command line; validated."""
    args = build_parser().parse_args(argv)
    values = load_yaml(args.config) if args.config else {}
    for f in fields(TrainConfig):
        value = getattr(args, f.name)
        if value is not None:
            values[f.name] = _convert(f.name, value)
    config = TrainConfig(**values)
    config.validate()
    return config
