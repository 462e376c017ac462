"""Segment everything: prompt a grid of points, keep confident and stable masks, de-duplicate with box NMS.

Memory is bounded by ``points_per_batch``: each image (or crop) is embedded once; the grid is sent through the
decoder in chunks against that one embedding; each chunk's masks are thresholded, filtered and turned into
RLE at once, so no more than one chunk of full-resolution masks exists at any time. With ``cuda_graphs=True``
(model on a CUDA device) each chunk shape is captured once and replayed (the last, shorter chunk is its own graph).

Records follow SAM / SA-1B: ``segmentation`` (COCO RLE, or a bool array with ``output_mode="binary_mask"``),
``area``, ``bbox`` (x, y, w, h), ``predicted_iou``, ``point_coords``, ``stability_score``, ``crop_box``.

Everything after the decoder is numpy (masks kept as segment-anything's uncompressed RLE until the end), so the
torch-free :class:`~efficientsam_zoo.onnx_runtime.OnnxPredictor` drives the same generator:
``AutomaticMaskGenerator(OnnxPredictor("encoder.onnx", "decoder.onnx"))``. This module imports no torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

import numpy as np

from .utils.image import as_numpy, image_to_array
from .utils.masks import compress_rle, decode_rle, mask_to_xywh, masks_to_boxes, uncompressed_rle

if TYPE_CHECKING:  # annotations only: segment everything also runs on the torch-free OnnxPredictor
    from .modeling.efficient_sam import EfficientSam

__all__ = ["AutomaticMaskGenerator", "SamAutomaticMaskGenerator", "point_grid", "crop_boxes", "crop_points",
           "stability_score", "remove_small_regions", "masks_to_records", "deduplicate", "box_nms", "rgb_uint8",
           "PRED_IOU_THRESH", "STABILITY_SCORE_THRESH", "STABILITY_SCORE_OFFSET", "BOX_NMS_THRESH"]


OUTPUT_MODES = ("coco_rle", "binary_mask", "uncompressed_rle")
#: segment-anything's filter defaults, written once: the generator, the CLI and the HF mask-generation processor use
#: these names.
PRED_IOU_THRESH = 0.88
STABILITY_SCORE_THRESH = 0.95
STABILITY_SCORE_OFFSET = 1.0
BOX_NMS_THRESH = 0.7
#: A mask whose box lies within this many pixels of a crop's inner edge was cut by the crop (SAM's tolerance).
CROP_EDGE_ATOL = 20.0


def point_grid(n: int) -> np.ndarray:
    """``n*n`` points at the centres of an ``n x n`` grid on [0, 1]^2, as (x, y), row by row (SAM's grid, to the bit)."""
    c = np.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)
    xs, ys = np.meshgrid(c, c)
    return np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1)


def crop_boxes(h: int, w: int, n_layers: int, overlap_ratio: float) -> List[Tuple[Tuple[int, int, int, int], int]]:
    """``((x0, y0, x1, y1), layer)``: the full image (layer 0), then for layer ``i`` a ``2^i x 2^i`` grid of
    overlapping crops."""
    boxes = [((0, 0, w, h), 0)]
    short = min(h, w)
    for layer in range(1, n_layers + 1):
        n = 2 ** layer
        overlap = int(overlap_ratio * short * (2 / n))
        cw, ch = int(np.ceil((overlap * (n - 1) + w) / n)), int(np.ceil((overlap * (n - 1) + h) / n))
        for x0 in [int((cw - overlap) * i) for i in range(n)]:
            for y0 in [int((ch - overlap) * j) for j in range(n)]:
                boxes.append(((x0, y0, min(x0 + cw, w), min(y0 + ch, h)), layer))
    return boxes


def stability_score(logits: np.ndarray, threshold: float, offset: float) -> np.ndarray:
    """float32 IoU between the masks ``[..., H, W]`` thresholded at ``threshold + offset`` and at
    ``threshold - offset`` (SAM's)."""
    logits = np.asarray(as_numpy(logits))
    flat = logits.reshape(*logits.shape[:-2], logits.shape[-2] * logits.shape[-1])
    inner, outer = (flat > threshold + offset).sum(-1), (flat > threshold - offset).sum(-1)
    return inner.astype(np.float32) / np.maximum(outer, 1).astype(np.float32)


def remove_small_regions(mask: np.ndarray, min_area: int) -> np.ndarray:
    """SAM's clean-up: fill holes smaller than ``min_area`` pixels, then drop islands smaller than it -- keeping the
    largest island when every one is smaller (connected components with 8-connectivity)."""
    return _small_regions(_small_regions(mask, min_area, fill_holes=True)[0], min_area, fill_holes=False)[0]


def _small_regions(mask: np.ndarray, min_area: int, fill_holes: bool) -> Tuple[np.ndarray, bool]:
    """One pass of :func:`remove_small_regions`: ``(mask, changed)``."""
    import cv2

    work = (~mask if fill_holes else mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(work, connectivity=8)
    sizes = stats[1:, cv2.CC_STAT_AREA]
    small = [i + 1 for i, size in enumerate(sizes) if size < min_area]
    if not small:
        return mask, False
    if fill_holes:
        return mask | np.isin(labels, small), True
    big = [i for i in range(1, n) if i not in small] or [int(np.argmax(sizes)) + 1]
    return np.isin(labels, big), True


def rgb_uint8(image) -> np.ndarray:
    """Any image the predictor takes -> the ``H x W x 3`` uint8 RGB array that segment everything crops."""
    return (image_to_array(image) * 255).round().astype(np.uint8).transpose(1, 2, 0)


def crop_points(grid: np.ndarray, crop_w: int, crop_h: int) -> np.ndarray:
    """A ``[N, 2]`` grid in 0..1 -> float32 (x, y) pixels of a ``crop_w`` x ``crop_h`` crop: the point prompts."""
    return (grid * np.array([crop_w, crop_h])).astype(np.float32)


def masks_to_records(logits: np.ndarray, iou: np.ndarray, crop: Tuple[int, int, int, int], full: Tuple[int, int],
                     mask_threshold: float, stability_score_thresh: float, stability_score_offset: float,
                     points: Optional[np.ndarray] = None) -> List[Dict]:
    """Candidates that passed the predicted-IoU filter -> SAM records (module docstring, ``segmentation`` as
    compact uncompressed RLE: ``utils.masks.uncompressed_rle(compact=True)``), in candidate order.

    ``logits [K, h, w]`` at the size of ``crop = (x0, y0, x1, y1)`` of an image of size ``full = (H, W)``; ``iou``
    ``[K]``; ``points [K, 2]`` the prompts in crop pixels (``point_coords`` is None without them). Applies the
    stability filter, binarises, drops masks cut by the crop's inner edges (SAM's rule) and empty masks."""
    x0, y0, x1, y1 = crop
    h, w = full
    logits, iou = np.asarray(as_numpy(logits), np.float32), np.asarray(as_numpy(iou), np.float32)
    stab = stability_score(logits, mask_threshold, stability_score_offset)
    keep = stab >= np.float32(stability_score_thresh)
    masks = logits[keep] > np.float32(mask_threshold)
    idx = np.flatnonzero(keep)
    boxes = masks_to_boxes(masks)
    offset = np.array([x0, y0, x0, y0], np.float32)
    if (x0, y0, x1, y1) != (0, 0, w, h):  # SAM's rule: drop masks within CROP_EDGE_ATOL px of an inner crop edge
        uncropped = boxes + offset
        near_crop = np.isclose(uncropped, np.array([x0, y0, x1, y1], np.float32), atol=CROP_EDGE_ATOL, rtol=0)
        near_image = np.isclose(uncropped, np.array([0, 0, w, h], np.float32), atol=CROP_EDGE_ATOL, rtol=0)
        ok = ~(near_crop & ~near_image).any(1)
        masks, idx, boxes = masks[ok], idx[ok], boxes[ok]
    records = []
    for m, i, b in zip(masks, idx.tolist(), boxes):
        if not m.any():
            continue
        full_mask = np.zeros((h, w), dtype=bool)
        full_mask[y0:y1, x0:x1] = m
        bx0, by0, bx1, by1 = (b + offset).tolist()
        point = None if points is None else [[float(points[i, 0]) + x0, float(points[i, 1]) + y0]]
        records.append(dict(segmentation=uncompressed_rle(full_mask, compact=True), area=int(m.sum()),
                            bbox=[bx0, by0, bx1 - bx0 + 1, by1 - by0 + 1], predicted_iou=float(iou[i]),
                            point_coords=point, stability_score=float(stab[i]), crop_box=[x0, y0, x1 - x0, y1 - y0]))
    return records


def deduplicate(records: List[Dict], box_nms_thresh: float, crop_nms_thresh: float, multi_crop: bool) -> List[Dict]:
    """SAM's two NMS stages: within each crop by predicted IoU (``box_nms_thresh``), then, when the image was
    cropped, across crops preferring masks from smaller crops (``crop_nms_thresh``). Records keep crop order."""
    out: List[Dict] = []
    for crop in dict.fromkeys(tuple(r["crop_box"]) for r in records):
        mine = [r for r in records if tuple(r["crop_box"]) == crop]
        out += [mine[i] for i in _nms(mine, box_nms_thresh)]
    if multi_crop and out:
        out = [out[i] for i in _nms(out, crop_nms_thresh, prefer_small_crops=True)]
    return out


def box_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """torchvision's ``ops.nms`` in numpy: indices of the kept xyxy ``boxes [N, 4]``, by decreasing score (ties in
    index order); a box goes when its IoU with a kept, higher-scoring box exceeds ``iou_threshold``. float32
    arithmetic in torchvision's order, compared with the threshold in float64, as its CPU kernel does."""
    boxes, scores = np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32)
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0) * (y1 - y0)
    order = np.argsort(-scores, kind="stable")
    removed = np.zeros(len(boxes), bool)
    keep = []
    for i in order:
        if removed[i]:
            continue
        keep.append(i)
        w = np.maximum(np.float32(0), np.minimum(x1[i], x1) - np.maximum(x0[i], x0))
        h = np.maximum(np.float32(0), np.minimum(y1[i], y1) - np.maximum(y0[i], y0))
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 between two empty boxes: NaN, kept (torchvision)
            removed |= (inter / (areas[i] + areas - inter)).astype(np.float64) > iou_threshold
    return np.asarray(keep, np.int64)


def _nms(records: List[Dict], thresh: float, prefer_small_crops: bool = False,
         scores: Optional[np.ndarray] = None) -> List[int]:
    """Indices kept by box NMS over the records' boxes (inclusive pixel corners, as SAM's ``batched_mask_to_box``),
    by predicted IoU, by ``scores`` or, across crops, preferring smaller crops."""
    boxes = np.array([[x, y, x + bw - 1, y + bh - 1] for x, y, bw, bh in (r["bbox"] for r in records)], np.float32)
    if scores is None and prefer_small_crops:
        crops = np.array([c[2:] for c in (r["crop_box"] for r in records)], np.float32)
        scores = np.float32(1.0) / (crops[:, 0] * crops[:, 1])
    elif scores is None:
        scores = np.array([r["predicted_iou"] for r in records], np.float32)
    return box_nms(boxes, scores, thresh).tolist()


def _require_module(module: str, needed: bool, what: str, alternative: str) -> None:
    """Refuse, before any decoding, an option whose package is missing (the torch-free install has neither)."""
    import importlib.util

    if needed and importlib.util.find_spec(module) is None:
        raise ImportError(f"{what} needs {module}, which is not installed: pip install {module} {alternative}")


class AutomaticMaskGenerator:
    """Segment everything in an image: ``generate(image)`` returns SAM / SA-1B-style records (module docstring).

    The options are segment-anything's ``SamAutomaticMaskGenerator`` options, with its names and defaults (except
    ``output_mode``, ``"coco_rle"`` here; :class:`SamAutomaticMaskGenerator` keeps SAM's ``"binary_mask"``): a
    ``points_per_side`` grid (or explicit ``point_grids`` in 0..1, one per crop layer) decoded in chunks of
    ``points_per_batch``; masks kept when their predicted IoU exceeds ``pred_iou_thresh`` and their
    stability score (IoU of the masks thresholded at +-``stability_score_offset``) reaches
    ``stability_score_thresh``; duplicates removed by box NMS (``box_nms_thresh``); ``crop_n_layers`` of
    overlapping crops; holes and islands below ``min_mask_region_area`` removed.

    ``model``: an :class:`EfficientSam`; a model with an ``image_predictor()`` giving the same predictor calls
    (EfficientTAM's ``EfficientTamModel``); or such a predictor itself (the torch-free ``OnnxPredictor``).
    """

    def __init__(self, model: "EfficientSam", points_per_side: Optional[int] = 32, points_per_batch: int = 64,
                 pred_iou_thresh: float = PRED_IOU_THRESH, stability_score_thresh: float = STABILITY_SCORE_THRESH,
                 stability_score_offset: float = STABILITY_SCORE_OFFSET, box_nms_thresh: float = BOX_NMS_THRESH,
                 crop_n_layers: int = 0, crop_nms_thresh: float = BOX_NMS_THRESH, crop_overlap_ratio: float = 512 / 1500,
                 crop_n_points_downscale_factor: int = 1, point_grids: Optional[List[np.ndarray]] = None,
                 min_mask_region_area: int = 0, output_mode: str = "coco_rle", cuda_graphs: bool = False) -> None:
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}")
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("give exactly one of points_per_side and point_grids (as segment-anything)")
        if point_grids is not None:
            point_grids = [np.asarray(g, dtype=np.float64) for g in point_grids]
            if len(point_grids) < crop_n_layers + 1 or any(g.ndim != 2 or g.shape[1] != 2 for g in point_grids):
                raise ValueError(f"point_grids must hold one [N, 2] grid (x, y in 0..1) per crop layer "
                                 f"({crop_n_layers + 1}), got {[g.shape for g in point_grids]}")
        if (points_per_side is not None and points_per_side < 1) or points_per_batch < 1:
            raise ValueError("points_per_side and points_per_batch must be positive")
        _require_module("pycocotools", output_mode == "coco_rle", "output_mode='coco_rle' (COCO's compressed RLE)",
                        "or pass output_mode='binary_mask' / 'uncompressed_rle'")
        _require_module("cv2", min_mask_region_area > 0, "min_mask_region_area > 0 (connected components)",
                        "(opencv-python) or leave min_mask_region_area at 0")
        # a predictor (OnnxPredictor), a model that brings its own (EfficientTAM's image model), or an EfficientSam
        make = getattr(model, "image_predictor", None)
        if hasattr(model, "predict_low_res_above"):
            if cuda_graphs:
                raise ValueError("cuda_graphs=True needs an EfficientSam on a CUDA device, not a predictor")
            self.predictor = model
        elif make is not None:
            self.predictor = make()
        else:
            from .predictor import EfficientSamPredictor

            self.predictor = EfficientSamPredictor(model, cuda_graphs=cuda_graphs)
        self.point_grids, self.points_per_side, self.points_per_batch = point_grids, points_per_side, points_per_batch
        self.pred_iou_thresh, self.stability_score_thresh = pred_iou_thresh, stability_score_thresh
        self.stability_score_offset, self.box_nms_thresh = stability_score_offset, box_nms_thresh
        self.crop_n_layers, self.crop_nms_thresh, self.crop_overlap_ratio = crop_n_layers, crop_nms_thresh, crop_overlap_ratio
        self.crop_n_points_downscale_factor = crop_n_points_downscale_factor
        self.min_mask_region_area, self.output_mode = min_mask_region_area, output_mode
        self.stats: Dict[str, int] = {}
        #: ``progress(done, total)`` after each decoder call, counted over every crop (the demo's progress bar)
        self.progress: Optional[Callable[[int, int], None]] = None

    def generate(self, image: np.ndarray) -> List[Dict]:
        """All masks of ``image`` (HxWx3 uint8 RGB)."""
        rgb = rgb_uint8(image)
        h, w = rgb.shape[:2]
        self.stats = {"decoder_calls": 0, "max_queries_per_call": 0, "candidates": 0, "upscaled_queries": 0,
                      "upsampled": 0}
        records: List[Dict] = []
        crops = crop_boxes(h, w, self.crop_n_layers, self.crop_overlap_ratio)
        grids = [self.point_grids[layer] if self.point_grids is not None else
                 point_grid(max(1, self.points_per_side // (self.crop_n_points_downscale_factor ** layer)))
                 for _, layer in crops]
        self._calls = (0, sum(-(-len(g) // self.points_per_batch) for g in grids))
        for (crop, _), grid in zip(crops, grids):
            records += self._process_crop(rgb, crop, grid, (h, w))
        records = deduplicate(records, self.box_nms_thresh, self.crop_nms_thresh, multi_crop=len(crops) > 1)
        if self.min_mask_region_area > 0:
            records = self._postprocess_small_regions(records, (h, w))
        for r in records:  # kept as compact uncompressed RLE so far
            if self.output_mode == "binary_mask":
                r["segmentation"] = decode_rle(r["segmentation"])
            elif self.output_mode == "coco_rle":
                r["segmentation"] = compress_rle(r["segmentation"])
            else:
                r["segmentation"] = {**r["segmentation"], "counts": r["segmentation"]["counts"].tolist()}
        return records

    def _process_crop(self, image: np.ndarray, crop: Tuple[int, int, int, int], grid: np.ndarray,
                      full: Tuple[int, int]) -> List[Dict]:
        x0, y0, x1, y1 = crop
        crop_img = image[y0:y1, x0:x1]
        ch, cw = crop_img.shape[:2]
        self.predictor.set_image(crop_img)  # one embedding per crop, shared by every chunk of points
        points = crop_points(grid, cw, ch)
        kept: List[Dict] = []
        for i in range(0, len(points), self.points_per_batch):
            kept += self._process_batch(points[i:i + self.points_per_batch], crop, full)
            done, total = self._calls
            self._calls = (done + 1, total)
            if self.progress is not None:
                self.progress(done + 1, total)
        return kept

    def _process_batch(self, points: np.ndarray, crop, full) -> List[Dict]:
        # the predicted-IoU filter needs no mask: the decoder upscales only the queries with a mask above it, and
        # of their masks only the survivors are upsampled to full resolution (each mask on its own, so the
        # survivors' logits are those of decoding and upsampling everything)
        low_res, iou, index = self.predictor.predict_low_res_above(
            points[:, None, :], np.ones((len(points), 1), np.int64), self.pred_iou_thresh)
        index = np.asarray(as_numpy(index), np.int64)
        iou = np.asarray(as_numpy(iou), np.float32)
        self.stats["decoder_calls"] += 1
        self.stats["max_queries_per_call"] = max(self.stats["max_queries_per_call"], len(points))
        self.stats["candidates"] += iou.size
        self.stats["upscaled_queries"] += len(index)
        iou = iou[index]  # [K, 3]: the kept queries' masks, in the order of low_res
        point_of = np.repeat(points[index], iou.shape[1], 0)
        iou = iou.reshape(-1)
        keep = np.flatnonzero(iou > np.float32(self.pred_iou_thresh))
        self.stats["upsampled"] += len(keep)
        low_res = low_res.reshape(-1, *low_res.shape[-2:])  # a torch tensor on its device, or a numpy array
        logits = np.asarray(as_numpy(self.predictor.upscale(low_res[keep][:, None])), np.float32)[:, 0]
        return masks_to_records(logits, iou[keep], crop, full, self.predictor.mask_threshold,
                                self.stability_score_thresh, self.stability_score_offset, point_of[keep])

    def _postprocess_small_regions(self, records: List[Dict], shape) -> List[Dict]:
        """SAM's step: clean every mask, then box NMS that prefers the masks the clean-up left unchanged."""
        out, unchanged = [], []
        for r in records:
            m = decode_rle(r["segmentation"])
            cleaned = remove_small_regions(m, self.min_mask_region_area)
            same = bool(np.array_equal(cleaned, m))
            out.append(r if same else {**r, "segmentation": uncompressed_rle(cleaned, compact=True),
                                       "area": int(cleaned.sum()),
                                       "bbox": mask_to_xywh(cleaned)})
            unchanged.append(float(same))
        if not out:
            return out
        keep = _nms(out, self.box_nms_thresh, scores=np.array(unchanged, np.float32))
        return [out[i] for i in keep]


class SamAutomaticMaskGenerator(AutomaticMaskGenerator):
    """segment-anything's class name and defaults (``output_mode="binary_mask"``): swap
    ``from segment_anything import SamAutomaticMaskGenerator`` for
    ``from efficientsam_zoo import SamAutomaticMaskGenerator`` and keep the rest of the code."""

    def __init__(self, model: "EfficientSam", *args, **kwargs) -> None:
        if len(args) < 13:  # output_mode is segment-anything's 13th argument after the model
            kwargs.setdefault("output_mode", "binary_mask")
        super().__init__(model, *args, **kwargs)
