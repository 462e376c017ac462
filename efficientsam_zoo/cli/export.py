"""``export-onnx``: the encoder and decoder graphs, checked against PyTorch with onnxruntime; ``--quantize int8
[--calibration DIR]`` writes their int8 versions under the same names (``onnx_quantize``); ``--bundle TOOL`` the
files a labelling tool loads (``export_bundles``). ``export-litert``: the same two graphs as ``.tflite`` at fixed
shapes, checked against PyTorch with the LiteRT interpreter (``export_litert``); ``export-coreml``: as
``.mlpackage`` (``export_coreml``; the programs CoreML receives are checked against the model, a CoreML model itself
runs only on macOS)."""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile

from ..export_bundles import BUNDLES, export_bundle
from ..export_coreml import coreml_programs, export_coreml, verify_coreml_programs
from ..export_litert import export_litert, verify_litert
from ..export_onnx import export_and_verify
from ..onnx_quantize import calibration_images, quantize_int8
from .common import load_model_from_args, weights_args

__all__ = ["add_parsers", "cmd_export_onnx", "cmd_export_litert", "cmd_export_coreml"]

#: The LiteRT interpreter against PyTorch, max |difference| allowed (issue #29's bar).
LITERT_TOLERANCE = 1e-3
#: PyTorch's decomposed programs (what CoreML receives) against the model: the same arithmetic regrouped.
PROGRAM_TOLERANCE = 1e-4


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


def cmd_export_litert(args: argparse.Namespace) -> int:
    model = load_model_from_args(args.model, args.checkpoint, "cpu")
    paths = export_litert(model, args.out_dir, image_size=args.image_size, queries=args.queries, points=args.points)
    diffs = verify_litert(model, paths)
    print("LiteRT interpreter vs PyTorch max |diff|: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    if not max(diffs.values()) <= LITERT_TOLERANCE:
        raise SystemExit(f"error: the .tflite graphs differ from PyTorch by more than {LITERT_TOLERANCE}: {diffs}")
    print(f"wrote {paths['encoder']}, {paths['decoder']} and {paths['facts']}")
    return 0


def cmd_export_coreml(args: argparse.Namespace) -> int:
    model = load_model_from_args(args.model, args.checkpoint, "cpu")
    programs = coreml_programs(model, image_size=args.image_size, queries=args.queries, points=args.points)
    paths = export_coreml(model, args.out_dir, programs=programs)
    diffs = verify_coreml_programs(programs)
    print("the decomposed programs CoreML received vs the model, max |diff|: "
          + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    if not max(diffs.values()) <= PROGRAM_TOLERANCE:
        raise SystemExit(f"error: the programs converted to CoreML differ from the model by more than "
                         f"{PROGRAM_TOLERANCE}: {diffs}")
    print(f"wrote {paths['encoder']} and {paths['decoder']} (ML programs, iOS 17 / macOS 14); checking their outputs "
          "needs macOS: coremltools runs no CoreML model on Linux")
    return 0


def _fixed_shape_args(parser) -> None:
    """--image-size / --queries / --points: the shapes the LiteRT and CoreML graphs are fixed to."""
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"),
                        help="the encoder's input size (default: the model's square, e.g. 1024 1024)")
    parser.add_argument("--queries", type=int, default=1, help="queries per decoder call (default 1)")
    parser.add_argument("--points", type=int, help="points per query, padded with label -1 (default: the model's "
                                                   "budget, 6)")


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
    for name, func, what in (
            ("export-litert", cmd_export_litert, "encoder.tflite + decoder.tflite (fixed shapes, for phones) and check "
                                                 "them with the LiteRT interpreter; needs the [litert] extra"),
            ("export-coreml", cmd_export_coreml, "encoder.mlpackage + decoder.mlpackage (fixed shapes, for Apple "
                                                 "devices); needs the [coreml] extra")):
        fixed = sub.add_parser(name, help="write " + what)
        weights_args(fixed, with_device=False)
        fixed.add_argument("--out-dir", required=True)
        _fixed_shape_args(fixed)
        fixed.set_defaults(func=func)
