"""``segment``, ``segment-everything`` and ``segment-salient``: masks of one image."""
from __future__ import annotations

import argparse

import numpy as np

from .. import automatic_mask_generator as amg
from ..predictor import EfficientSamPredictor
from ..prompts import NO_NEGATIVES, assemble_prompts
from ..salient import segment_salient
from ..utils.image import image_to_tensor, load_image_rgb
from ..utils.io import save_png, write_json
from ..utils.masks import decode_rle
from ..visualize import overlay_masks
from .common import load_model_from_args, points_cap, weights_args

__all__ = ["add_parsers", "cmd_segment", "cmd_segment_everything", "cmd_segment_salient"]


def cmd_segment(args: argparse.Namespace) -> int:
    points = np.asarray(args.point, dtype=np.float32) if args.point else None
    labels = None
    if points is not None:
        if args.label and len(args.label) != len(points):
            raise SystemExit(f"error: {len(points)} --point but {len(args.label)} --label; give one label per point "
                             "or none (all 1)")
        labels = np.asarray(args.label if args.label else [1] * len(points), dtype=np.int64)
    elif args.label:
        raise SystemExit("error: --label needs --point")
    box = np.asarray(args.box, dtype=np.float32) if args.box else None
    if points is None and box is None:
        raise SystemExit("error: give at least one --point X Y or a --box X0 Y0 X1 Y1")

    image = load_image_rgb(args.image)
    # the prompts' one check, before the (slow) model load: NaN, outside the image, reversed box ...; whether the
    # model takes negative clicks is known once it is loaded
    prompt_points, prompt_labels = assemble_prompts(
        None if points is None else points[None], None if labels is None else labels[None],
        None if box is None else box[None], image.shape[:2], max_points=points_cap(), negatives=True)
    model = load_model_from_args(args.model, args.checkpoint, args.device)
    if bool((prompt_labels == 0).any()) and not model.negative_points:
        raise ValueError(NO_NEGATIVES)
    predictor = EfficientSamPredictor(model)
    predictor.set_image(image)
    low_res, scores = predictor.decode(prompt_points, prompt_labels, multimask_output=not args.single_mask)
    scores = scores[0].float().cpu().numpy()
    best = int(np.argmax(scores))
    mask = (predictor.upscale(low_res[:, best:best + 1]) > model.mask_threshold)[0, 0].cpu().numpy()
    save_png(mask.astype(np.uint8) * 255, args.out)
    print(f"mask {best} of {len(scores)} (predicted IoU {scores[best]:.3f}, {int(mask.sum())} px) -> {args.out}")
    if args.overlay:
        save_png(overlay_masks(image, [mask], points=points, labels=labels, boxes=box), args.overlay)
        print(f"overlay -> {args.overlay}")
    return 0


def cmd_segment_everything(args: argparse.Namespace) -> int:
    image = load_image_rgb(args.image)
    model = load_model_from_args(args.model, args.checkpoint, args.device)
    generator = amg.AutomaticMaskGenerator(
        model, points_per_side=args.points_per_side, points_per_batch=args.points_per_batch,
        pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh,
        box_nms_thresh=args.box_nms_thresh, crop_n_layers=args.crop_n_layers,
        min_mask_region_area=args.min_mask_region_area, cuda_graphs=args.cuda_graphs)
    records = generator.generate(image)
    write_json(records, args.out, indent=1)
    print(f"{len(records)} masks -> {args.out}")
    if args.overlay:
        order = sorted(records, key=lambda r: -r["area"])
        save_png(overlay_masks(image, [decode_rle(r["segmentation"]) for r in order]), args.overlay)
        print(f"overlay -> {args.overlay}")
    return 0


def cmd_segment_salient(args: argparse.Namespace) -> int:
    if (args.saliency_map is None) == (args.saliency_model is None):
        raise SystemExit("error: give one of --saliency-map MAP.png or --saliency-model HUB_ID")
    image = load_image_rgb(args.image)
    if args.saliency_map:
        saliency = image_to_tensor(load_image_rgb(args.saliency_map))[0].numpy()  # 0..1, 8 or 16 bits
    else:
        from ..integrations.hf.saliency import saliency_from_model  # transformers only for this option

        saliency = saliency_from_model(image, args.saliency_model)
    model = load_model_from_args(args.model, args.checkpoint, args.device)
    records = segment_salient(EfficientSamPredictor(model), image, saliency, threshold=args.threshold,
                              num_points=args.points, seed=args.seed, min_area=args.min_area)
    write_json(records, args.out, indent=1)
    print(f"{len(records)} salient instances -> {args.out}")
    if args.overlay:
        points = [p for r in records for p in r["point_coords"]]
        save_png(overlay_masks(image, [decode_rle(r["segmentation"]) for r in records], points=points),
                 args.overlay)
        print(f"overlay -> {args.overlay}")
    return 0


def _segment_parser(sub) -> None:
    seg = sub.add_parser("segment", help="segment one object of an image from points and/or a box")
    seg.add_argument("image", help="image file (any format PIL reads)")
    seg.add_argument("--point", nargs=2, type=float, action="append", metavar=("X", "Y"),
                     help=f"a prompt point in pixels; repeat for more (at most {points_cap()}, a box counts as 2)")
    seg.add_argument("--label", type=int, action="append", choices=[0, 1],
                     help="label of each --point in order: 1 foreground (default), 0 a negative click (models "
                          "finetuned with negative clicks)")
    seg.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"), help="a box prompt in pixels")
    seg.add_argument("--out", default="mask.png", help="mask PNG to write (default: mask.png)")
    seg.add_argument("--overlay", help="also write the image with the mask and prompts drawn on it")
    seg.add_argument("--single-mask", action="store_true", help="use the single-mask output instead of the best of 3")
    weights_args(seg)
    seg.set_defaults(func=cmd_segment)


def _everything_parser(sub) -> None:
    se = sub.add_parser("segment-everything", help="automatic mask generation over a point grid")
    se.add_argument("image")
    se.add_argument("--out", required=True, help="SA-1B-style JSON records (RLE)")
    se.add_argument("--overlay", help="PNG with all masks drawn")
    se.add_argument("--points-per-side", type=int, default=32)
    se.add_argument("--points-per-batch", type=int, default=64)
    se.add_argument("--pred-iou-thresh", type=float, default=amg.PRED_IOU_THRESH)
    se.add_argument("--stability-score-thresh", type=float, default=amg.STABILITY_SCORE_THRESH)
    se.add_argument("--box-nms-thresh", type=float, default=amg.BOX_NMS_THRESH)
    se.add_argument("--crop-n-layers", type=int, default=0)
    se.add_argument("--min-mask-region-area", type=int, default=0)
    se.add_argument("--cuda-graphs", action="store_true",
                    help="replay the prompt decoder from CUDA graphs (needs a CUDA --device)")
    weights_args(se)
    se.set_defaults(func=cmd_segment_everything)


def _salient_parser(sub) -> None:
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
    weights_args(sal)
    sal.set_defaults(func=cmd_segment_salient)


def add_parsers(sub) -> None:
    for add in (_segment_parser, _salient_parser, _everything_parser):
        add(sub)


