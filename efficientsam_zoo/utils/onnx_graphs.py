"""The ONNX graphs' contract, written once (no torch): ``export_onnx`` writes graphs with these input / output names
and metadata, ``onnx_runtime.OnnxPredictor`` and the labelling-tool bundles read them."""
from __future__ import annotations

__all__ = ["ENCODER_INPUTS", "ENCODER_OUTPUTS", "DECODER_INPUTS", "DECODER_OUTPUTS", "METADATA_KEY", "GRAPH_FILES"]

ENCODER_INPUTS = ("batched_images",)
ENCODER_OUTPUTS = ("image_embeddings",)
DECODER_INPUTS = ("image_embeddings", "batched_point_coords", "batched_point_labels", "orig_im_size")
DECODER_OUTPUTS = ("low_res_logits", "iou_predictions")
#: The ``metadata_props`` key holding ``export_onnx.model_facts`` as JSON.
METADATA_KEY = "efficientsam_zoo"
#: The two files of an export, fp32 or int8 alike.
GRAPH_FILES = {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
