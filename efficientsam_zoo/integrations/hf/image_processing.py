"""``EfficientSamImageProcessor``: the native preprocessing (``modeling.efficient_sam.normalize_images`` /
``rescale_points``) and prompt checks (``predictor.assemble_prompts``) behind transformers' processor API."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from ...modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD, normalize_images, rescale_points
from ...predictor import assemble_prompts
from ...utils.image import image_to_tensor

__all__ = ["EfficientSamImageProcessor"]


class EfficientSamImageProcessor(BaseImageProcessor):
    """Stretch to ``size`` x ``size`` (bilinear, as the model was trained; no letterbox), scale to 0..1,
    normalise with ImageNet mean/std; rescale prompts into the same frame. Needs torch, not torchvision.

    The arithmetic is the native model's (the same functions), so native and HF paths give identical inputs;
    prompts go through the predictor's validation, image by image, in that image's pixel frame.
    """

    model_input_names = ["pixel_values"]

    def __init__(self, size: int = 1024, image_mean: Sequence[float] = IMAGENET_MEAN,
                 image_std: Sequence[float] = IMAGENET_STD, max_points: int = 6, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size = int(size)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.max_points = int(max_points)

    def preprocess(self, images, input_points=None, input_labels=None, input_boxes=None, return_tensors="pt",
                   **kwargs) -> BatchFeature:
        """``images``: one image or a list (numpy HWC, PIL, or CHW tensors). Prompts are in each image's pixels:
        points ``[B, Q, N, 2]``, labels ``[B, Q, N]``, boxes ``[B, Q, 4]`` (nested lists or arrays); label -1 marks
        a padding slot."""
        if return_tensors not in ("pt", None):
            raise ValueError("EfficientSamImageProcessor returns PyTorch tensors only (return_tensors='pt')")
        if not isinstance(images, (list, tuple)):
            images = [images]
        tensors = [image_to_tensor(im) for im in images]
        sizes = torch.tensor([[t.shape[1], t.shape[2]] for t in tensors])
        mean = torch.tensor(self.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std).view(1, 3, 1, 1)
        data = {"pixel_values": torch.cat([normalize_images(t[None], self.size, mean, std) for t in tensors]),
                "original_sizes": sizes}
        if input_points is None and input_labels is None and input_boxes is None:
            return BatchFeature(data=data, tensor_type=None)
        pts = lbl = boxes = None
        n = len(tensors)
        if input_points is not None:
            if input_labels is None:
                raise ValueError("input_labels must be given with input_points (1 = foreground point)")
            pts = torch.as_tensor(np.asarray(input_points, dtype=np.float32))
            lbl = torch.as_tensor(np.asarray(input_labels))
            if pts.ndim != 4 or pts.shape[0] != n:
                raise ValueError(f"input_points must be [B={n}, Q, N, 2], got shape {tuple(pts.shape)}")
            if lbl.shape != pts.shape[:3]:
                raise ValueError(f"input_labels must be [B, Q, N] = {tuple(pts.shape[:3])}, got {tuple(lbl.shape)}")
        elif input_labels is not None:
            raise ValueError("input_labels given without input_points")
        if input_boxes is not None:
            boxes = torch.as_tensor(np.asarray(input_boxes, dtype=np.float32))
            if boxes.ndim != 3 or boxes.shape[0] != n:
                raise ValueError(f"input_boxes must be [B={n}, Q, 4], got shape {tuple(boxes.shape)}")
        for b, (h, w) in enumerate(sizes.tolist()):  # the predictor's checks, in each image's own pixel frame
            assemble_prompts(None if pts is None else pts[b], None if lbl is None else lbl[b],
                             None if boxes is None else boxes[b], (h, w), self.max_points, allow_padding=True)
        h, w = sizes.float()[:, None, None].unbind(-1)  # each [B, 1, 1]
        if pts is not None:
            data["input_points"] = rescale_points(pts, h, w, self.size)
            data["input_labels"] = lbl.long()
        if boxes is not None:
            data["input_boxes"] = rescale_points(boxes.reshape(n, -1, 2, 2), h, w, self.size).reshape(boxes.shape)
        return BatchFeature(data=data, tensor_type=None)

    def post_process_masks(self, masks: torch.Tensor, original_sizes, binarize: bool = True,
                           mask_threshold: float = 0.0) -> List[torch.Tensor]:
        """Low-res logits ``[B, Q, M, h, w]`` -> per image ``[Q, M, H, W]`` (bicubic), thresholded if ``binarize``."""
        out = []
        for i, (h, w) in enumerate(torch.as_tensor(original_sizes).tolist()):
            up = F.interpolate(masks[i], (int(h), int(w)), mode="bicubic")
            out.append(up > mask_threshold if binarize else up)
        return out
