"""The ONNX graphs' contract, written once (no torch): ``export_onnx`` writes graphs with these input / output names
and metadata, ``onnx_runtime.OnnxPredictor`` and the labelling-tool bundles read them."""
from __future__ import annotations

__all__ = ["ENCODER_INPUTS", "ENCODER_OUTPUTS", "DECODER_INPUTS", "MASK_PROMPT_INPUTS", "DECODER_OUTPUTS",
           "decoder_inputs", "METADATA_KEY", "GRAPH_FILES"]

ENCODER_INPUTS = ("batched_images",)
ENCODER_OUTPUTS = ("image_embeddings",)
DECODER_INPUTS = ("image_embeddings", "batched_point_coords", "batched_point_labels", "orig_im_size")
#: Two more decoder inputs of a model with mask prompts (``efficientsam-zoo finetune``): the previous round's low-res
#: logits ``[B, Q, 1, h, w]`` and ``has_mask_input [B, Q]`` (1 / 0: which queries use theirs; SAM's ONNX switch).
MASK_PROMPT_INPUTS = ("mask_input", "has_mask_input")
#: The three multimask outputs, then the single-mask token's (``multimask_output=False``).
DECODER_OUTPUTS = ("low_res_logits", "iou_predictions", "single_low_res_logits", "single_iou_predictions")


def decoder_inputs(mask_prompts: bool) -> tuple:
    """The decoder graph's input names for a model with or without mask prompts."""
    return DECODER_INPUTS + (MASK_PROMPT_INPUTS if mask_prompts else ())


#: The ``metadata_props`` key holding ``export_onnx.model_facts`` as JSON.
METADATA_KEY = "efficientsam_zoo"
#: The two files of an export, fp32 or int8 alike.
GRAPH_FILES = {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
