"""MMDetection adapter: registers the SAMI ViT backbone (``SAMIViT``), the simple feature pyramid
(``SAMISimpleFPN``), the layer-decay optimiser constructor (``SAMILayerDecayOptimizerConstructor``) and
``LN2d`` in mmdet's registries. Use from a config with
``custom_imports=dict(imports=["efficientsam_zoo.integrations.mmdet"], allow_failed_imports=False)``.
"""
from mmdet.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

from ..modeling.vit import LayerNorm2d
from ._openmmlab import SAMILayerDecayOptimizerConstructor, SAMISimpleFPN, SAMIViTBackbone

MODELS.register_module("SAMIViT", module=SAMIViTBackbone, force=True)
MODELS.register_module("SAMISimpleFPN", module=SAMISimpleFPN, force=True)
OPTIM_WRAPPER_CONSTRUCTORS.register_module("SAMILayerDecayOptimizerConstructor",
                                           module=SAMILayerDecayOptimizerConstructor, force=True)
if MODELS.get("LN2d") is None:  # ViTDet's channel LayerNorm for the RoI heads (kept if already registered)
    MODELS.register_module("LN2d", module=LayerNorm2d)

__all__ = ["SAMIViTBackbone", "SAMISimpleFPN", "SAMILayerDecayOptimizerConstructor"]
