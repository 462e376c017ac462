"""MMDetection adapter: registers the SAMI ViT backbone (``SamiViT``), the simple feature pyramid
(``SamiSimpleFPN``), the layer-decay optimiser constructor (``SamiLayerDecayOptimizerConstructor``) and
``LN2d`` in mmdet's registries. Use from a config with
``custom_imports=dict(imports=["efficientsam_zoo.integrations.openmmlab.mmdet"], allow_failed_imports=False)``.
"""
from mmdet.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

from ...modeling.layers import LayerNorm2d
from .backbones import SamiLayerDecayOptimizerConstructor, SamiSimpleFPN, SamiViT

MODELS.register_module("SamiViT", module=SamiViT, force=True)
MODELS.register_module("SamiSimpleFPN", module=SamiSimpleFPN, force=True)
OPTIM_WRAPPER_CONSTRUCTORS.register_module("SamiLayerDecayOptimizerConstructor",
                                           module=SamiLayerDecayOptimizerConstructor, force=True)
if MODELS.get("LN2d") is None:  # ViTDet's channel LayerNorm for the RoI heads (kept if already registered)
    MODELS.register_module("LN2d", module=LayerNorm2d)

__all__ = ["SamiViT", "SamiSimpleFPN", "SamiLayerDecayOptimizerConstructor"]
