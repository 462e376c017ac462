"""``export-onnx``: the encoder and decoder graphs, checked against PyTorch with onnxruntime; ``--quantize int8
[--calibration DIR]`` writes their int8 versions under the same names (``onnx_quantize``); ``--bundle TOOL`` the
files a labelling tool loads (``export_bundles``)."""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile

from ..export_bundles import BUNDLES, export_bundle
from ..export_onnx import export_and_verify
from ..onnx_quantize import calibration_images, quantize_int8
from .common import load_model_from_args, weights_args

__all__ = ["add_parsers", "cmd_export_onnx"]


def cmd_export_onnx(args: argparse.Namespace) -> int:
    if args.bundle:
        if args.quantize:
            raise SystemExit("error: --bundle writes fp32 graphs; quantize them separately (--quantize int8 without "
                             "--bundle)")
        if args.calibration:
            raise SystemExit("error: --calibration goes with --quantize int8, not with --bundle")
        paths = export_bundle(load_model_from_args(args.model, args.checkpoint, "cpu"), args.out_dir, args.bundle,
                              opset=args.opset)
        print(f"wrote the {args.bundle} bundle: {', '.join(sorted(paths.values()))}")
        return 0
    if args.calibration and not args.quantize:
        raise SystemExit("error: --calibration goes with --quantize int8 (static quantization of the encoder)")
    calibration = calibration_images(args.calibration) if args.calibration else None  # checked before the export
    model = load_model_from_args(args.model, args.checkpoint, "cpu")
    fp32_dir = tempfile.mkdtemp(prefix=".fp32-", dir=args.out_dir if os.path.isdir(args.out_dir) else None) \
        if args.quantize else args.out_dir
    try:
        diffs = export_and_verify(model, fp32_dir, opset=args.opset)
        print(f"fp32 graphs (opset {args.opset}); onnxruntime vs PyTorch max |diff|: "
              + ", ".join(f"{name} {value:.2e}" for name, value in diffs.items()))
        if args.quantize:
            quantize_int8(fp32_dir, args.out_dir, calibration)
            kind = f"static encoder ({len(calibration)} calibration images)" if calibration else "dynamic"
            print(f"int8 ({kind}) written")
    finally:
        if args.quantize:
            shutil.rmtree(fp32_dir, ignore_errors=True)
    print(f"wrote {args.out_dir}/encoder.onnx and decoder.onnx")
    return 0


def add_parsers(sub) -> None:
    ox = sub.add_parser("export-onnx", help="write encoder.onnx + decoder.onnx and check them with onnxruntime")
    weights_args(ox, with_device=False)
    ox.add_argument("--out-dir", required=True)
    ox.add_argument("--opset", type=int, default=18)
    ox.add_argument("--quantize", choices=("int8",), help="write int8 graphs (same file names) instead of fp32")
    ox.add_argument("--calibration", metavar="DIR", help="images for static int8 quantization of the encoder "
                                                         "(without: dynamic); with --quantize int8")
    ox.add_argument("--bundle", choices=BUNDLES, help="write the files a labelling tool's own loader reads instead: "
                                                      "samexporter (and osam / labelme) or X-AnyLabeling (+ its YAML)")
    ox.set_defaults(func=cmd_export_onnx)
