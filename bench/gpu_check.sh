#!/usr/bin/env bash
# The GPU checks of cvpose_ros in one run, for a CUDA machine (no ROS needed there): the GPU tests
# (test/test_gpu.py, skipped on machines without CUDA) with the refiner, ONNX and training tests beside them, then
# bench_refiner (torch and ONNX Runtime, CPU and CUDA, batch 1/5/64/1024) and bench_training (CPU vs CUDA).
# Logs and JSON go to the folder given (default runs/gpu_check). Run from the repository root:
#   bash bench/gpu_check.sh [OUTDIR]
# The package need not be installed: the checkout is put on PYTHONPATH. Missing pure-Python dependencies (rosbags
# for training) must be importable.
set -uo pipefail
out="${1:-runs/gpu_check}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
status=0
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$py" -c "import os, platform, torch, onnxruntime as o; print(platform.machine(), os.cpu_count(), 'CPUs; torch',
torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA', '; onnxruntime',
o.__version__, o.get_available_providers())"
} 2>&1 | tee "$out/machine.txt"
"$py" -m pytest -q -p no:cacheprovider -o addopts="" test/test_gpu.py test/test_refiner.py test/test_refiner_onnx.py \
  test/test_model.py test/test_checkpoint.py test/test_distributed_training.py 2>&1 | tee "$out/pytest.txt" || status=1
"$py" bench/bench_refiner.py --out "$out/bench_refiner.json" 2>&1 | tee "$out/bench_refiner.txt" || status=1
"$py" bench/bench_training.py --samples 4000 --out "$out/bench_training.json" 2>&1 | tee "$out/bench_training.txt" \
  || status=1
exit "$status"
