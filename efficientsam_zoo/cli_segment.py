"""The CLI's segmenting and evaluation commands: ``segment``, ``segment-everything``, ``segment-salient``,
``eval-points``, ``eval-instances`` (the parser and the shared helpers are in :mod:`efficientsam_zoo.cli`)."""
from __future__ import annotations

import argparse

from .cli import _require_inputs, load_model_from_args, points_cap

__all__ = ["cmd_segment", "cmd_eval_points", "cmd_eval_instances", "cmd_segment_everything", "cmd_segment_salient"]


def cmd_segment(args: argparse.Namespace) -> int:
    import numpy as np

    from .predictor import EfficientSamPredictor, assemble_prompts
    from .utils.image import load_image_rgb
    from .utils.io import save_png
    from .visualize import overlay_masks

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
    # the prompts' checks before the (slow) model load: NaN, outside the image, reversed box ...
    assemble_prompts(None if points is None else points[None], None if labels is None else labels[None],
                     None if box is None else box[None], image.shape[:2], max_points=points_cap())
    model = load_model_from_args(args.model, args.checkpoint, args.device)
    predictor = EfficientSamPredictor(model)
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(points, labels, box, multimask_output=not args.single_mask)
    best = int(np.argmax(scores))
    mask = masks[best]
    save_png(mask.astype(np.uint8) * 255, args.out)
    print(f"mask {best} of {len(scores)} (predicted IoU {scores[best]:.3f}, {int(mask.sum())} px) -> {args.out}")
    if args.overlay:
        save_png(overlay_masks(image, [mask], points=points, labels=labels, boxes=box), args.overlay)
        print(f"overlay -> {args.overlay}")
    return 0


def _write_tables(rows, columns, stem: str) -> None:
    """``stem.md`` (markdown) and ``stem.csv`` with the same rows."""
    import csv

    from .utils.io import atomic_path

    with atomic_path(stem + ".md") as tmp, open(tmp, "w") as f:
        f.write("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n")
        for r in rows:
            f.write("| " + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in columns)
                    + " |\n")
    with atomic_path(stem + ".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows([{c: r[c] for c in columns} for r in rows])


def cmd_eval_points(args: argparse.Namespace) -> int:
    import os

    from .evaluation.common import predictor_segment_fn
    from .evaluation.point_eval import evaluate_points
    from .predictor import EfficientSamPredictor
    from .utils.io import write_json

    if args.iterative > points_cap():
        raise ValueError(f"--iterative {args.iterative}: the iterative protocol gives one point per click, and the "
                         f"model takes at most {points_cap()} points; use --iterative {points_cap()} or fewer")
    _require_inputs(ann_file=args.ann_file, img_dir=args.img_dir)
    model = load_model_from_args(args.model, args.checkpoint, args.device)
    out = evaluate_points(predictor_segment_fn(EfficientSamPredictor(model)), args.ann_file, args.img_dir,
                          prompt_types=args.prompts, num_instances=args.num_instances, seed=args.seed,
                          iterative_clicks=args.iterative)
    out["config"] = {k: v for k, v in vars(args).items() if k != "func"}
    write_json(out, args.out, indent=1)
    rows = [dict(prompt=p, n=v["n"], all=v["all"], small=v.get("small", float("nan")),
                 medium=v.get("medium", float("nan")), large=v.get("large", float("nan")))
            for p, v in out["summary"].items()]
    _write_tables(rows, ["prompt", "n", "all", "small", "medium", "large"], os.path.splitext(args.out)[0])
    for r in rows:
        print(f"{r['prompt']:>10}: mIoU {r['all']:.2f} over {r['n']} instances "
              f"(S {r['small']:.2f} / M {r['medium']:.2f} / L {r['large']:.2f})")
    return 0


def cmd_eval_instances(args: argparse.Namespace) -> int:
    import os

    from .evaluation.common import predictor_segment_fn
    from .evaluation.instance_eval import evaluate_instances
    from .predictor import EfficientSamPredictor
    from .utils.io import write_json

    _require_inputs(ann_file=args.ann_file, img_dir=args.img_dir, detections=args.detections)
    model = load_model_from_args(args.model, args.checkpoint, args.device)
    out = evaluate_instances(predictor_segment_fn(EfficientSamPredictor(model)), args.ann_file, args.img_dir,
                             args.detections, out_file=args.out, rule=args.rule, score_thr=args.score_thr)
    stem = os.path.splitext(args.out)[0]
    write_json(out, stem + ".metrics.json", indent=1)
    _write_tables([dict(out["metrics"], n=out["num_results"])], ["n", "AP", "AP50", "AP75", "APs", "APm", "APl"],
                  stem + ".metrics")
    m = out["metrics"]
    print(f"mask AP {m['AP']:.2f}  AP_S {m['APs']:.2f}  AP_M {m['APm']:.2f}  AP_L {m['APl']:.2f} "
          f"({out['num_results']} masks -> {args.out})")
    return 0


def cmd_segment_everything(args: argparse.Namespace) -> int:
    from .automatic_mask_generator import AutomaticMaskGenerator
    from .utils.masks import decode_rle
    from .utils.image import load_image_rgb
    from .utils.io import save_png, write_json
    from .visualize import overlay_masks

    image = load_image_rgb(args.image)
    model = load_model_from_args(args.model, args.checkpoint, args.device)
    amg = AutomaticMaskGenerator(model, points_per_side=args.points_per_side, points_per_batch=args.points_per_batch,
                                 pred_iou_thresh=args.pred_iou_thresh,
                                 stability_score_thresh=args.stability_score_thresh,
                                 box_nms_thresh=args.box_nms_thresh, crop_n_layers=args.crop_n_layers,
                                 min_mask_region_area=args.min_mask_region_area, cuda_graphs=args.cuda_graphs)
    records = amg.generate(image)
    write_json(records, args.out, indent=1)
    print(f"{len(records)} masks -> {args.out}")
    if args.overlay:
        order = sorted(records, key=lambda r: -r["area"])
        save_png(overlay_masks(image, [decode_rle(r["segmentation"]) for r in order]), args.overlay)
        print(f"overlay -> {args.overlay}")
    return 0


def cmd_segment_salient(args: argparse.Namespace) -> int:
    from .predictor import EfficientSamPredictor
    from .salient import saliency_from_model, segment_salient
    from .utils.image import image_to_tensor, load_image_rgb
    from .utils.io import save_png, write_json
    from .utils.masks import decode_rle
    from .visualize import overlay_masks

    if (args.saliency_map is None) == (args.saliency_model is None):
        raise SystemExit("error: give one of --saliency-map MAP.png or --saliency-model HUB_ID")
    image = load_image_rgb(args.image)
    if args.saliency_map:
        saliency = image_to_tensor(load_image_rgb(args.saliency_map))[0].numpy()  # 0..1, 8 or 16 bits
    else:
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
