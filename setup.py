"""efficientsam-zoo: EfficientSAM and SAMI pretraining inside the frameworks vision researchers use."""
import os
import shutil
import sys
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
#: Shipped configs, OpenMMLab's ``.mim`` way: a wheel carries them inside the package (``efficientsam_zoo/.mim``),
#: where ``efficientsam_zoo.tools.configs`` and mmengine's ``efficientsam_zoo::`` prefix find them.
MIM_FOLDERS = {"configs": "mm_configs", "d2_configs": "d2_configs", "recipes": os.path.join("hf", "recipes")}


def _version() -> str:
    for line in (HERE / "efficientsam_zoo" / "version.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("efficientsam_zoo/version.py has no __version__")


def add_mim_extension() -> None:
    """Fill ``efficientsam_zoo/.mim``: symlinks for an editable install (edits show at once), copies otherwise."""
    editable = any(cmd in sys.argv for cmd in ("develop", "editable_wheel"))
    mim = HERE / "efficientsam_zoo" / ".mim"
    mim.mkdir(exist_ok=True)
    for target, source in MIM_FOLDERS.items():
        src, dst = HERE / source, mim / target
        if not src.is_dir():
            continue  # building from an sdist, which already carries .mim
        if dst.is_symlink() or dst.is_file():
            dst.unlink()
        elif dst.is_dir():
            shutil.rmtree(dst)
        if editable:
            os.symlink(os.path.relpath(src, mim), dst, target_is_directory=True)
        else:
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


# torch / torchvision are deliberately not pinned to a build here: see README "Installation". The lower bounds
# are the oldest versions CI tests (torch 2.11, torchvision 0.26).
CORE = ["torch>=2.11", "torchvision>=0.26", "numpy", "pillow", "tqdm", "safetensors>=0.4",
        "pycocotools>=2.0.7",  # RLE masks: segment-everything, the evaluations, SA-1B reading
        "opencv-python"]  # segment-everything's small-region removal (the build mmcv also needs)
EXTRAS = {
    "hf": ["transformers>=5,<6", "huggingface_hub>=1", "accelerate>=1.1", "timm>=1.0", "pyyaml"],
    "mmdet": ["mmengine==0.10.7", "mmcv>=2.0.0rc4,<2.2.0", "mmdet==3.3.0"],
    "mmseg": ["mmengine==0.10.7", "mmcv>=2.0.0rc4,<2.2.0", "mmsegmentation==1.2.2", "ftfy", "regex"],
    "d2": ["detectron2", "fvcore", "iopath", "tensorboard"],
    "eval": ["lvis"],
    "onnx": ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript"],
    # the torch-free OnnxPredictor: onnxruntime + numpy + Pillow. An extra cannot drop the core's torch, so a
    # torch-free install is `pip install --no-deps efficientsam-zoo onnxruntime numpy pillow` (README "Deploy")
    "onnx-runtime": ["onnxruntime>=1.18"],
    "quickstart": ["matplotlib"],  # with [hf] and [mmdet]: the report's learning curves
    "lora": ["peft>=0.13"],  # efficientsam-zoo finetune --recipe lora (exported models load without it)
    "demo": ["gradio>=6,<7", "gradio_client"],  # efficientsam-zoo demo
    # efficientsam-zoo export-litert: the .tflite graphs and the LiteRT interpreter. It brings jax, torchao and numpy 2,
    # so it is not in [all] (the OpenMMLab stack keeps numpy < 2); scripts/setup_env_litert.sh gives it its own venv
    "litert": ["litert-torch>=0.10,<0.11"],
    "coreml": ["coremltools>=9"],  # efficientsam-zoo export-coreml (a CoreML model runs only on macOS)
    "dev": ["pytest>=8", "matplotlib", "segment-anything==1.0",  # segment-anything: the tests' AMG reference
            "selenium"],  # the demo's browser tests (with Debian's chromium and chromium-driver)
}
EXTRAS["all"] = sorted({req for name, reqs in EXTRAS.items() for req in reqs if name not in ("d2", "litert")})

add_mim_extension()
setup(
    name="efficientsam-zoo",
    version=_version(),
    description="EfficientSAM / SAMI (Xiong et al., 2023) for PyTorch, OpenMMLab, detectron2 and transformers",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["efficientsam_zoo", "efficientsam_zoo.*"]),
    include_package_data=False,
    package_data={"efficientsam_zoo": [".mim/**/*.py", ".mim/**/*.yaml"]},
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["efficientsam-zoo=efficientsam_zoo.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
