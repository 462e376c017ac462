"""efficientsam-zoo: EfficientSAM and SAMI pretraining (Xiong et al., 2023) for the frameworks you train with.

When ``transformers`` is installed, importing this package registers ``efficientsam`` / ``sami_vit`` /
``efficienttam*`` with its Auto classes and the ``hf_sam`` SAMI teacher, and exposes the HF classes here
(``EfficientSamModel``, ``SamiViTModel``, ...) and EfficientTAM with SAM 2's names (``build_efficienttam``,
``build_efficienttam_video_predictor``, ``EfficientTamImagePredictor``, ...).
"""
from importlib.util import find_spec as _find_spec

from .automatic_mask_generator import AutomaticMaskGenerator, SamAutomaticMaskGenerator
from .build import build_efficient_sam, efficient_sam_model_registry
from .checkpoints import CheckpointError
from .modeling import EfficientSam, EfficientSamSpec, ViT
from .predictor import EfficientSamPredictor
from .version import __version__

__all__ = ["build_efficient_sam", "efficient_sam_model_registry", "EfficientSam", "EfficientSamSpec", "ViT",
           "EfficientSamPredictor", "AutomaticMaskGenerator", "SamAutomaticMaskGenerator", "CheckpointError",
           "__version__"]

_HF_NAMES = ("EfficientSamConfig", "SamiVisionConfig", "EfficientSamModel", "SamiViTModel",
             "SamiViTForImageClassification", "EfficientSamImageProcessor", "EfficientTamModel", "EfficientTamVideoModel",
             "EfficientTamImagePredictor", "EfficientTamVideoPredictor", "build_efficienttam",
             "build_efficienttam_video_predictor")

if _find_spec("transformers") is not None:
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

if _find_spec("timm") is not None:  # timm.create_model("sami_vit_small_patch16_224", ...)
    try:
        from .integrations.timm import register_timm_models as _register_timm_models

        _register_timm_models()
    except (ImportError, AttributeError, TypeError) as _exc:  # a timm too old or too new: the core still imports
        import warnings as _warnings

        _warnings.warn(f"efficientsam_zoo: timm model names not registered ({_exc}); the timm adapter needs "
                       "timm >= 1.0", stacklevel=2)
