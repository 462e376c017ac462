"""``OnnxPredictor``: :class:`~efficientsam_zoo.predictor.EfficientSamPredictor`'s ``set_image`` / ``predict`` on the
two ONNX graphs of ``efficientsam-zoo export-onnx`` (fp32 or int8), with onnxruntime, numpy and Pillow only -- no
torch. Install with ``pip install 'efficientsam-zoo[onnx-runtime]'``.

It reads images and checks prompts with the torch predictor's own code (``utils.image.image_to_array``,
``utils.prompt_checks``), so both accept and refuse the same inputs with the same messages, and it upsamples the
low-res logits with PyTorch's bicubic arithmetic (A = -0.75, half-pixel centres, clamped borders) written as two
matrix products. The graphs' metadata (``export_onnx.model_facts``) gives the point budget, whether label 0 is a
negative click and the mask threshold.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Optional, Sequence, Tuple

import numpy as np

from .utils.image import ImageLike, image_to_array
from .utils.onnx_graphs import DECODER_OUTPUTS, ENCODER_INPUTS, ENCODER_OUTPUTS, METADATA_KEY, decoder_inputs
from .utils.predictor_state import PredictorState
from .utils.prompt_checks import assemble_prompt_arrays, check_mask_input_array, single_query_arrays

__all__ = ["OnnxPredictor", "bicubic_matrix", "upscale_logits"]

_A = -0.75  # PyTorch's (and OpenCV's) bicubic coefficient


@lru_cache(maxsize=16)
def bicubic_matrix(out_size: int, in_size: int) -> np.ndarray:
    """``[out_size, in_size]`` weights of PyTorch's ``F.interpolate(..., mode="bicubic", align_corners=False)`` along
    one axis: output ``i`` samples input position ``(i + 0.5) * in / out - 0.5`` with the cubic convolution kernel,
    reading clamped indices at the borders."""
    weights = np.zeros((out_size, in_size), np.float64)
    src = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    base = np.floor(src).astype(np.int64)
    t = src - base
    for k, x in zip(range(-1, 3), (t + 1, t, 1 - t, 2 - t)):
        ax = np.abs(x)
        near = ((_A + 2) * ax - (_A + 3)) * ax * ax + 1
        far = ((_A * ax - 5 * _A) * ax + 8 * _A) * ax - 4 * _A
        w = np.where(ax <= 1, near, far)
        np.add.at(weights, (np.arange(out_size), np.clip(base + k, 0, in_size - 1)), w)
    return weights.astype(np.float32)


def upscale_logits(low_res: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Low-res logits ``[..., h, w]`` -> logits at ``size`` (H, W), PyTorch's bicubic as two matrix products."""
    rows, cols = bicubic_matrix(size[0], low_res.shape[-2]), bicubic_matrix(size[1], low_res.shape[-1])
    return rows @ low_res.astype(np.float32) @ cols.T


def _check_graph(session, inputs: Sequence[str], outputs: Sequence[str], path: str, role: str) -> None:
    """Refuse a graph whose inputs / outputs are not ours (another exporter's, a bundle's), naming the first one."""
    for kind, expected, names in (("input", inputs, [i.name for i in session.get_inputs()]),
                                  ("output", outputs, [o.name for o in session.get_outputs()])):
        if list(expected) != names:
            first = next((n for n in expected if n not in names), names[len(expected):][:1] or names)
            older = kind == "output" and names == list(expected[:2])  # before the single-mask outputs
            raise ValueError(f"{path!r} is not an efficientsam-zoo {role} graph: its {kind}s are {names}, expected "
                             f"{list(expected)} (first mismatch: {first!r}"
                             + ("; written by an older efficientsam-zoo" if older else "")
                             + "). Write the pair with `efficientsam-zoo export-onnx` (without --bundle)")


class OnnxPredictor(PredictorState):
    """``OnnxPredictor("encoder.onnx", "decoder.onnx")``, then ``set_image`` and ``predict`` as with
    ``EfficientSamPredictor`` (numpy in, numpy out). ``providers``: onnxruntime execution providers (default CPU)."""

    def __init__(self, encoder: str, decoder: str, providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        providers = list(providers or ["CPUExecutionProvider"])
        self.encoder = ort.InferenceSession(encoder, options, providers=providers)
        self.decoder = ort.InferenceSession(decoder, options, providers=providers)
        _check_graph(self.encoder, ENCODER_INPUTS, ENCODER_OUTPUTS, encoder, "encoder")
        stored = self.decoder.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if stored is None:
            raise ValueError(f"{decoder!r} carries no {METADATA_KEY!r} metadata (the model's point budget, negative "
                             "clicks, mask threshold): write the pair again with `efficientsam-zoo export-onnx`")
        self.facts = json.loads(stored)
        self.inputs = decoder_inputs(bool(self.facts["mask_prompts"]))
        _check_graph(self.decoder, self.inputs, DECODER_OUTPUTS, decoder, "decoder")
        self.mask_threshold = float(self.facts["mask_threshold"])
        # the mask prompt's fixed size, read off the graph (4x the embedding grid; no mask prompts: unused)
        self.mask_input_size = tuple(self.decoder.get_inputs()[-2].shape[-2:]) if self.facts["mask_prompts"] else None
        self.reset_image()

    def set_image(self, image: ImageLike, image_format: str = "RGB") -> None:
        """Compute and keep the embedding of ``image`` (numpy ``HxWx3`` uint8 / uint16 / 0..1 float, or a PIL
        image; as ``EfficientSamPredictor.set_image``)."""
        pixels = image_to_array(image, image_format)
        (features,) = self.encoder.run(None, {ENCODER_INPUTS[0]: pixels[None]})
        self.set_embedding(features, pixels.shape[1:])

    def predict(self, point_coords: Optional[np.ndarray] = None, point_labels: Optional[np.ndarray] = None,
                box: Optional[np.ndarray] = None, mask_input: Optional[np.ndarray] = None,
                multimask_output: bool = True, return_logits: bool = False
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One query -> ``(masks [M, H, W], scores [M], low_res_logits [M, h, w])`` with ``M`` = 3, or 1 with
        ``multimask_output=False``, as ``EfficientSamPredictor.predict``; ``mask_input`` ``(1, h, w)`` (a previous
        call's ``low_res_logits[i][None]``) for a model with mask prompts, refused as the torch predictor refuses it
        otherwise."""
        self._require_image()
        points, labels = self.check_prompts(*single_query_arrays(point_coords, point_labels, box))
        mask_input = check_mask_input_array(mask_input, 1, self.mask_input_size, bool(self.facts["mask_prompts"]))
        low_res, scores = self.predict_low_res(points, labels, multimask_output=multimask_output, mask_input=mask_input)
        logits = self.upscale(low_res[0])
        masks = logits if return_logits else logits > self.mask_threshold
        return masks, scores[0], low_res[0]

    def check_prompts(self, point_coords, point_labels, boxes) -> Tuple[np.ndarray, np.ndarray]:
        """``utils.prompt_checks.assemble_prompt_arrays`` for the set image and the graphs' facts (point budget,
        negative clicks), as ``EfficientSamPredictor.check_prompts``."""
        self._require_image()
        return assemble_prompt_arrays(point_coords, point_labels, boxes, self.original_size,
                                      int(self.facts["decoder_max_num_input_points"]),
                                      negatives=bool(self.facts["negative_points"]))

    def predict_low_res(self, points: np.ndarray, labels: np.ndarray, *, multimask_output: bool = True,
                        mask_input: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The decoder on checked prompts ``points [Q, N, 2]``, ``labels [Q, N]`` in the set image's pixels (and
        ``mask_input [Q or 1, 1, h, w]`` from ``check_mask_input_array``): low-res logits ``[Q, M, h, w]`` and
        scores ``[Q, M]``, ``M`` = 3 or 1."""
        self._require_image()
        q = len(points)
        feeds = [self.features, points[None].astype(np.float32), labels[None].astype(np.int64),
                 np.asarray(self.original_size, np.float32)]
        if self.facts["mask_prompts"]:  # the graph's switch: zeros and has_mask_input 0 decode without a mask
            has = np.full((1, q), float(mask_input is not None), np.float32)
            masks = np.zeros((q, 1, *self.mask_input_size), np.float32) if mask_input is None else mask_input
            feeds += [np.ascontiguousarray(np.broadcast_to(masks, (q, *masks.shape[1:])))[None], has]
        multi, multi_scores, single, single_scores = self.decoder.run(None, dict(zip(self.inputs, feeds)))
        return (multi[0], multi_scores[0]) if multimask_output else (single[0], single_scores[0])

    def predict_low_res_above(self, point_coords: np.ndarray, point_labels: np.ndarray, min_iou: float
                              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Segment everything's decoder call (``AutomaticMaskGenerator(OnnxPredictor(...))``), as
        ``EfficientSamPredictor.predict_low_res_above``: scores ``[Q, 3]`` of every query, and the low-res logits
        ``[K, 3, h, w]`` of the ``K`` queries with a score above ``min_iou``, with their indices ``[K]``."""
        self._require_image()
        points, labels = self.check_prompts(point_coords, point_labels, None)
        low_res, scores = self.predict_low_res(points, labels)
        index = np.flatnonzero((scores > np.float32(min_iou)).any(1))
        return low_res[index], scores, index

    def upscale(self, low_res: np.ndarray) -> np.ndarray:
        """Low-res logits ``[..., h, w]`` -> logits at the set image's size (PyTorch's bicubic)."""
        return upscale_logits(low_res, self.original_size)
