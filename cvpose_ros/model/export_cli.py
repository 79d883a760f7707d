"""`cvpose-export`: a CV-UGCN checkpoint as an ONNX model for ONNX Runtime (CPU, CUDA, TensorRT).

    cvpose-export CHECKPOINT [-o OUT.onnx] [--tolerance 1e-4]
    cvpose-export --layout coco17 -o coco17.onnx          # the packaged weights of a layout
    cvpose-export --layout coco17 --int8 -o coco17_int8.onnx   # int8 weights for small CPUs

The model takes any number of people (dynamic batch) and carries the checkpoint's layout, feature spec and
metadata (`cvpose_ros.model.onnx_export`). Before writing, it is run on ONNX Runtime and compared with torch on
random inputs (1, 5 and 64 people) and on realistic triangulations; a difference above the tolerance is an error
and nothing is written. With --int8 the checked float graph is then quantised (int8 MatMul weights,
`cvpose_ros.model.onnx_quantize`): about 2x faster on CPUs with VNNI, and checked against the ground truth of a
synthetic scene instead (refused when the refined MPJPE rises by more than --max-mpjpe-increase mm).
Exit status 0 on success, 2 with one line on stderr otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from cvpose_ros.model.checkpoint import DEFAULT_CHECKPOINTS, CheckpointError, load_checkpoint
from cvpose_ros.model.onnx_export import TOLERANCE_M, export_onnx
from cvpose_ros.model.onnx_quantize import MAX_MPJPE_INCREASE_MM, quantize_checked


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cvpose-export", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("checkpoint", nargs="?", type=Path, help="torch checkpoint (default: --layout's packaged)")
    parser.add_argument("--layout", choices=sorted(DEFAULT_CHECKPOINTS), default="h36m17",
                        help="packaged weights to export when no checkpoint is given")
    parser.add_argument("-o", "--output", type=Path, help="ONNX file (default: the checkpoint's name with .onnx, "
                                                         "in the current directory)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE_M,
                        help="largest accepted |onnxruntime - torch| in metres (default %(default)g)")
    parser.add_argument("--int8", action="store_true", help="quantise the network's weights to int8 (CPU speed)")
    parser.add_argument("--max-mpjpe-increase", type=float, default=MAX_MPJPE_INCREASE_MM,
                        help="with --int8: largest accepted rise of the refined MPJPE in mm (default %(default)g)")
    args = parser.parse_args(argv)
    checkpoint = args.checkpoint or DEFAULT_CHECKPOINTS[args.layout]
    output = args.output or Path(checkpoint.with_suffix(".onnx").name)
    try:
        if output.suffix.lower() != ".onnx":
            raise ValueError(f"output {output} must end in .onnx (the node picks the runtime by the suffix)")
        if not args.tolerance > 0:
            raise ValueError(f"--tolerance must be > 0, got {args.tolerance}")
        if not args.max_mpjpe_increase >= 0:
            raise ValueError(f"--max-mpjpe-increase must be >= 0 mm, got {args.max_mpjpe_increase}")
        loaded = load_checkpoint(checkpoint, "cpu")
        result = export_onnx(loaded, check=True, tolerance_m=args.tolerance)
        model_bytes, quantization = result.model_bytes, None
        if args.int8:
            model_bytes, quantization = quantize_checked(model_bytes, loaded.model.layout.name,
                                                         args.max_mpjpe_increase)
        _write_atomically(output, model_bytes)
    except (CheckpointError, ValueError, OSError, ImportError, RuntimeError) as exc:
        print(f"cvpose-export: error: {exc}", file=sys.stderr)
        return 2
    worst = max(result.max_diff_m.values())
    checks = ", ".join(f"{name} {diff:.2g} m" for name, diff in result.max_diff_m.items())
    print(f"wrote {output} ({len(model_bytes) / 1e6:.1f} MB, layout {loaded.model.layout.name}); "
          f"max |onnxruntime - torch|: {checks} (worst {worst:.2g} m <= {args.tolerance:g} m)")
    if quantization is not None:
        print(f"int8 weights: refined MPJPE {quantization.float_mpjpe_mm:.2f} -> {quantization.int8_mpjpe_mm:.2f} mm "
              f"on the check scene (triangulation {quantization.triangulation_mpjpe_mm:.2f} mm), largest pose "
              f"difference {quantization.max_diff_m * 1000:.1f} mm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
