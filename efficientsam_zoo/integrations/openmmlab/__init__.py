"""OpenMMLab adapter.

===============  ===========================================================================================
``scope``        the package's child registries (scope ``efficientsam_zoo``) below mmengine's root registries
``data``         ImageNet-style folders, precomputed teacher targets, SA-1B shards, their transforms
``models``       ``SamiPretrainer`` (SAMI pretraining) and ``EfficientSamFinetuner`` (SA-1B finetuning)
``video``        ``VideoClipDataset`` and ``EfficientTamTrainer`` (EfficientTAM trained as SAM 2 trains)
``hooks``        ``PromptQualityCurveHook``: prompt mIoU against finetuning steps (paper Figure 7)
``backbones``    ``SamiViT`` (ViTDet form), ``SamiSimpleFPN``, the layer-decay optimiser constructor
``mmdet``        registers the backbone pieces in MMDetection's registries (import it from mmdet configs)
``mmseg``        registers them in MMSegmentation's registries (import it from mmseg configs)
===============  ===========================================================================================

Importing this package (mmengine only) registers ``data``, ``models`` and ``hooks`` in the ``scope`` registries;
``mmdet`` / ``mmseg`` are imported by the configs that need them. (``scope`` was called ``registry``, a name the
package's variant table ``efficientsam_zoo.registry`` also has; the old module path still imports.)
"""
import sys as _sys

from . import data, hooks, models, scope, video  # noqa: F401  (registration)
from .backbones import SamiLayerDecayOptimizerConstructor
from .scope import DATASETS, HOOKS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS, TRANSFORMS

# layer decay for the package's own models too (EfficientSAM finetuning's "full" recipe)
OPTIM_WRAPPER_CONSTRUCTORS.register_module("SamiLayerDecayOptimizerConstructor",
                                           module=SamiLayerDecayOptimizerConstructor, force=True)

_sys.modules[__name__ + ".registry"] = scope  # the module's earlier name

__all__ = ["MODELS", "DATASETS", "TRANSFORMS", "HOOKS"]
