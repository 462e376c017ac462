"""ONNX bundles that labelling tools load with their own EfficientSAM / SAM loaders
(``efficientsam-zoo export-onnx --bundle samexporter|x-anylabeling``).

``samexporter`` (samexporter >= 0.5 ``EfficientSAMONNX``; osam / labelme read the same pair)
    The EfficientSAM release's exporter contract: ``encoder.onnx`` takes ``batched_images`` float ``[B, 3, H, W]``
    on a 0..1 scale (our encoder graph as it is); ``decoder.onnx`` takes ``image_embeddings``,
    ``batched_point_coords`` ``[B, Q, N, 2]`` (pixels of the original image), ``batched_point_labels`` **float**
    ``[B, Q, N]`` and ``orig_im_size`` **int64** ``[2]``, and returns ``output_masks`` (logits at the original size,
    ``[B, Q, 3, H, W]``), ``iou_predictions`` ``[B, Q, 3]`` and ``low_res_masks``.
``x-anylabeling`` (its ``efficientvit_sam`` model type: ``anylabeling/services/auto_labeling/efficientvit_sam.py``)
    ``encoder.onnx`` takes the raw RGB image, uint8 ``[H, W, 3]``; ``decoder.onnx`` takes SAM's decoder inputs --
    ``image_embeddings``, ``point_coords`` ``[1, N, 2]`` in the frame whose longest side is 1024 (SAM's
    ``ResizeLongestSide`` rounding), ``point_labels`` ``[1, N]`` float, ``mask_input``, ``has_mask_input`` (accepted,
    unused: the release has no mask prompts) and ``orig_im_size`` float ``[2]`` -- and returns ``masks`` at the
    original size, best-scoring first (the tool keeps the first), ``iou_predictions`` and ``low_res_masks``; plus the
    model's YAML for X-AnyLabeling's "load custom model".
"""
from __future__ import annotations

import os
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from .export_onnx import export_graph, graph_specs
from .modeling.efficient_sam import EfficientSam
from .utils.io import atomic_path

__all__ = ["BUNDLES", "export_bundle", "ReleaseDecoderGraph", "AnyLabelingEncoderGraph", "AnyLabelingDecoderGraph"]

BUNDLES = ("samexporter", "x-anylabeling")
_LONGEST_SIDE = 1024  # SAM's ResizeLongestSide target, which X-AnyLabeling's SAM loaders scale points to


def _full_size(model: EfficientSam, embeddings, coords, labels, height, width):
    """Low-res logits and scores for pixel prompts, and the logits upsampled to ``height`` x ``width`` (bicubic, as
    the predictor does); ``height`` / ``width`` are int64 scalars read from an input tensor."""
    low, iou = model.predict_masks(embeddings, coords, labels.long(), True, input_h=height.float(),
                                   input_w=width.float())
    h, w = height.item(), width.item()
    torch._check(h > 0)
    torch._check(w > 0)
    b, q, k = low.shape[:3]
    full = F.interpolate(low.reshape(b * q, k, *low.shape[-2:]), size=(h, w), mode="bicubic")
    return full.reshape(b, q, k, h, w), iou, low


class ReleaseDecoderGraph(nn.Module):
    """The decoder with the EfficientSAM release exporter's inputs and outputs."""

    def __init__(self, model: EfficientSam) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embeddings, batched_point_coords, batched_point_labels, orig_im_size):
        return _full_size(self.model, image_embeddings, batched_point_coords, batched_point_labels, orig_im_size[0],
                          orig_im_size[1])


class AnyLabelingEncoderGraph(nn.Module):
    """uint8 ``[H, W, 3]`` RGB -> the embedding ``[1, C, h, w]``."""

    def __init__(self, model: EfficientSam) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_image):
        return self.model.embed_images(input_image.permute(2, 0, 1)[None].float() / 255.0)


class AnyLabelingDecoderGraph(nn.Module):
    """SAM's ONNX decoder interface around ours: points back from the longest-side-1024 frame to pixels, the three
    masks at the original size, best-scoring first."""

    def __init__(self, model: EfficientSam) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        h, w = orig_im_size[0], orig_im_size[1]
        scale = _LONGEST_SIDE / torch.maximum(h, w)
        frame = torch.stack([torch.floor(w * scale + 0.5), torch.floor(h * scale + 0.5)])  # SAM's rounding
        pixels = point_coords * (torch.stack([w, h]) / frame)
        full, iou, low = _full_size(self.model, image_embeddings, pixels[:, None], point_labels[:, None],
                                    h.long(), w.long())
        order = torch.argsort(iou[:, 0], dim=-1, descending=True)  # [1, 3]
        full = torch.gather(full[:, 0], 1, order[:, :, None, None].expand(-1, -1, *full.shape[-2:]))
        low = torch.gather(low[:, 0], 1, order[:, :, None, None].expand(-1, -1, *low.shape[-2:]))
        return full, torch.gather(iou[:, 0], 1, order), low


def export_bundle(model: EfficientSam, out_dir: str, tool: str, name: str = "efficientsam", opset: int = 18,
                  any_size: bool = False) -> Dict[str, str]:
    """Write ``tool``'s files for ``model`` into ``out_dir``: ``{"encoder": ..., "decoder": ..., ["config": ...]}``.
    X-AnyLabeling's loader takes 64x64 embeddings only, so its bundle needs a 1024-px model (``any_size`` lets tests
    write one of another size)."""
    from .utils.onnx_graphs import GRAPH_FILES

    if tool not in BUNDLES:
        raise ValueError(f"unknown bundle {tool!r}; choose one of {', '.join(BUNDLES)}")
    if tool == "x-anylabeling" and model.img_size != _LONGEST_SIDE and not any_size:
        raise ValueError(f"X-AnyLabeling's efficientvit_sam loader takes 64x64 image embeddings only, i.e. a "
                         f"{_LONGEST_SIDE}-px model (the released EfficientSAM-Ti / -S); this one is "
                         f"{model.img_size} px")

    model = model.eval()
    os.makedirs(out_dir, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    emb = model.get_image_embeddings(torch.rand(2, 3, 64, 64, generator=g)).detach()
    coords = torch.rand(2, 2, 3, 2, generator=g) * 60
    batch, queries, points = torch.export.Dim("batch"), torch.export.Dim("queries"), torch.export.Dim("points")
    paths = {role: os.path.join(out_dir, file) for role, file in GRAPH_FILES.items()}
    if tool == "samexporter":
        module, args, kw = graph_specs(model)[GRAPH_FILES["encoder"]]  # our encoder is the release's contract
        export_graph(model, module, args, paths["encoder"], opset, **kw)
        export_graph(model, ReleaseDecoderGraph(model), (emb, coords, torch.ones(2, 2, 3), torch.tensor([60, 80])),
                     paths["decoder"], opset,
                     input_names=["image_embeddings", "batched_point_coords", "batched_point_labels", "orig_im_size"],
                     output_names=["output_masks", "iou_predictions", "low_res_masks"],
                     dynamic_shapes={"image_embeddings": {0: batch},
                                     "batched_point_coords": {0: batch, 1: queries, 2: points},
                                     "batched_point_labels": {0: batch, 1: queries, 2: points}, "orig_im_size": None})
        return paths
    height, width = torch.export.Dim("height", min=16), torch.export.Dim("width", min=16)
    export_graph(model, AnyLabelingEncoderGraph(model),
                 (torch.randint(0, 256, (48, 64, 3), dtype=torch.uint8, generator=g),), paths["encoder"], opset,
                 input_names=["input_image"], output_names=["image_embeddings"],
                 dynamic_shapes={"input_image": {0: height, 1: width}})
    size = model.prompt_encoder.mask_input_size
    export_graph(model, AnyLabelingDecoderGraph(model),
                 (emb[:1], coords[0, :1], torch.ones(1, 3), torch.zeros(1, 1, *size), torch.zeros(1),
                  torch.tensor([60.0, 80.0])), paths["decoder"], opset,
                 input_names=["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input",
                              "orig_im_size"], output_names=["masks", "iou_predictions", "low_res_masks"],
                 dynamic_shapes={"image_embeddings": None, "point_coords": {1: points}, "point_labels": {1: points},
                                 "mask_input": None, "has_mask_input": None, "orig_im_size": None})
    paths["config"] = os.path.join(out_dir, f"{name}.yaml")
    with atomic_path(paths["config"]) as tmp, open(tmp, "w") as f:
        f.write(f"type: efficientvit_sam\nname: {name}-r{model.img_size}\ndisplay_name: {name} (efficientsam-zoo)\n"
                f"encoder_model_path: encoder.onnx\ndecoder_model_path: decoder.onnx\ntarget_size: {_LONGEST_SIDE}\n")
    return paths
