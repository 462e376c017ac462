"""efficientsam-zoo: EfficientSAM and SAMI pretraining (Xiong et al., 2023) for the frameworks you train with."""
from .build import build_efficient_sam, efficient_sam_model_registry
from .checkpoints import CheckpointError
from .modeling import EfficientSam, EfficientSamSpec, ViT
from .predictor import EfficientSamPredictor
from .version import __version__

__all__ = ["build_efficient_sam", "efficient_sam_model_registry", "EfficientSam", "EfficientSamSpec", "ViT",
           "EfficientSamPredictor", "CheckpointError", "__version__"]
