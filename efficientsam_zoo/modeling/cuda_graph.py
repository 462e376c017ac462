"""Replay EfficientSAM's prompt side (prompt encoder + mask decoder) as CUDA graphs.

Once an image embedding exists, decoding one batch of prompts is a few hundred small kernels; on a fast
GPU their launch overhead, not their arithmetic, sets the time. :class:`CUDAGraphDecoder` captures
:meth:`EfficientSam.predict_masks` once per input signature and afterwards only copies the new inputs into
the captured buffers and replays the graph::

    model = build_efficient_sam("efficientsam-s", checkpoint=...).cuda().eval()
    decode = CUDAGraphDecoder(model)
    emb = model.get_image_embeddings(images)                       # eager (or compiled) encoder
    logits, iou = decode(emb, points, labels, True, input_h=h, input_w=w)

The signature is: shapes and dtypes of the embedding, points and labels, ``multimask_output``, the input
and output sizes, and the CUDA autocast dtype in effect (``None`` outside autocast). A new signature costs
one eager warm-up and one capture; at most ``max_graphs`` graphs are kept (least recently used dropped).
All graphs share one memory pool and one capture stream. Returned tensors are copies, so a later replay
never overwrites results already handed out. Inference only: everything runs under
``torch.inference_mode``. ``EfficientSamPredictor(model, cuda_graphs=True)`` uses this class, and
``benchmarks/throughput.py --cuda-graphs`` times it.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Optional, Tuple

import torch

from .efficient_sam import EfficientSam

__all__ = ["CUDAGraphDecoder"]


class _Captured:
    __slots__ = ("graph", "inputs", "outputs")

    def __init__(self, graph, inputs, outputs) -> None:
        self.graph, self.inputs, self.outputs = graph, inputs, outputs


class CUDAGraphDecoder:
    """``EfficientSam.predict_masks`` with the same arguments and results, replayed from CUDA graphs."""

    def __init__(self, model: EfficientSam, max_graphs: int = 16, warmup_iters: int = 2) -> None:
        device = next(model.parameters()).device
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need the model on a CUDA device, but it is on {device}; move it with "
                             "model.cuda(), or leave CUDA graphs off on this machine")
        if model.training:
            raise ValueError("CUDA graphs replay inference only; call model.eval() first")
        if max_graphs < 1 or warmup_iters < 1:
            raise ValueError(f"max_graphs and warmup_iters must be >= 1, got {max_graphs} and {warmup_iters}")
        self.model = model
        self.device = device
        self.max_graphs = max_graphs
        self.warmup_iters = warmup_iters
        self._graphs: "OrderedDict[tuple, _Captured]" = OrderedDict()
        with torch.cuda.device(device):
            self._pool = torch.cuda.graph_pool_handle()
            self._stream = torch.cuda.Stream()

    @property
    def num_graphs(self) -> int:
        return len(self._graphs)

    def reset(self) -> None:
        """Drop every captured graph (e.g. after changing the model's weights in place)."""
        self._graphs.clear()

    def __call__(self, image_embeddings: torch.Tensor, batched_points: torch.Tensor,
                 batched_point_labels: torch.Tensor, multimask_output: bool, input_h: int, input_w: int,
                 output_h: int = -1, output_w: int = -1) -> Tuple[torch.Tensor, torch.Tensor]:
        inputs = (image_embeddings, batched_points, batched_point_labels)
        for name, tensor in zip(("image_embeddings", "batched_points", "batched_point_labels"), inputs):
            if tensor.device != self.device:
                raise ValueError(f"{name} is on {tensor.device} but the model is on {self.device}; "
                                 f"move it with .to('{self.device}')")
        amp_dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
        sizes = (bool(multimask_output), int(input_h), int(input_w), int(output_h), int(output_w))
        key = tuple((tuple(t.shape), t.dtype) for t in inputs) + sizes + (amp_dtype,)
        with torch.inference_mode():
            entry = self._graphs.get(key)
            if entry is None:
                entry = self._capture(key, inputs, sizes, amp_dtype)
            else:
                self._graphs.move_to_end(key)
                for static, live in zip(entry.inputs, inputs):
                    static.copy_(live)
            entry.graph.replay()
            return entry.outputs[0].clone(), entry.outputs[1].clone()

    def _capture(self, key: tuple, inputs: Tuple[torch.Tensor, ...], sizes: tuple,
                 amp_dtype: Optional[torch.dtype]) -> _Captured:
        multimask, input_h, input_w, output_h, output_w = sizes
        static = tuple(t.clone() for t in inputs)

        def run():
            return self.model.predict_masks(*static, multimask, input_h, input_w, output_h, output_w)

        def autocast():  # the weight-cast cache must be off while capturing (its tensors would not persist)
            if amp_dtype is None:
                return contextlib.nullcontext()
            return torch.autocast("cuda", dtype=amp_dtype, cache_enabled=False)

        # Warm up on the capture stream (cuBLAS handles, workspace, lazy init), then capture on it.
        current = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(current)
        with torch.cuda.stream(self._stream), autocast():
            for _ in range(self.warmup_iters):
                run()  # also raises the model's own input errors, before anything is captured
        current.wait_stream(self._stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool, stream=self._stream), autocast():
            outputs = run()
        if len(self._graphs) >= self.max_graphs:
            self._graphs.popitem(last=False)
        entry = _Captured(graph, static, outputs)
        self._graphs[key] = entry
        return entry
