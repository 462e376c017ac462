"""Hugging Face ``transformers`` adapter, laid out like transformers' own models:

==========================  ==========================================================================
``configuration``           :class:`SamiVisionConfig`, :class:`EfficientSamConfig` (+ native spec <-> config)
``modeling``                :class:`SamiViTModel`, :class:`SamiViTForImageClassification`, :class:`EfficientSamModel`
``image_processing``        :class:`EfficientSamImageProcessor`
``aliases``                 short names (``"efficientsam-s"``, ``"sami-vit-b"``) in every ``from_pretrained``
``teachers``                transformers models as SAMI teachers (``hf_sam``), registered with the teacher registry
``efficienttam``             :class:`EfficientTamVideoModel` (EfficientTAM on transformers' ``Sam2Video*`` classes) and its configs
``efficienttam_predictor``   :class:`EfficientTamVideoPredictor`, SAM 2's video-predictor API on the model
``efficienttam_image``       :class:`EfficientTamModel` (``Sam2Model`` with EfficientTAM's encoder) and
                            :class:`EfficientTamImagePredictor`, SAM 2's image-predictor API
``cards``                   model cards, official -> HF conversion, pushing (used by the scripts in ``hf/``)
==========================  ==========================================================================

Importing this package registers, idempotently, ``model_type`` ``efficientsam`` (``AutoModel``,
``AutoModelForMaskGeneration`` -- so ``pipeline("mask-generation", model=DIR)`` works --, ``AutoImageProcessor``)
and ``sami_vit`` (``AutoModel``, ``AutoModelForImageClassification``). (``aliases`` was called ``hub``, the name of
the package's weight resolver ``efficientsam_zoo.hub``; the old module path still imports.)
"""
import sys as _sys

from transformers import (AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification,
                          AutoModelForMaskGeneration)

from . import aliases, teachers  # noqa: F401  (registers the transformers teachers)
from .aliases import HUB_ALIASES, resolve_pretrained
from .efficienttam import (EfficientTamVideoConfig, EfficientTamVideoModel, EfficientTamVisionConfig,
                           EfficientTamVisionModel, efficienttam_config_for)
from .efficienttam_image import (EfficientTamConfig, EfficientTamImagePredictor, EfficientTamModel, build_efficienttam,
                                 efficienttam_image_config_for)
from .efficienttam_predictor import EfficientTamVideoPredictor, build_efficienttam_video_predictor
from .configuration import (EfficientSamConfig, SamiVisionConfig, efficientsam_config_for, sami_config_from_vit_args,
                            spec_from_config)
from .image_processing import EfficientSamImageProcessor
from .modeling import EfficientSamModel, EfficientSamOutput, SamiViTForImageClassification, SamiViTModel

__all__ = ["SamiVisionConfig", "EfficientSamConfig", "SamiViTModel", "SamiViTForImageClassification",
           "EfficientSamModel", "EfficientSamOutput", "EfficientSamImageProcessor", "HUB_ALIASES",
           "resolve_pretrained", "register_auto_classes", "efficientsam_config_for", "spec_from_config",
           "sami_config_from_vit_args", "EfficientTamVisionConfig", "EfficientTamVisionModel", "EfficientTamVideoConfig",
           "EfficientTamVideoModel", "EfficientTamVideoPredictor", "efficienttam_config_for", "EfficientTamConfig",
           "EfficientTamModel", "EfficientTamImagePredictor", "efficienttam_image_config_for", "build_efficienttam",
           "build_efficienttam_video_predictor"]


_sys.modules[__name__ + ".hub"] = aliases  # the module's earlier name


def register_auto_classes() -> None:
    """Register the configs / models / processor with the Auto classes (safe to call repeatedly)."""
    AutoConfig.register(SamiVisionConfig.model_type, SamiVisionConfig, exist_ok=True)
    AutoConfig.register(EfficientSamConfig.model_type, EfficientSamConfig, exist_ok=True)
    AutoModel.register(SamiVisionConfig, SamiViTModel, exist_ok=True)
    AutoModel.register(EfficientSamConfig, EfficientSamModel, exist_ok=True)
    AutoModelForMaskGeneration.register(EfficientSamConfig, EfficientSamModel, exist_ok=True)
    AutoModelForImageClassification.register(SamiVisionConfig, SamiViTForImageClassification, exist_ok=True)
    for config, model in ((EfficientTamVisionConfig, EfficientTamVisionModel), (EfficientTamConfig, EfficientTamModel),
                          (EfficientTamVideoConfig, EfficientTamVideoModel)):
        AutoConfig.register(config.model_type, config, exist_ok=True)
        AutoModel.register(config, model, exist_ok=True)
    # one torch implementation for both of transformers' backends: pipelines ask for "torchvision" by default
    AutoImageProcessor.register(EfficientSamConfig, slow_image_processor_class=EfficientSamImageProcessor,
                                fast_image_processor_class=EfficientSamImageProcessor, exist_ok=True)


register_auto_classes()
