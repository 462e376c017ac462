"""``EfficientSamImageProcessor``: the native preprocessing (``modeling.efficient_sam.normalize_images`` /
``rescale_points``) and prompt checks (``prompts.assemble_prompts``) behind transformers' processor API, and
the processor half of transformers' ``mask-generation`` pipeline contract (``generate_crop_boxes``,
``post_process_masks``, ``filter_masks``, ``post_process_for_mask_generation``) on segment everything's own
functions (``automatic_mask_generator``), so the pipeline's masks are :class:`AutomaticMaskGenerator`'s."""
from __future__ import annotations

from typing import Dict, List, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from ...automatic_mask_generator import (BOX_NMS_THRESH, PRED_IOU_THRESH, STABILITY_SCORE_OFFSET,
                                         STABILITY_SCORE_THRESH, crop_boxes, crop_points, deduplicate, masks_to_records,
                                         point_grid, rgb_uint8)
from ...modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD, EfficientSamSpec, normalize_images, rescale_points
from ...prompts import assemble_prompts
from ...utils.image import image_to_tensor
from ...utils.masks import decode_rle, uncompressed_rle

__all__ = ["EfficientSamImageProcessor"]


class EfficientSamImageProcessor(BaseImageProcessor):
    """Stretch to ``size`` x ``size`` (bilinear, as the model was trained; no letterbox), scale to 0..1,
    normalise with ImageNet mean/std; rescale prompts into the same frame. Needs torch, not torchvision.

    The arithmetic is the native model's (the same functions), so native and HF paths give identical inputs;
    prompts go through the predictor's validation, image by image, in that image's pixel frame.
    """

    model_input_names = ["pixel_values"]

    def __init__(self, size: Union[int, Dict[str, int]] = EfficientSamSpec.img_size,
                 image_mean: Sequence[float] = IMAGENET_MEAN, image_std: Sequence[float] = IMAGENET_STD,
                 max_points: int = EfficientSamSpec.decoder_max_num_input_points, **kwargs) -> None:
        super().__init__(**kwargs)
        side = size if isinstance(size, int) else size.get("height")
        if not isinstance(side, int) or (isinstance(size, dict) and size != {"height": side, "width": side}):
            raise ValueError(f"size must be an int or {{'height': s, 'width': s}} (a square stretch), got {size!r}")
        self.size = {"height": side, "width": side}  # transformers' convention for a resize without aspect
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
        side = self.size["height"]
        data = {"pixel_values": torch.cat([normalize_images(t[None], side, mean, std) for t in tensors]),
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
                             None if boxes is None else boxes[b], (h, w), self.max_points, allow_padding=True,
                             negatives=True)  # whether the model takes label 0 is the model's check
        h, w = sizes.float()[:, None, None].unbind(-1)  # each [B, 1, 1]
        if pts is not None:
            data["input_points"] = rescale_points(pts, h, w, side)
            data["input_labels"] = lbl.long()
        if boxes is not None:
            data["input_boxes"] = rescale_points(boxes.reshape(n, -1, 2, 2), h, w, side).reshape(boxes.shape)
        return BatchFeature(data=data, tensor_type=None)

    def post_process_masks(self, masks: torch.Tensor, original_sizes, binarize: bool = True,
                           mask_threshold: float = 0.0, reshaped_input_sizes=None, **unsupported) -> List[torch.Tensor]:
        """Low-res logits ``[B, Q, M, h, w]`` -> per image ``[Q, M, H, W]`` (bicubic, the predictor's ``upscale``),
        thresholded if ``binarize``. ``reshaped_input_sizes`` is accepted for SAM's signature and not needed: the
        model frame is the whole image, stretched."""
        if unsupported:
            raise ValueError(f"EfficientSamImageProcessor.post_process_masks does not support {sorted(unsupported)} "
                             "(SAM 2 options); remove them, or fill holes with AutomaticMaskGenerator's "
                             "min_mask_region_area")
        out = []
        for i, (h, w) in enumerate(torch.as_tensor(original_sizes).tolist()):
            up = F.interpolate(masks[i], (int(h), int(w)), mode="bicubic")
            out.append(up > mask_threshold if binarize else up)
        return out

    # -- transformers' mask-generation pipeline ----------------------------------------------------------------
    # The pipeline calls these four in turn; each is a step of ``AutomaticMaskGenerator`` (same functions, same
    # order), so ``pipeline("mask-generation")`` returns its masks. Differences of the pipeline itself: every mask
    # is upsampled before the IoU filter (same survivors, more work), and ``crops_nms_thresh`` is both NMS
    # thresholds (``box_nms_thresh`` and ``crop_nms_thresh`` of the generator; transformers' SAM has one NMS).

    def generate_crop_boxes(self, image, target_size: int, crop_n_layers: int = 0, overlap_ratio: float = 512 / 1500,
                            points_per_crop: int = 32, crop_n_points_downscale_factor: int = 1, device=None):
        """``(crop_boxes [C, 4] xyxy, points [1, P, C, 2] in each crop's model frame, crops (HxWx3 uint8),
        labels [1, P, C])``: the generator's crops and point grids (``points_per_crop`` per side)."""
        if crop_n_layers > 0 and crop_n_points_downscale_factor != 1:
            raise ValueError("the mask-generation pipeline sends the same number of points to every crop: use "
                             "crop_n_points_downscale_factor=1 with crops_n_layers > 0, or AutomaticMaskGenerator "
                             "(crop_n_points_downscale_factor) for coarser grids on the crops")
        rgb = rgb_uint8(image)
        grid = point_grid(points_per_crop)
        boxes, crops, points = [], [], []
        for (x0, y0, x1, y1), _layer in crop_boxes(rgb.shape[0], rgb.shape[1], crop_n_layers, overlap_ratio):
            boxes.append([x0, y0, x1, y1])
            crops.append(rgb[y0:y1, x0:x1])
            points.append(rescale_points(torch.from_numpy(crop_points(grid, x1 - x0, y1 - y0)), y1 - y0, x1 - x0,
                                         target_size))
        points = torch.stack(points, dim=1)[None]  # [1, P, C, 2]
        labels = torch.ones(points.shape[:3], dtype=torch.long)
        device = device or torch.device("cpu")
        return torch.tensor(boxes, dtype=torch.float32, device=device), points.to(device), crops, labels.to(device)

    def filter_masks(self, masks: torch.Tensor, iou_scores: torch.Tensor, original_size, cropped_box_image,
                     pred_iou_thresh: float = PRED_IOU_THRESH, stability_score_thresh: float = STABILITY_SCORE_THRESH,
                     mask_threshold: float = 0.0, stability_score_offset: float = STABILITY_SCORE_OFFSET):
        """One batch of a crop: logits ``[Q, M, h, w]`` at the crop's size and scores ``[Q, M]`` -> the records
        that pass the generator's filters, their scores ``[K]`` and xyxy boxes ``[K, 4]`` in the image."""
        logits, iou = masks.flatten(0, 1).float().cpu(), iou_scores.flatten(0, 1).float().cpu()
        keep = iou > pred_iou_thresh
        crop = tuple(int(v) for v in cropped_box_image.tolist())
        full = tuple(int(v) for v in torch.as_tensor(original_size).tolist())
        records = masks_to_records(logits[keep].numpy(), iou[keep].numpy(), crop, full, mask_threshold,
                                   stability_score_thresh, stability_score_offset)
        return records, _scores(records), _boxes(records)

    def post_process_for_mask_generation(self, all_masks: List[Dict], all_scores, all_boxes,
                                         crops_nms_thresh: float = BOX_NMS_THRESH):
        """Every batch's records -> the generator's NMS -> ``(masks [H, W] bool, scores, RLEs, boxes)`` as
        transformers' SAM returns them (RLEs uncompressed, as segment-anything's). The across-crops stage runs when
        the records come from several crops; the generator runs it whenever it cropped, which is the same result
        here because both thresholds are equal (masks of one crop already overlap no more than the threshold)."""
        records = deduplicate(all_masks, crops_nms_thresh, crops_nms_thresh,
                              multi_crop=len({tuple(r["crop_box"]) for r in all_masks}) > 1)
        masks = [torch.from_numpy(decode_rle(r["segmentation"])) for r in records]
        return masks, _scores(records), [uncompressed_rle(m.numpy()) for m in masks], _boxes(records)


def _scores(records: List[Dict]) -> torch.Tensor:
    return torch.tensor([r["predicted_iou"] for r in records], dtype=torch.float32)


def _boxes(records: List[Dict]) -> torch.Tensor:
    """xyxy boxes of records (inclusive max, as transformers' SAM)."""
    return torch.tensor([[x, y, x + w - 1, y + h - 1] for x, y, w, h in (r["bbox"] for r in records)],
                        dtype=torch.float32).reshape(-1, 4)
