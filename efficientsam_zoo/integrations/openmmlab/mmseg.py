"""MMSegmentation adapter: registers ``SamiViT``, ``SamiSimpleFPN`` and ``SamiLayerDecayOptimizerConstructor``
in mmseg's registries. Use from a config with
``custom_imports=dict(imports=["efficientsam_zoo.integrations.openmmlab.mmseg"], allow_failed_imports=False)``.
"""
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

from .backbones import SamiLayerDecayOptimizerConstructor, SamiSimpleFPN, SamiViT

MODELS.register_module("SamiViT", module=SamiViT, force=True)
MODELS.register_module("SamiSimpleFPN", module=SamiSimpleFPN, force=True)
OPTIM_WRAPPER_CONSTRUCTORS.register_module("SamiLayerDecayOptimizerConstructor",
                                           module=SamiLayerDecayOptimizerConstructor, force=True)

__all__ = ["SamiViT", "SamiSimpleFPN", "SamiLayerDecayOptimizerConstructor"]
