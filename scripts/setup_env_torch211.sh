#!/usr/bin/env bash
# A second, smaller environment with the oldest torch this package supports (2.11.0 + torchvision 0.26.0,
# the versions of the GPU machines' image): the core model, predictor, CUDA-graph, ONNX, Hugging Face and
# benchmark code is tested on it by .ci/run. No OpenMMLab / detectron2 here (mmcv is built for the main
# environment's torch).
#
#   bash scripts/setup_env_torch211.sh       # creates .venv-torch211/ (ESZ_VENV_OLD overrides); idempotent
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ESZ_VENV_OLD:-$ROOT/.venv-torch211}"
PYTHON="${PYTHON:-python3}"
log() { printf '\n[setup-torch211 %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment at $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
log "torch 2.11.0 + torchvision 0.26.0 (PyPI build, --isolated as in setup_env.sh)"
"${PIP[@]}" install -q --isolated "torch==2.11.0" "torchvision==0.26.0"
log "core, Hugging Face, ONNX and test dependencies"
"${PIP[@]}" install -q "numpy<2" "opencv-python<4.12" pillow tqdm "safetensors>=0.4" "pytest>=8" \
  "transformers>=5,<6" "huggingface_hub>=1" "accelerate>=1.1" "timm>=1.0" pyyaml \
  "onnx>=1.16" "onnxruntime>=1.18" onnxscript "pycocotools>=2.0.7" "lvis==0.5.3" "segment-anything==1.0" \
  "hydra-core>=1.1" "iopath" "setuptools<81" scipy
# sam2 (the EfficientTAM reference in the tests; scipy stands in for its CUDA connected-components kernel), as in
# setup_env.sh: no build isolation, no CUDA extension
SAM2_BUILD_CUDA=0 "${PIP[@]}" install -q --no-build-isolation --no-deps "sam2==1.1.0"
"${PIP[@]}" install -q --no-deps -e "$ROOT"
"$VENV/bin/python" -c "import torch, torchvision, efficientsam_zoo; print('torch', torch.__version__, \
'torchvision', torchvision.__version__, 'efficientsam_zoo', efficientsam_zoo.__version__)"
