"""``efficientsam-zoo`` command line, one module per group of commands.

    efficientsam-zoo segment IMAGE (--point X Y [--label L] ... | --box X0 Y0 X1 Y1)
                     (--checkpoint PATH | --model NAME) [--out mask.png] [--overlay overlay.png]
    efficientsam-zoo segment-everything IMAGE (--model NAME | --checkpoint PATH) --out masks.json [--overlay P]
                     [--cuda-graphs]
    efficientsam-zoo segment-salient IMAGE (--saliency-map MAP.png | --saliency-model ID) (--model | --checkpoint)
    efficientsam-zoo eval-points --ann-file ANN.json --img-dir DIR (--model NAME | --checkpoint PATH) --out R.json
    efficientsam-zoo eval-instances --ann-file ANN.json --img-dir DIR --detections DETS.json ... --out R.json
    efficientsam-zoo quickstart [--out-dir DIR]
    efficientsam-zoo pretrain CONFIG [tools.train options]      (SAMI pretraining with mmengine's Runner)
    efficientsam-zoo train CONFIG [tools.train options]         (any mm_configs/ config)
    efficientsam-zoo finetune --images DIR (--annotations FILE.json | --masks DIR) --checkpoint FILE --out-dir DIR
    efficientsam-zoo finetune-cls --recipe hf/recipes/vit-s_in1k.yaml --model DIR --train-dir ... (HF Trainer)
    efficientsam-zoo export-backbone CKPT --out FILE [--hf-out DIR]
    efficientsam-zoo export-onnx (--model NAME | --checkpoint PATH) --out-dir DIR [--opset 18]
    efficientsam-zoo export-litert (--model NAME | --checkpoint PATH) --out-dir DIR [--image-size H W]
    efficientsam-zoo export-coreml (--model NAME | --checkpoint PATH) --out-dir DIR [--image-size H W]
    efficientsam-zoo track VIDEO (--point X,Y[,L][@F] | --box X0,Y0,X1,Y1[@F] | --mask PNG[@F]) ... [--obj ID]
                     [--model efficienttam-ti] [--checkpoint FILE] --out-dir DIR        (EfficientTAM)
    efficientsam-zoo eval-video --davis-root DIR (--predictions DIR | --checkpoint FILE [--model NAME]) --out F.json
    efficientsam-zoo demo [--model NAME] [--checkpoint FILE | --run DIR] [--port P] [--host 127.0.0.1] [--share]

=============  =============================================================================================
``common``     ``--model`` / ``--checkpoint`` and the model they name, input checks, the device, result tables
``segment``    ``segment``, ``segment-everything``, ``segment-salient``
``evaluate``   ``eval-points``, ``eval-instances``
``train``      ``quickstart``, ``pretrain``, ``train``, ``finetune``, ``finetune-cls``, ``export-backbone``
``export``     ``export-onnx``, ``export-litert``, ``export-coreml``
``track``      ``track`` (EfficientTAM video tracking)
``eval_video`` ``eval-video`` (J&F on DAVIS-format data)
``demo``       ``demo`` (the Gradio page)
=============  =============================================================================================
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..checkpoints import CheckpointError
from . import demo, eval_video, evaluate, export, segment, track, train
from .common import load_model_from_args, points_cap

__all__ = ["main", "build_parser", "load_model_from_args", "points_cap"]

GROUPS = (segment, evaluate, eval_video, train, export, track, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="efficientsam-zoo", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in train.TOOL_COMMANDS:  # every option is the tool's (argparse's REMAINDER can't start at one)
        args = argparse.Namespace(command=argv[0], func=train.TOOL_COMMANDS[argv[0]], rest=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CheckpointError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
