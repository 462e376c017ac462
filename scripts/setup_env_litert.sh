#!/usr/bin/env bash
# A third environment for the LiteRT export (issue #29): litert-torch (formerly ai-edge-torch) converts the two
# graphs to .tflite and the LiteRT interpreter (ai-edge-litert) runs them. It lives apart from .venv because
# litert-torch pulls in jax, torchao and numpy 2, while the main environment keeps numpy < 2 for mmcv 2.1.0.
# torch is 2.13.0 as in the main environment, but the CPU build: plain pip takes it from this machine's disk (no
# --isolated here; nothing in this environment needs torchvision's compiled ops, which want the PyPI build).
#
#   bash scripts/setup_env_litert.sh       # creates .venv-litert/ (ESZ_VENV_LITERT overrides); idempotent
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ESZ_VENV_LITERT:-$ROOT/.venv-litert}"
PYTHON="${PYTHON:-python3}"
log() { printf '\n[setup-litert %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment at $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
log "torch 2.13.0 (the CPU build)"
"${PIP[@]}" install -q "torch==2.13.0"
log "litert-torch 0.10 (the LiteRT converter and interpreter), and the tests' needs"
"${PIP[@]}" install -q "torch==2.13.0" "litert-torch==0.10.*" pillow tqdm "safetensors>=0.4" "pytest>=8" pyyaml
"${PIP[@]}" install -q --no-deps -e "$ROOT"
"$VENV/bin/python" -c "import torch, litert_torch, efficientsam_zoo; print('torch', torch.__version__, \
'litert_torch', litert_torch.__version__, 'efficientsam_zoo', efficientsam_zoo.__version__)"
