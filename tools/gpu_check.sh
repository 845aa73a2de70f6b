#!/usr/bin/env bash
# GPU check (under 5 minutes): a fresh virtual environment with onnxruntime-gpu in place of onnxruntime,
# the face model tests on the CUDA provider, then detection + embedding microbatching with 1, 8 and 32
# simulated cameras (tools/bench_microbatch.py: per-camera throughput and batch sizes).
#
#   tools/gpu_check.sh                  # on a machine with an NVIDIA GPU (driver + CUDA 12 runtime)
#   GPU_CHECK_CPU=1 tools/gpu_check.sh  # the same steps on the CPU provider, in the current Python (CI)
#
# Without a CUDA device (no nvidia-smi, or it lists no GPU) it falls back to the CPU mode by itself.
# GPU_CHECK_SECONDS sets the measured seconds per camera count (default 10 on a GPU, 2 on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${GPU_CHECK_CPU:-0}" != "1" ] && ! (command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU); then
  echo "gpu_check: no CUDA device found: CPU mode"
  GPU_CHECK_CPU=1
fi

if [ "${GPU_CHECK_CPU:-0}" = "1" ]; then
  PY=python3
  PROVIDERS=cpu
  SECONDS_PER_N="${GPU_CHECK_SECONDS:-2}"
else
  VENV="$(mktemp -d)/venv"
  trap 'rm -rf "$(dirname "$VENV")"' EXIT
  python3 -m venv "$VENV"
  PY="$VENV/bin/python"
  "$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
  # Both wheels install the same `onnxruntime` package: take the CPU one out before the GPU one goes in.
  ORT_VERSION="$("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)')"
  "$PY" -m pip uninstall -q -y onnxruntime
  "$PY" -m pip install -q --disable-pip-version-check "onnxruntime-gpu==$ORT_VERSION" || \
    "$PY" -m pip install -q --disable-pip-version-check onnxruntime-gpu
  nvidia-smi -L
  PROVIDERS=cuda
  SECONDS_PER_N="${GPU_CHECK_SECONDS:-10}"
fi

"$PY" -c 'import onnxruntime as ort; print("onnxruntime", ort.__version__, ort.get_available_providers())'
# onnxruntime falls back to the CPU quietly when the CUDA or cuDNN libraries are missing: check what the sessions run on.
"$PY" - "$PROVIDERS" <<'EOF'
import sys
from streamer.config import ModelConfig
from streamer.faces.models import load_pack

want = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}[sys.argv[1]]
pack = load_pack(ModelConfig(providers=sys.argv[1]))
for session in (pack.detector.session, pack.recognizer.session):
    if session.get_providers()[0] != want:
        sys.exit(f"gpu_check: the face models run on {session.get_providers()[0]}, not {want}")
print(f"face models run on {want}")
EOF
STREAMER_TEST_PROVIDERS="$PROVIDERS" "$PY" -m pytest -q -p no:cacheprovider tests/faces
"$PY" tools/bench_microbatch.py --providers "$PROVIDERS" --cameras 1 8 32 --seconds "$SECONDS_PER_N"
