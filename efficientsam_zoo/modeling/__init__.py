"""Pure-PyTorch models. Nothing here imports mmdet, mmseg, detectron2 or transformers."""
from .efficient_sam import EfficientSam, EfficientSamSpec
from .mask_decoder import MaskDecoder, TwoWayTransformer
from .prompt_encoder import PromptEncoder
from .vit import VIT_SIZES, LayerNorm2d, ViT

__all__ = ["EfficientSam", "EfficientSamSpec", "MaskDecoder", "TwoWayTransformer", "PromptEncoder", "ViT",
           "VIT_SIZES", "LayerNorm2d"]
