"""What every ``SamPredictor``-style predictor here keeps between ``set_image`` and ``predict`` (no torch): the set
image's embedding and size. ``EfficientSamPredictor`` (torch) and ``OnnxPredictor`` (onnxruntime) both build on it."""
from __future__ import annotations

from typing import Any, Optional, Tuple

__all__ = ["PredictorState"]


class PredictorState:
    """The set image's ``features`` and ``original_size`` (H, W), and whether one is set."""

    def reset_image(self) -> None:
        self.features: Optional[Any] = None
        self.original_size: Optional[Tuple[int, int]] = None
        self.is_image_set = False

    def set_embedding(self, features, original_size: Tuple[int, int]) -> None:
        """Keep an embedding computed earlier (``get_image_embedding``) for an image of ``original_size`` (H, W), as
        ``set_image`` would have: the next ``predict`` runs the decoder only."""
        self.features, self.original_size = features, (int(original_size[0]), int(original_size[1]))
        self.is_image_set = True

    def get_image_embedding(self):
        self._require_image()
        return self.features

    def _require_image(self) -> None:
        if not self.is_image_set:
            raise RuntimeError("no image set: call predictor.set_image(image) before predicting")
