"""``efficientsam-zoo`` command line.

    efficientsam-zoo segment IMAGE (--point X Y [--label L] ... | --box X0 Y0 X1 Y1)
                     (--checkpoint PATH | --model NAME) [--out mask.png] [--overlay overlay.png]
    efficientsam-zoo quickstart [--out-dir DIR]
    efficientsam-zoo pretrain CONFIG [tools.train options]      (SAMI pretraining with mmengine's Runner)
    efficientsam-zoo train CONFIG [tools.train options]         (any mm_configs/ config)
    efficientsam-zoo export-backbone CKPT --out FILE [--hf-out DIR]
    efficientsam-zoo export-onnx (--model NAME | --checkpoint PATH) --out-dir DIR [--opset 18]
    efficientsam-zoo finetune-cls --recipe hf/recipes/vit-s_in1k.yaml --model DIR --train-dir ... (HF Trainer)
    efficientsam-zoo eval-points --ann-file ANN.json --img-dir DIR (--model NAME | --checkpoint PATH) --out R.json
    efficientsam-zoo eval-instances --ann-file ANN.json --img-dir DIR --detections DETS.json ... --out R.json
    efficientsam-zoo segment-everything IMAGE (--model NAME | --checkpoint PATH) --out masks.json [--overlay P]
                     [--cuda-graphs]
    efficientsam-zoo segment-salient IMAGE (--saliency-map MAP.png | --saliency-model ID) (--model | --checkpoint)

The segmenting and evaluation commands live in :mod:`efficientsam_zoo.cli_segment`.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

__all__ = ["main", "build_parser"]


def _device(name: Optional[str]) -> str:
    import torch

    if name:
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model_from_args(model: Optional[str], checkpoint: Optional[str], device: Optional[str] = None):
    """``--model`` / ``--checkpoint`` -> an EfficientSAM model in eval mode on ``device``.

    With only ``--checkpoint`` the variant is read off the checkpoint; with only ``--model`` the
    released weights are fetched from the Hub (or its local cache).
    """
    from .build import build_efficient_sam
    from .checkpoints import CheckpointError, guess_efficientsam_variant, read_official_state_dict
    from .hub import fetch_official_checkpoint
    from .registry import EFFICIENT_SAM_NAMES

    if checkpoint is None and model is None:
        raise SystemExit("error: give --checkpoint PATH or --model NAME")
    if checkpoint is None:
        checkpoint = fetch_official_checkpoint(model)
    if model is None:
        model = guess_efficientsam_variant(read_official_state_dict(checkpoint))
        if model is None:
            raise CheckpointError(f"cannot tell the variant of {checkpoint!r}; pass --model "
                                  f"{'|'.join(EFFICIENT_SAM_NAMES)}")
    return build_efficient_sam(model, checkpoint=checkpoint).to(_device(device))


def _require_inputs(**paths: str) -> None:
    """Input files / folders checked before the model loads (not after minutes of work)."""
    import os

    for what, path in paths.items():
        is_dir = what.endswith("_dir")
        if not (os.path.isdir(path) if is_dir else os.path.isfile(path)):
            raise FileNotFoundError(f"--{what.replace('_', '-')} {path!r} does not exist"
                                    + (" (a folder)" if is_dir else ""))


def points_cap() -> int:
    """Prompt points per query that every EfficientSAM variant takes (the decoder's fixed input size)."""
    from .registry import EFFICIENT_SAM_NAMES, get_spec

    return min(get_spec(n).decoder_max_num_input_points for n in EFFICIENT_SAM_NAMES)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from .quickstart import run_quickstart
    from .quickstart.report import console_table

    summary = run_quickstart(args.out_dir, checkpoint=args.checkpoint, device=_device(args.device), seed=args.seed,
                             verbose=args.verbose)
    print(console_table(summary))
    print(f"framework logs -> {summary['logs']}/")
    print(f"report -> {summary['report']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .tools.train import main as train_main

    return train_main([args.config] + args.rest)


def cmd_finetune_cls(args: argparse.Namespace) -> int:
    from .tools.train_cls import main as cls_main

    return cls_main(args.rest)


def cmd_export_backbone(args: argparse.Namespace) -> int:
    from .tools.export_backbone import main as export_main

    return export_main([args.checkpoint] + args.rest)


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from .export_onnx import export_and_verify

    model = load_model_from_args(args.model, args.checkpoint, "cpu")
    diffs = export_and_verify(model, args.out_dir, opset=args.opset)
    print(f"wrote {args.out_dir}/encoder.onnx and decoder.onnx (opset {args.opset}); onnxruntime vs PyTorch "
          f"max |diff|: embeddings {diffs['embeddings']:.2e}, logits {diffs['logits']:.2e}, iou {diffs['iou']:.2e}")
    return 0


def _weights_args(p: argparse.ArgumentParser, device: bool = True) -> None:
    from .registry import EFFICIENT_SAM_NAMES, VARIANTS

    files = ", ".join(VARIANTS[n].weights[0].filename for n in EFFICIENT_SAM_NAMES)
    src = p.add_argument_group("weights (one of)")
    src.add_argument("--checkpoint", help=f"official checkpoint file ({files}, or the .pt.zip form)")
    src.add_argument("--model", choices=EFFICIENT_SAM_NAMES,
                     help="model name; without --checkpoint the released weights are downloaded")
    if device:
        p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")


def build_parser() -> argparse.ArgumentParser:
    from . import cli_segment as cs

    parser = argparse.ArgumentParser(prog="efficientsam-zoo", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser("segment", help="segment one object of an image from points and/or a box")
    seg.add_argument("image", help="image file (any format PIL reads)")
    seg.add_argument("--point", nargs=2, type=float, action="append", metavar=("X", "Y"),
                     help="a prompt point in pixels; repeat for more (at most 6, a box counts as 2)")
    seg.add_argument("--label", type=int, action="append", choices=[0, 1],
                     help="label of each --point in order: 1 foreground (default), 0 no label")
    seg.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"), help="a box prompt in pixels")
    seg.add_argument("--out", default="mask.png", help="mask PNG to write (default: mask.png)")
    seg.add_argument("--overlay", help="also write the image with the mask and prompts drawn on it")
    seg.add_argument("--single-mask", action="store_true", help="use the single-mask output instead of the best of 3")
    _weights_args(seg)
    seg.set_defaults(func=cs.cmd_segment)

    sal = sub.add_parser("segment-salient", help="salient instances: clicks drawn from a saliency map (paper Fig. 6)")
    sal.add_argument("image")
    sal.add_argument("--saliency-map", help="saliency map image (gray, 0..255 or 16-bit), e.g. from U2-Net")
    sal.add_argument("--saliency-model", help="or a transformers image-segmentation model that makes one")
    sal.add_argument("--threshold", type=float, default=0.5, help="salient where the map reaches this (0..1)")
    sal.add_argument("--points", type=int, default=3, help="clicks per salient region (the paper: 3)")
    sal.add_argument("--min-area", type=int, default=64, help="ignore salient regions smaller than this (pixels)")
    sal.add_argument("--seed", type=int, default=0)
    sal.add_argument("--out", default="salient.json", help="SA-1B-style records (COCO RLE masks)")
    sal.add_argument("--overlay", help="also write the image with the masks and clicks drawn on it")
    _weights_args(sal)
    sal.set_defaults(func=cs.cmd_segment_salient)

    qs = sub.add_parser("quickstart", help="offline end-to-end run on generated scenes: every stage learns; a report")
    qs.add_argument("--out-dir", default="quickstart_out")
    qs.add_argument("--checkpoint", help="released weights (efficient_sam_vitt.pt ...): segment with them, no training")
    qs.add_argument("--seed", type=int, default=0)
    qs.add_argument("--device")
    qs.add_argument("--verbose", action="store_true", help="show the frameworks' logs on the console too")
    qs.set_defaults(func=cmd_quickstart)

    for name, text in (("pretrain", "SAMI pretraining from an mm_configs/sami_pretrain_*.py config"),
                       ("train", "train any mm_configs/ config with mmengine's Runner")):
        tr = sub.add_parser(name, help=text, add_help=False,
                            description="Options as python -m efficientsam_zoo.tools.train --help lists them.")
        tr.add_argument("config")
        tr.add_argument("rest", nargs=argparse.REMAINDER)
        tr.set_defaults(func=cmd_train)
    fc = sub.add_parser("finetune-cls", help="ImageNet-style classification finetuning with the HF Trainer",
                        add_help=False, description="Options as python -m efficientsam_zoo.tools.train_cls --help.")
    fc.add_argument("rest", nargs=argparse.REMAINDER)
    fc.set_defaults(func=cmd_finetune_cls)
    ex = sub.add_parser("export-backbone", help="SAMI training checkpoint -> plain backbone (.safetensors)",
                        add_help=False)
    ex.add_argument("checkpoint")
    ex.add_argument("rest", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_export_backbone)

    ox = sub.add_parser("export-onnx", help="write encoder.onnx + decoder.onnx and check them with onnxruntime")
    _weights_args(ox, device=False)
    ox.add_argument("--out-dir", required=True)
    ox.add_argument("--opset", type=int, default=18)
    ox.set_defaults(func=cmd_export_onnx)

    ep = sub.add_parser("eval-points", help="zero-shot single-point valid-mask mIoU (box / 1 / 3 points)")
    ep.add_argument("--ann-file", required=True, help="COCO or LVIS instances JSON")
    ep.add_argument("--img-dir", required=True)
    ep.add_argument("--out", required=True, help="results JSON (a .md and .csv table are written beside it)")
    ep.add_argument("--prompts", nargs="+", default=["box", "1pt", "3pt"], choices=["box", "1pt", "3pt"])
    ep.add_argument("--iterative", type=int, default=0, help="also SAM's iterative protocol with this many clicks")
    ep.add_argument("--num-instances", type=int)
    ep.add_argument("--seed", type=int, default=0)
    _weights_args(ep)
    ep.set_defaults(func=cs.cmd_eval_points)

    ei = sub.add_parser("eval-instances", help="zero-shot instance segmentation AP from a detector's boxes")
    ei.add_argument("--ann-file", required=True, help="COCO or LVIS instances JSON")
    ei.add_argument("--img-dir", required=True)
    ei.add_argument("--detections", required=True, help="COCO results JSON of boxes")
    ei.add_argument("--out", required=True, help="COCO results JSON with RLE masks")
    ei.add_argument("--rule", default="box_iou", choices=["box_iou", "score"],
                    help="which of the 3 masks to keep per box (default: highest IoU with the box, as the paper)")
    ei.add_argument("--score-thr", type=float, default=0.0)
    _weights_args(ei)
    ei.set_defaults(func=cs.cmd_eval_instances)

    se = sub.add_parser("segment-everything", help="automatic mask generation over a point grid")
    se.add_argument("image")
    se.add_argument("--out", required=True, help="SA-1B-style JSON records (RLE)")
    se.add_argument("--overlay", help="PNG with all masks drawn")
    se.add_argument("--points-per-side", type=int, default=32)
    se.add_argument("--points-per-batch", type=int, default=64)
    se.add_argument("--pred-iou-thresh", type=float, default=0.88)
    se.add_argument("--stability-score-thresh", type=float, default=0.95)
    se.add_argument("--box-nms-thresh", type=float, default=0.7)
    se.add_argument("--crop-n-layers", type=int, default=0)
    se.add_argument("--min-mask-region-area", type=int, default=0)
    se.add_argument("--cuda-graphs", action="store_true",
                    help="replay the prompt decoder from CUDA graphs (needs a CUDA --device)")
    _weights_args(se)
    se.set_defaults(func=cs.cmd_segment_everything)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from .checkpoints import CheckpointError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CheckpointError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
