"""Checkpoint round trip and every way a file can be unusable (one-line CheckpointError naming the file)."""

import pytest
import torch

from cvpose_ros.model.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from cvpose_ros.model.features import FeatureSpec
from cvpose_ros.model.pipeline import create_model

SMALL = dict(view_channels=8, joint_channels=16, part_channels=32, decoder_channels=16)
SPEC = FeatureSpec(use_reprojection_error=True, use_validity=False, clamp_m=1.5)


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = create_model(SPEC, **SMALL)
    model.train()
    model(torch.randn(8, 2, 17, SPEC.in_channels))  # move BatchNorm running statistics away from defaults
    model.eval()
    path = save_checkpoint(tmp_path / "sub" / "model.pt", model, SPEC, training={"data": "synthetic", "epochs": 1},
                           metrics={"mpjpe_mm": 12.5})
    return path, model


def _expect_error(path, match: str):
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return info.value


def test_round_trip_restores_weights_spec_and_metadata(saved):
    path, model = saved
    loaded = load_checkpoint(path)
    assert loaded.spec == SPEC and not loaded.model.training
    x = torch.randn(3, 2, 17, SPEC.in_channels)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    meta = read_metadata(path)
    assert meta["metrics"] == {"mpjpe_mm": 12.5} and meta["training"]["data"] == "synthetic"
    assert meta["layout"] == "h36m17" and meta["model"]["part_channels"] == 32
    assert {"created", "package_version", "torch_version"} <= set(meta)
    raw = torch.load(path, weights_only=True)  # plain containers only
    assert raw["format_version"] == FORMAT_VERSION


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "nope.pt", "does not exist")


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "text.pt"
    path.write_text("definitely not a checkpoint\n")
    _expect_error(path, "not a readable torch checkpoint")


def test_truncated_file(saved):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _expect_error(path, "not a readable torch checkpoint")


def test_foreign_pickle_is_refused(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"format_version": FORMAT_VERSION, "thing": object.__new__(FeatureSpec)}, path)
    _expect_error(path, "not a readable torch checkpoint")


def _rewrite(path, change):
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


def test_wrong_format_version(saved):
    path, _ = saved
    _rewrite(path, lambda p: p.update(format_version=FORMAT_VERSION + 1))
    _expect_error(path, "format version")


def test_missing_metadata_key(saved):
    path, _ = saved
    _rewrite(path, lambda p: p["metadata"].pop("features"))
    _expect_error(path, "metadata lacks")


def test_missing_tensor(saved):
    path, _ = saved
    _rewrite(path, lambda p: p["state_dict"].pop("joint_linear.weight"))
    _expect_error(path, "lacks 1 tensor")


def test_shape_mismatch_with_the_model_it_builds(saved):
    path, _ = saved
    _rewrite(path, lambda p: p["metadata"]["model"].update(part_channels=64))
    error = _expect_error(path, "has shape")
    assert "expects" in error.reason


def test_unknown_hyper_parameter(saved):
    path, _ = saved
    _rewrite(path, lambda p: p["metadata"]["model"].update(heads=4))
    _expect_error(path, "hyper-parameters")


def test_save_rejects_non_plain_metadata_and_mismatched_spec(tmp_path):
    model = create_model(SPEC, **SMALL)
    with pytest.raises(ValueError, match="JSON-like"):
        save_checkpoint(tmp_path / "a.pt", model, SPEC, training={"path": object()})
    with pytest.raises(ValueError, match="input channels"):
        save_checkpoint(tmp_path / "b.pt", model, FeatureSpec())
    assert not list(tmp_path.iterdir())  # nothing half-written
