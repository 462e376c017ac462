"""``eval-points`` and ``eval-instances``: the paper's zero-shot protocols (Tables 4 and 5)."""
from __future__ import annotations

import argparse
import os

from ..evaluation.common import predictor_segment_fn
from ..data.instances import open_source
from ..evaluation.instance_eval import evaluate_instances
from ..evaluation.interactive import evaluate_clicks
from ..evaluation.point_eval import PROMPT_TYPES, evaluate_points
from ..modeling.prompt_encoder import NO_NEGATIVES
from ..predictor import EfficientSamPredictor
from ..utils.io import write_json
from .common import load_model_from_args, points_cap, require_inputs, weights_args, write_tables

__all__ = ["add_parsers", "cmd_eval_points", "cmd_eval_instances"]


def cmd_eval_points(args: argparse.Namespace) -> int:
    if args.iterative > points_cap():
        raise ValueError(f"--iterative {args.iterative}: the iterative protocol gives one point per click, and the "
                         f"model takes at most {points_cap()} points; use --iterative {points_cap()} or fewer")
    require_inputs(ann_file=args.ann_file, img_dir=args.img_dir)
    model = load_model_from_args(args.model, args.checkpoint, args.device)
    if (args.iterative > 1 or args.noc) and not model.negative_points:  # before any image is scored
        option = "--noc" if args.noc else "--iterative"
        raise ValueError(f"{option} places negative clicks: {NO_NEGATIVES}")
    source = open_source(args.img_dir, annotations=args.ann_file)
    out = evaluate_points(predictor_segment_fn(EfficientSamPredictor(model)), source,
                          prompt_types=args.prompts, num_instances=args.num_instances, seed=args.seed,
                          iterative_clicks=args.iterative)
    if args.noc:
        out["clicks"] = evaluate_clicks(EfficientSamPredictor(model), source, max_clicks=args.noc,
                                        num_instances=args.num_instances)
    out["config"] = {k: v for k, v in vars(args).items() if k != "func"}
    write_json(out, args.out, indent=1)
    rows = [dict(prompt=p, n=v["n"], all=v["all"], small=v.get("small", float("nan")),
                 medium=v.get("medium", float("nan")), large=v.get("large", float("nan")))
            for p, v in out["summary"].items()]
    write_tables(rows, ["prompt", "n", "all", "small", "medium", "large"], os.path.splitext(args.out)[0])
    for r in rows:
        print(f"{r['prompt']:>10}: mIoU {r['all']:.2f} over {r['n']} instances "
              f"(S {r['small']:.2f} / M {r['medium']:.2f} / L {r['large']:.2f})")
    return 0


def cmd_eval_instances(args: argparse.Namespace) -> int:
    require_inputs(ann_file=args.ann_file, img_dir=args.img_dir, detections=args.detections)
    model = load_model_from_args(args.model, args.checkpoint, args.device)
    out = evaluate_instances(predictor_segment_fn(EfficientSamPredictor(model)), args.ann_file, args.img_dir,
                             args.detections, out_file=args.out, rule=args.rule, score_thr=args.score_thr)
    stem = os.path.splitext(args.out)[0]
    write_json(out, stem + ".metrics.json", indent=1)
    write_tables([dict(out["metrics"], n=out["num_results"])], ["n", "AP", "AP50", "AP75", "APs", "APm", "APl"],
                 stem + ".metrics")
    m = out["metrics"]
    print(f"mask AP {m['AP']:.2f}  AP_S {m['APs']:.2f}  AP_M {m['APm']:.2f}  AP_L {m['APl']:.2f} "
          f"({out['num_results']} masks -> {args.out})")
    return 0


def add_parsers(sub) -> None:
    ep = sub.add_parser("eval-points", help="zero-shot single-point valid-mask mIoU (box / 1 / 3 points)")
    ep.add_argument("--ann-file", required=True, help="COCO or LVIS instances JSON")
    ep.add_argument("--img-dir", required=True)
    ep.add_argument("--out", required=True, help="results JSON (a .md and .csv table are written beside it)")
    ep.add_argument("--prompts", nargs="+", default=list(PROMPT_TYPES), choices=list(PROMPT_TYPES))
    ep.add_argument("--iterative", type=int, default=0, help="also SAM's iterative protocol with this many clicks")
    ep.add_argument("--noc", type=int, default=0, metavar="MAX_CLICKS",
                    help="also mIoU after 1..5 clicks and NoC@85 / NoC@90 with at most this many clicks (RITM's "
                         "protocol, e.g. 20; needs a model with negative clicks)")
    ep.add_argument("--num-instances", type=int)
    ep.add_argument("--seed", type=int, default=0)
    weights_args(ep)
    ep.set_defaults(func=cmd_eval_points)

    ei = sub.add_parser("eval-instances", help="zero-shot instance segmentation AP from a detector's boxes")
    ei.add_argument("--ann-file", required=True, help="COCO or LVIS instances JSON")
    ei.add_argument("--img-dir", required=True)
    ei.add_argument("--detections", required=True, help="COCO results JSON of boxes")
    ei.add_argument("--out", required=True, help="COCO results JSON with RLE masks")
    ei.add_argument("--rule", default="box_iou", choices=["box_iou", "score"],
                    help="which of the 3 masks to keep per box (default: highest IoU with the box, as the paper)")
    ei.add_argument("--score-thr", type=float, default=0.0)
    weights_args(ei)
    ei.set_defaults(func=cmd_eval_instances)
