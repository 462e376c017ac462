"""MMSegmentation adapter: registers ``SAMIViT``, ``SAMISimpleFPN`` and ``SAMILayerDecayOptimizerConstructor``
in mmseg's registries. Use from a config with
``custom_imports=dict(imports=["efficientsam_zoo.integrations.mmseg"], allow_failed_imports=False)``.
"""
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

from ._openmmlab import SAMILayerDecayOptimizerConstructor, SAMISimpleFPN, SAMIViTBackbone

MODELS.register_module("SAMIViT", module=SAMIViTBackbone, force=True)
MODELS.register_module("SAMISimpleFPN", module=SAMISimpleFPN, force=True)
OPTIM_WRAPPER_CONSTRUCTORS.register_module("SAMILayerDecayOptimizerConstructor",
                                           module=SAMILayerDecayOptimizerConstructor, force=True)

__all__ = ["SAMIViTBackbone", "SAMISimpleFPN", "SAMILayerDecayOptimizerConstructor"]
