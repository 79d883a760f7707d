"""Small ONNX models with known behaviour, built offline with `onnx.helper`, for tests and the bench.

- `simcc_probe_model` / `heatmap_probe_model`: top-down models whose every joint lands on the brightest red pixel
  of the crop, so a test can check cropping, colour order, normalisation and decoding end to end.
- `yolo_pose_constant_model`: a YOLO-pose export that always returns the given (56, anchors) tensor.
- `conv_pose_model`: a random-weight convolutional network with a realistic amount of compute (RTMPose-like
  SimCC or YOLO-pose-like heads) for timing; its outputs are meaningless.
Needs the `onnx` package (a development dependency), imported on first use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 17
IR_VERSION = 8
NUM_JOINTS = 17


def _save(nodes: list, inputs: list, outputs: list, initializers: list, path: str | Path) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "cvpose_synthetic", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def _tensor(name: str, array: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def _image_input(width: int, height: int):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, height, width])


def _red_channel(nodes: list, inits: list) -> str:
    """Append nodes slicing channel 0 (red) of the input: (1, 1, h, w)."""
    from onnx import helper

    inits += [_tensor("c0_start", np.array([0], np.int64)), _tensor("c0_end", np.array([1], np.int64)),
              _tensor("c0_axis", np.array([1], np.int64))]
    nodes.append(helper.make_node("Slice", ["input", "c0_start", "c0_end", "c0_axis"], ["red"]))
    return "red"


def simcc_probe_model(path: str | Path, input_size: tuple[int, int] = (192, 256), split_ratio: int = 2) -> Path:
    """SimCC model: simcc_x[k] = column maxima of the red input channel, simcc_y[k] = row maxima, each bin
    repeated `split_ratio` times; every joint decodes to the reddest pixel of the crop."""
    from onnx import TensorProto, helper

    width, height = input_size
    nodes: list = []
    inits: list = [_tensor("tile_k", np.array([1, NUM_JOINTS, 1, 1], np.int64)),
                   _tensor("tile_split", np.array([1, 1, 1, split_ratio], np.int64))]
    red = _red_channel(nodes, inits)
    outputs = []
    for axis_name, reduce_axis, length in (("x", 2, width), ("y", 3, height)):
        inits.append(_tensor(f"shape_{axis_name}", np.array([1, NUM_JOINTS, length * split_ratio], np.int64)))
        nodes += [
            helper.make_node("ReduceMax", [red], [f"profile_{axis_name}"], axes=[reduce_axis], keepdims=0),
            helper.make_node("Unsqueeze", [f"profile_{axis_name}", "unsq_axis"], [f"profile4_{axis_name}"]),
            helper.make_node("Tile", [f"profile4_{axis_name}", "tile_k"], [f"joints_{axis_name}"]),
            helper.make_node("Tile", [f"joints_{axis_name}", "tile_split"], [f"split_{axis_name}"]),
            helper.make_node("Reshape", [f"split_{axis_name}", f"shape_{axis_name}"], [f"simcc_{axis_name}"]),
        ]
        outputs.append(helper.make_tensor_value_info(f"simcc_{axis_name}", TensorProto.FLOAT,
                                                     [1, NUM_JOINTS, length * split_ratio]))
    inits.append(_tensor("unsq_axis", np.array([3], np.int64)))
    return _save(nodes, [_image_input(width, height)], outputs, inits, path)


def heatmap_probe_model(path: str | Path, input_size: tuple[int, int] = (192, 256), stride: int = 4) -> Path:
    """Heatmap model: every joint's heatmap is the red channel max-pooled by `stride`."""
    from onnx import TensorProto, helper

    width, height = input_size
    nodes: list = []
    inits: list = [_tensor("tile_k", np.array([1, NUM_JOINTS, 1, 1], np.int64))]
    red = _red_channel(nodes, inits)
    nodes += [helper.make_node("MaxPool", [red], ["pooled"], kernel_shape=[stride, stride], strides=[stride, stride]),
              helper.make_node("Tile", ["pooled", "tile_k"], ["heatmaps"])]
    out = helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT,
                                        [1, NUM_JOINTS, height // stride, width // stride])
    return _save(nodes, [_image_input(width, height)], [out], inits, path)


def yolo_pose_constant_model(path: str | Path, rows: np.ndarray, input_size: tuple[int, int] = (640, 640)) -> Path:
    """YOLO-pose model that returns `rows` (56, anchors) as its (1, 56, anchors) output for any image."""
    from onnx import TensorProto, helper

    rows = np.asarray(rows, np.float32)
    width, height = input_size
    inits = [_tensor("rows", rows[None]), _tensor("zero", np.zeros((1,), np.float32))]
    nodes = [helper.make_node("ReduceMean", ["input"], ["mean"], keepdims=0),  # keeps the input in the graph
             helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Add", ["rows", "nothing"], ["output0"])]
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, rows.shape[0], rows.shape[1]])
    return _save(nodes, [_image_input(width, height)], [out], inits, path)


def conv_pose_model(path: str | Path, kind: str = "simcc", input_size: tuple[int, int] = (192, 256),
                    widths: tuple[int, ...] = (32, 64, 128, 256, 512), seed: int = 0) -> tuple[Path, float]:
    """Random-weight conv net (3x3 stride-2 convs + ReLU, one extra 3x3 per stage) with a SimCC head
    (kind='simcc', stride 32) or a YOLO-pose head on the stride-8 map (kind='yolo_pose').

    Returns the file and its multiply-accumulate count in GMAC, to compare with published model sizes.
    """
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    width, height = input_size
    nodes: list = []
    inits: list = []
    macs = 0.0
    current, channels, h, w = "input", 3, height, width
    stride8 = ""

    def conv(src: str, out_ch: int, stride: int, name: str, relu: bool = True) -> str:
        nonlocal macs, channels, h, w
        weight = rng.normal(0.0, np.sqrt(2.0 / (9 * channels)), (out_ch, channels, 3, 3)).astype(np.float32)
        inits.extend([_tensor(f"{name}_w", weight), _tensor(f"{name}_b", np.zeros(out_ch, np.float32))])
        out = f"{name}_out"
        nodes.append(helper.make_node("Conv", [src, f"{name}_w", f"{name}_b"], [out], kernel_shape=[3, 3],
                                      pads=[1, 1, 1, 1], strides=[stride, stride]))
        h, w = (h + stride - 1) // stride, (w + stride - 1) // stride
        macs += out_ch * channels * 9 * h * w
        channels = out_ch
        if relu:
            nodes.append(helper.make_node("Relu", [out], [f"{name}_act"]))
            return f"{name}_act"
        return out

    for stage, stage_width in enumerate(widths):
        current = conv(current, stage_width, 2, f"s{stage}a")
        current = conv(current, stage_width, 1, f"s{stage}b")
        if 2 ** (stage + 1) == 8:
            stride8, stride8_shape = current, (channels, h, w)
    if kind == "simcc":  # RTMPose-like head: conv to one map per joint, flatten, FC 256, then x / y classifiers
        joint_maps = conv(current, NUM_JOINTS, 1, "head", relu=False)
        hidden = 256
        inits += [_tensor("maps_shape", np.array([1, NUM_JOINTS, h * w], np.int64)),
                  _tensor("fc_w", rng.normal(0.0, 1.0 / np.sqrt(h * w), (h * w, hidden)).astype(np.float32))]
        nodes += [helper.make_node("Reshape", [joint_maps, "maps_shape"], ["maps_flat"]),
                  helper.make_node("MatMul", ["maps_flat", "fc_w"], ["fc"]),
                  helper.make_node("Relu", ["fc"], ["fc_act"])]
        macs += NUM_JOINTS * h * w * hidden
        outputs = []
        for axis_name, length in (("x", width * 2), ("y", height * 2)):
            weight = rng.normal(0.0, 1.0 / np.sqrt(hidden), (hidden, length)).astype(np.float32)
            inits.append(_tensor(f"cls_{axis_name}", weight))
            nodes.append(helper.make_node("MatMul", ["fc_act", f"cls_{axis_name}"], [f"simcc_{axis_name}"]))
            outputs.append(helper.make_tensor_value_info(f"simcc_{axis_name}", TensorProto.FLOAT,
                                                         [1, NUM_JOINTS, length]))
            macs += NUM_JOINTS * hidden * length
    elif kind == "yolo_pose":
        channels, h, w = stride8_shape
        head = conv(stride8, 5 + 3 * NUM_JOINTS, 1, "head", relu=False)
        inits.append(_tensor("head_shape", np.array([1, 5 + 3 * NUM_JOINTS, h * w], np.int64)))
        nodes += [helper.make_node("Sigmoid", [head], ["head_sig"]),
                  helper.make_node("Mul", ["head_sig", "score_off"], ["head_scaled"]),
                  helper.make_node("Reshape", ["head_scaled", "head_shape"], ["output0"])]
        mask = np.ones((1, 5 + 3 * NUM_JOINTS, 1, 1), np.float32)
        mask[0, 4] = 0.0  # no person scores above threshold: times the network, not NMS on noise
        inits.append(_tensor("score_off", mask))
        outputs = [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5 + 3 * NUM_JOINTS, h * w])]
    else:
        raise ValueError(f"kind must be 'simcc' or 'yolo_pose', got {kind!r}")
    return _save(nodes, [_image_input(width, height)], outputs, inits, path), macs / 1e9
