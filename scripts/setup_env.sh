#!/usr/bin/env bash
# Create .venv/ in the repository root and install the whole efficientsam-zoo stack into it.
#
#   bash scripts/setup_env.sh            # idempotent; re-running only fills what is missing
#
# What it installs and why (see README "Installation" for the facts behind each choice):
#   * torch 2.13.0 + torchvision 0.28.0 from PyPI with pip's --isolated flag (the CUDA build; it
#     runs on CPU and is the build torchvision's compiled ops match);
#   * mmengine 0.10.7, mmcv 2.1.0 built from its sdist with CPU ops (the built wheel is cached in
#     $ESZ_CACHE_DIR/wheels so later runs on the same machine skip the ~9 min build),
#     mmdet 3.3.0, mmsegmentation 1.2.2 (+ ftfy, regex);
#   * detectron2: the Apache-2.0 fork sal-detectron2 0.7.2 ships only a cp310 wheel; its pure-Python
#     package is unpacked into site-packages without the compiled _C extension (ViTDet needs none);
#   * transformers 5.x, huggingface_hub, safetensors, pycocotools, lvis, onnx, onnxruntime, timm;
#   * peft (the lora finetuning recipe: LoRA adapters on the image encoder's attention);
#   * segment-anything 1.0 (a test dependency: its utils.amg is the reference segment everything is compared with);
#   * sam2 1.1.0 (a test dependency: the EfficientTAM reference is assembled from its modules; no CUDA extension);
#   * gradio 6 + gradio_client (the demo; with numpy<2 pip picks pandas<3, and gradio wants pillow<13), selenium
#     and, when run as root, Debian's chromium + chromium-driver (the demo's browser tests; they skip without them);
#   * samexporter 0.5.0 without dependencies (a test dependency: its EfficientSAM ONNX loader reads our bundle);
#   * coremltools 9.0 (export-coreml: converts and saves on Linux; a CoreML model runs only on macOS);
#   * this package, editable, with its [dev] extra.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ESZ_VENV:-$ROOT/.venv}"
CACHE="${ESZ_CACHE_DIR:-$HOME/.cache/efficientsam-zoo}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$CACHE/wheels"

log() { printf '\n[setup %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment at $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

log "build tools (setuptools<81: mmcv's build and mmengine's Config need pkg_resources)"
"${PIP[@]}" install -q --upgrade "pip>=24" "setuptools<81" wheel ninja

have() { "$PY" - "$@" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
name, want = sys.argv[1], sys.argv[2]
try:
    sys.exit(0 if version(name) == want else 1)
except PackageNotFoundError:
    sys.exit(1)
PYEOF
}

if have torch 2.13.0 && have torchvision 0.28.0; then
  log "torch 2.13.0 / torchvision 0.28.0 already installed"
else
  log "torch 2.13.0 + torchvision 0.28.0 (PyPI build, --isolated skips any local CPU-only wheel)"
  "${PIP[@]}" install -q --isolated "torch==2.13.0" "torchvision==0.28.0"
fi

# mmcv's ~9-17 min build only needs torch (and numpy, installed first so the build never imports it half-written):
# start it in the background and install everything else meanwhile.
"${PIP[@]}" install -q "numpy<2"
mmcv_build_pid=""
if ! have mmcv 2.1.0 && ! ls "$CACHE"/wheels/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  log "building mmcv 2.1.0 with CPU ops from its sdist in the background (~9-17 min on 2 cores; cached afterwards)"
  mmcv_tmp=$(mktemp -d)
  ( MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
      "${PIP[@]}" wheel -q --no-build-isolation --no-deps "mmcv==2.1.0" -w "$mmcv_tmp" >"$mmcv_tmp/build.log" 2>&1 \
    && mv "$mmcv_tmp"/mmcv-2.1.0-*.whl "$CACHE/wheels/" ) &   # move is atomic on one filesystem
  mmcv_build_pid=$!
fi

log "common dependencies"
"${PIP[@]}" install -q "numpy<2" "opencv-python<4.12" "mmengine==0.10.7" \
  "transformers>=5,<6" "huggingface_hub>=1" "safetensors>=0.4" "accelerate>=1.1" \
  "pycocotools>=2.0.7" "lvis==0.5.3" "onnx>=1.16" "onnxruntime>=1.18" "onnxscript" "timm>=1.0" \
  "ftfy" "regex" "tqdm" "pillow" "scipy" "matplotlib" "pytest>=8" "segment-anything==1.0" "peft>=0.13" \
  "fvcore" "iopath" "tensorboard" "termcolor" "yacs" "tabulate" "cloudpickle" "omegaconf>=2.1,<2.4" "hydra-core>=1.1" \
  "gradio>=6,<7" "gradio_client" "pandas<3" "selenium"

if have mmcv 2.1.0; then
  log "mmcv 2.1.0 already installed"
else
  if [ -n "$mmcv_build_pid" ]; then
    log "waiting for the mmcv build"
    if ! wait "$mmcv_build_pid"; then
      cat "$mmcv_tmp/build.log" >&2
      echo "[setup] building mmcv 2.1.0 failed (log above)" >&2
      exit 1
    fi
    rm -rf "$mmcv_tmp"
  fi
  wheel=$(ls "$CACHE"/wheels/mmcv-2.1.0-*.whl | head -n1)
  log "installing mmcv wheel $wheel"
  "${PIP[@]}" install -q --no-deps "$wheel"
  "${PIP[@]}" install -q addict yapf packaging pyyaml  # mmcv's runtime needs (not torch)
fi

log "mmdet 3.3.0 + mmsegmentation 1.2.2"
"${PIP[@]}" install -q "mmdet==3.3.0" "mmsegmentation==1.2.2"

if "$PY" -c "import detectron2.modeling" 2>/dev/null; then
  log "detectron2 already importable"
else
  log "detectron2 (sal-detectron2 0.7.2, pure-Python part of its cp310 wheel)"
  d2whl=$(ls "$CACHE"/wheels/sal_detectron2-0.7.2-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$d2whl" ]; then
    tmp=$(mktemp -d)
    "${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version 3.10 \
      --implementation cp "sal-detectron2==0.7.2" -d "$tmp"
    mv "$tmp"/sal_detectron2-0.7.2-*.whl "$CACHE/wheels/"
    rm -rf "$tmp"
    d2whl=$(ls "$CACHE"/wheels/sal_detectron2-0.7.2-*.whl | head -n1)
  fi
  "$PY" - "$d2whl" <<'PYEOF'
import os, shutil, sys, sysconfig, tempfile, zipfile
whl = sys.argv[1]
site = sysconfig.get_paths()["purelib"]
dest = os.path.join(site, "detectron2")
tmp = tempfile.mkdtemp(dir=site, prefix=".detectron2-")
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if not name.startswith("detectron2/"):
            continue
        if os.path.basename(name).startswith("_C.") and name.endswith(".so"):
            continue  # compiled for CPython 3.10; the ViTDet path does not need it
        z.extract(name, tmp)
shutil.rmtree(dest, ignore_errors=True)
os.replace(os.path.join(tmp, "detectron2"), dest)
shutil.rmtree(tmp, ignore_errors=True)
print("unpacked detectron2 into", dest)
PYEOF
fi

if have sam2 1.1.0; then
  log "sam2 1.1.0 already installed"
else
  # Meta's SAM 2 (Apache-2.0), a test dependency: the independent EfficientTAM reference is assembled from its modules.
  # Its build requires torch, so no build isolation (which would download a second torch); no CUDA extension
  # (SAM2_BUILD_CUDA=0: only hole filling uses it, and the package falls back without it); its runtime needs
  # (hydra-core, iopath, tqdm, pillow, numpy, torch, torchvision) are installed above.
  log "sam2 1.1.0 (pure Python, from its sdist)"
  SAM2_BUILD_CUDA=0 "${PIP[@]}" install -q --no-build-isolation --no-deps "sam2==1.1.0"
fi

if have samexporter 0.5.0; then
  log "samexporter 0.5.0 already installed"
else
  log "samexporter 0.5.0 without its dependencies (a test dependency: its EfficientSAM ONNX loader reads our bundle;"
  log "  its loader needs only onnxruntime / numpy / opencv, while the package pins torch 2.10 for its exporters)"
  "${PIP[@]}" install -q --no-deps "samexporter==0.5.0"
fi

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  log "chromium + chromium-driver already installed"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  log "chromium + chromium-driver from Debian (the demo's browser tests drive them through selenium)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
else
  log "not root or no apt-get: chromium is not installed, so the demo's browser tests will skip (with the reason)"
fi

if have coremltools 9.0; then
  log "coremltools 9.0 already installed"
else
  # The CoreML export (the [coreml] extra). On Linux it converts and saves .mlpackage files; running one needs macOS.
  log "coremltools 9.0 (the CoreML export's tests: conversion and the packages' specs)"
  "${PIP[@]}" install -q "coremltools==9.0"
fi

log "efficientsam-zoo (editable)"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e "$ROOT"

log "installed versions"
"$PY" - <<'PYEOF'
import importlib, importlib.metadata as md
rows = [("python", __import__("platform").python_version())]
for dist in ["torch", "torchvision", "numpy", "mmengine", "mmcv", "mmdet", "mmsegmentation",
             "transformers", "huggingface_hub", "safetensors", "pycocotools", "lvis", "onnx",
             "onnxruntime", "timm", "sam2", "gradio", "selenium", "setuptools", "efficientsam-zoo"]:
    try:
        rows.append((dist, md.version(dist)))
    except md.PackageNotFoundError:
        rows.append((dist, "MISSING"))
try:
    import detectron2
    rows.append(("detectron2", detectron2.__version__ + " (sal-detectron2, no _C)"))
except Exception as e:  # noqa: BLE001
    rows.append(("detectron2", f"MISSING ({e})"))
for k, v in rows:
    print(f"  {k:<18} {v}")
PYEOF
log "done: activate with 'source $VENV/bin/activate'"
