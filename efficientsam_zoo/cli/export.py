"""``export-onnx``: the encoder and decoder graphs, checked against PyTorch with onnxruntime."""
from __future__ import annotations

import argparse

from ..export_onnx import export_and_verify
from .common import load_model_from_args, weights_args

__all__ = ["add_parsers", "cmd_export_onnx"]


def cmd_export_onnx(args: argparse.Namespace) -> int:
    model = load_model_from_args(args.model, args.checkpoint, "cpu")
    diffs = export_and_verify(model, args.out_dir, opset=args.opset)
    print(f"wrote {args.out_dir}/encoder.onnx and decoder.onnx (opset {args.opset}); onnxruntime vs PyTorch "
          f"max |diff|: embeddings {diffs['embeddings']:.2e}, logits {diffs['logits']:.2e}, iou {diffs['iou']:.2e}")
    return 0


def add_parsers(sub) -> None:
    ox = sub.add_parser("export-onnx", help="write encoder.onnx + decoder.onnx and check them with onnxruntime")
    weights_args(ox, with_device=False)
    ox.add_argument("--out-dir", required=True)
    ox.add_argument("--opset", type=int, default=18)
    ox.set_defaults(func=cmd_export_onnx)
