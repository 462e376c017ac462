"""efficientsam-zoo: EfficientSAM and SAMI pretraining (Xiong et al., 2023) for the frameworks you train with.

The public names (``build_efficient_sam``, ``EfficientSamPredictor``, ``OnnxPredictor`` ...) are imported on first
use, so ``import efficientsam_zoo`` works without torch (the ``[onnx-runtime]`` install).

When ``transformers`` is installed, importing this package registers ``efficientsam`` / ``sami_vit`` /
``efficienttam*`` with its Auto classes and the ``hf_sam`` SAMI teacher, and exposes the HF classes here
(``EfficientSamModel``, ``SamiViTModel``, ...) and EfficientTAM with SAM 2's names (``build_efficienttam``,
``build_efficienttam_video_predictor``, ``EfficientTamImagePredictor``, ...).
"""
from importlib import import_module as _import_module
from importlib.util import find_spec as _find_spec

from .version import __version__

#: The public names and the module each lives in, imported on first use (PEP 562): ``import efficientsam_zoo``
#: needs no torch, so the torch-free ONNX predictor (``efficientsam_zoo.onnx_runtime``) runs where torch is absent.
_LAZY = {
    "build_efficient_sam": "build", "efficient_sam_model_registry": "build", "EfficientSam": "modeling",
    "EfficientSamSpec": "modeling", "ViT": "modeling", "EfficientSamPredictor": "predictor",
    "AutomaticMaskGenerator": "automatic_mask_generator", "SamAutomaticMaskGenerator": "automatic_mask_generator",
    "CheckpointError": "checkpoints", "OnnxPredictor": "onnx_runtime",
}

__all__ = list(_LAZY) + ["__version__"]


def __getattr__(name: str):
    """A public name (or a submodule, ``efficientsam_zoo.predictor``) on first use."""
    try:
        if name in _LAZY:
            value = getattr(_import_module(f".{_LAZY[name]}", __name__), name)
        elif _find_spec(f"{__name__}.{name}") is not None:
            value = _import_module(f".{name}", __name__)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise AttributeError(f"efficientsam_zoo.{name} needs torch, which is not installed (the torch-free part is "
                             "efficientsam_zoo.OnnxPredictor)") from exc
    globals()[name] = value  # resolved once
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


_HF_NAMES = ("EfficientSamConfig", "SamiVisionConfig", "EfficientSamModel", "SamiViTModel",
             "SamiViTForImageClassification", "EfficientSamImageProcessor", "EfficientTamModel", "EfficientTamVideoModel",
             "EfficientTamImagePredictor", "EfficientTamVideoPredictor", "build_efficienttam",
             "build_efficienttam_video_predictor")

_HAS_TORCH = _find_spec("torch") is not None

if _HAS_TORCH and _find_spec("transformers") is not None:  # registering needs the models, so torch
    from .integrations.hf import (  # noqa: F401
        EfficientSamConfig,
        EfficientSamImageProcessor,
        EfficientSamModel,
        EfficientTamImagePredictor,
        EfficientTamModel,
        EfficientTamVideoModel,
        EfficientTamVideoPredictor,
        SamiVisionConfig,
        SamiViTForImageClassification,
        SamiViTModel,
        build_efficienttam,
        build_efficienttam_video_predictor,
    )

    __all__ += list(_HF_NAMES)

if _HAS_TORCH and _find_spec("timm") is not None:  # timm.create_model("sami_vit_small_patch16_224", ...)
    try:
        from .integrations.timm import register_timm_models as _register_timm_models

        _register_timm_models()
    except (ImportError, AttributeError, TypeError) as _exc:  # a timm too old or too new: the core still imports
        import warnings as _warnings

        _warnings.warn(f"efficientsam_zoo: timm model names not registered ({_exc}); the timm adapter needs "
                       "timm >= 1.0", stacklevel=2)
