"""efficientsam-zoo: EfficientSAM and SAMI pretraining inside the frameworks vision researchers use."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _version() -> str:
    for line in (HERE / "efficientsam_zoo" / "version.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("efficientsam_zoo/version.py has no __version__")


# torch / torchvision are deliberately not pinned to a build here: see README "Installation".
CORE = ["torch>=2.4", "torchvision>=0.19", "numpy", "pillow", "tqdm", "safetensors>=0.4"]
EXTRAS = {
    "hf": ["transformers>=5,<6", "huggingface_hub>=1", "accelerate>=1.1", "timm>=1.0", "pyyaml"],
    "mmdet": ["mmengine==0.10.7", "mmcv>=2.0.0rc4,<2.2.0", "mmdet==3.3.0"],
    "mmseg": ["mmengine==0.10.7", "mmcv>=2.0.0rc4,<2.2.0", "mmsegmentation==1.2.2", "ftfy", "regex"],
    "d2": ["detectron2", "fvcore", "iopath", "tensorboard"],
    "eval": ["pycocotools>=2.0.7", "lvis"],
    "onnx": ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript"],
    "dev": ["pytest>=8", "pycocotools>=2.0.7"],
}
EXTRAS["all"] = sorted({req for name, reqs in EXTRAS.items() for req in reqs if name != "d2"})

setup(
    name="efficientsam-zoo",
    version=_version(),
    description="EfficientSAM / SAMI (Xiong et al., 2023) for PyTorch, OpenMMLab, detectron2 and transformers",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["efficientsam_zoo", "efficientsam_zoo.*"]),
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["efficientsam-zoo=efficientsam_zoo.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
