"""OpenMMLab adapter.

===============  ===========================================================================================
``registry``     the package's child registries (scope ``efficientsam_zoo``) below mmengine's root registries
``data``         ImageNet-style folders, precomputed teacher targets, SA-1B shards, their transforms
``models``       ``SamiPretrainer`` (SAMI pretraining) and ``EfficientSamFinetuner`` (SA-1B finetuning)
``hooks``        ``PromptQualityCurveHook``: prompt mIoU against finetuning steps (paper Figure 7)
``backbones``    ``SamiViT`` (ViTDet form), ``SamiSimpleFPN``, the layer-decay optimiser constructor
``mmdet``        registers the backbone pieces in MMDetection's registries (import it from mmdet configs)
``mmseg``        registers them in MMSegmentation's registries (import it from mmseg configs)
===============  ===========================================================================================

Importing this package (mmengine only) registers ``registry``, ``data``, ``models`` and ``hooks``; ``mmdet`` / ``mmseg``
are imported by the configs that need them.
"""
from . import data, hooks, models  # noqa: F401  (registration)
from .registry import DATASETS, HOOKS, MODELS, TRANSFORMS

__all__ = ["MODELS", "DATASETS", "TRANSFORMS", "HOOKS"]
