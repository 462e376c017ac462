"""Saliency maps from a transformers ``image-segmentation`` pipeline, for ``segment-salient --saliency-model``
(paper Figure 6; the clicks and masks are :mod:`efficientsam_zoo.salient`'s)."""
from __future__ import annotations

import numpy as np
from PIL import Image
from transformers import pipeline

from ...hub import hf_offline
from ...utils.image import to_uint8

__all__ = ["saliency_from_model"]


def saliency_from_model(image: np.ndarray, model: str) -> np.ndarray:
    """A saliency map from a transformers ``image-segmentation`` pipeline model (e.g. a U²-Net / BiRefNet port):
    the union of its masks, weighted by their scores where given."""
    try:
        segmenter = pipeline("image-segmentation", model=model)
    except (OSError, ValueError) as exc:
        where = "HF_HUB_OFFLINE is set" if hf_offline() else "it could not be loaded"
        raise FileNotFoundError(f"saliency model {model!r}: {where} ({str(exc).splitlines()[0][:160]}). Download it "
                                f"where there is network access (huggingface-cli download {model}) and copy the Hugging "
                                "Face cache here, or pass a map you computed with --saliency-map") from exc
    out = np.zeros(image.shape[:2], dtype=np.float32)
    for seg in segmenter(Image.fromarray(to_uint8(image))):
        m = np.asarray(seg["mask"], dtype=np.float32) / 255.0
        score = seg.get("score")
        out = np.maximum(out, m * (1.0 if score is None else float(score)))
    return out
