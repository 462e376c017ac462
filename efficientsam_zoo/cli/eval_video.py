"""``efficientsam-zoo eval-video``: J&F of video object segmentation on a DAVIS-format dataset.

    efficientsam-zoo eval-video --davis-root DIR (--predictions DIR | --checkpoint FILE|DIR [--model NAME])
                                [--setting semi-supervised|interactive] [--videos LIST.txt] --out FILE.json

``--predictions``: palette PNGs laid out like ``Annotations/`` (``DIR/<video>/<frame>.png``) are scored. With a
checkpoint the EfficientTAM runs first, through SAM 2's video-predictor API: each object is prompted on the first
annotated frame it appears in -- by its ground-truth mask (``semi-supervised``, DAVIS's protocol) or by one click at
its interior point farthest from its boundary (``interactive``) -- and tracked forward. Overlaps are settled as SAM 2's
``vos_inference`` settles them for one palette PNG per frame: the predictor's ``non_overlap_masks`` (each pixel to the
object with the highest logit), ties to the lower object id. Each object is scored from the frame after the one it is
prompted on (its first annotated appearance). Scores are ``evaluation.video``'s (DAVIS's J and F); ``FILE.json`` holds
``J&F``, ``J``, ``F``, per-video means and a row per video and object.
"""
from __future__ import annotations

import argparse
import os
from typing import Dict, List

import numpy as np
from tqdm.auto import tqdm

from ..data.video import DavisVideos, read_palette_png
from ..evaluation.interactive import next_click
from ..evaluation.video import first_appearances, score_video, summarize
from ..registry import EFFICIENT_TAM_NAMES
from ..utils.io import write_json
from ..utils.masks import instance_ids

__all__ = ["SETTINGS", "first_prompts", "track_video", "evaluate_model", "score_predictions", "add_parsers"]

SETTINGS = ("semi-supervised", "interactive")


def first_prompts(gt: np.ndarray, frames: List[int], setting: str) -> Dict[int, Dict]:
    """``{object id: {"frame", "mask"} or {"frame", "point"}}``: each object of ``gt`` (id maps ``[N, H, W]`` of the
    annotated ``frames``) on the first annotated frame it is in -- its mask, or its interior point farthest from its
    boundary."""
    prompts: Dict[int, Dict] = {}
    for obj, n in first_appearances(gt).items():
        mask = gt[n] == obj
        if setting == "semi-supervised":
            prompts[obj] = {"frame": frames[n], "mask": mask}
        else:
            x, y, _ = next_click(np.zeros_like(mask), mask)
            prompts[obj] = {"frame": frames[n], "point": (x, y)}
    return prompts


def _prompt(predictor, state, frame: int, obj: int, prompt: Dict) -> None:
    if "mask" in prompt:
        predictor.add_new_mask(state, frame, obj, prompt["mask"])
    else:
        predictor.add_new_points_or_box(state, frame, obj, points=[prompt["point"]], labels=[1])


def track_video(predictor, frames: List[np.ndarray], prompts: Dict[int, Dict], memory: bool = True) -> np.ndarray:
    """Instance-id maps ``[T, H, W]`` of one video. ``memory=False``: the same model on each frame alone, prompted
    there as on its prompt frame (no memory of the frames before) -- the baseline that shows what memory adds."""
    ids = np.zeros((len(frames), *frames[0].shape[:2]), np.uint16)
    if memory:
        state = predictor.init_state(frames)
        for obj, p in sorted(prompts.items()):
            _prompt(predictor, state, p["frame"], obj, p)
        for t, obj_ids, logits in predictor.propagate_in_video(state):
            ids[t] = instance_ids(obj_ids, (logits[:, 0] > 0).cpu().numpy())
        return ids
    for t, frame in enumerate(frames):
        state = predictor.init_state([frame])
        live = {obj: p for obj, p in prompts.items() if p["frame"] <= t}
        if not live:
            continue
        for obj, p in sorted(live.items()):
            _prompt(predictor, state, 0, obj, p)
        (_, obj_ids, logits), = predictor.propagate_in_video(state)
        ids[t] = instance_ids(obj_ids, (logits[:, 0] > 0).cpu().numpy())
    return ids


def _gt(source: DavisVideos, i: int) -> np.ndarray:
    return np.stack([source.id_map(i, t) for t in source.annotated(i)])


def evaluate_model(predictor, source: DavisVideos, setting: str = "semi-supervised", memory: bool = True,
                   progress: bool = True, keep: bool = False) -> Dict:
    """Run the predictor on every video of ``source`` and score it (``evaluation.video.summarize``); ``keep``: also
    the predicted id maps of the annotated frames, ``"predictions": {video: [N, H, W]}``. Build the predictor with
    ``non_overlap_masks=True`` to score as SAM 2's ``vos_inference`` does (the module's docstring)."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    rows, kept = {}, {}
    for i in tqdm(range(len(source)), desc="videos", disable=not progress):
        annotated, gt = source.annotated(i), _gt(source, i)  # the annotations are read once
        frames = [source.frame(i, t) for t in range(annotated[-1] + 1)]
        pred = track_video(predictor, frames, first_prompts(gt, annotated, setting), memory)[annotated]
        rows[source.names[i]] = score_video(pred, gt, first_appearances(gt))
        kept[source.names[i]] = pred
    return dict(summarize(rows), predictions=kept) if keep else summarize(rows)


def score_predictions(source: DavisVideos, predictions: str) -> Dict:
    """Score palette PNGs ``predictions/<video>/<frame>.png`` against the annotations (same names and sizes)."""
    rows = {}
    for i, name in enumerate(source.names):
        pred = []
        for t in source.annotated(i):
            stem = os.path.splitext(os.path.basename(source.annotation_path(i, t)))[0]
            path = os.path.join(predictions, name, stem + ".png")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"no prediction {path}: predictions are laid out like Annotations/ "
                                        "(<video>/<frame>.png palette PNGs)")
            pred.append(read_palette_png(path))
        gt = _gt(source, i)
        rows[name] = score_video(np.stack(pred), gt, first_appearances(gt))
    return summarize(rows)


def cmd_eval_video(args: argparse.Namespace) -> int:
    source = DavisVideos(args.davis_root, videos=args.videos)
    if args.predictions:
        result = score_predictions(source, args.predictions)
    else:
        from ..integrations.hf.efficienttam_predictor import EfficientTamVideoPredictor
        from .track import load_video_model

        predictor = EfficientTamVideoPredictor(load_video_model(args.checkpoint, args.model, args.device),
                                               non_overlap_masks=True)
        result = evaluate_model(predictor, source, args.setting)
    result["setting"] = "predictions" if args.predictions else args.setting
    write_json(result, args.out, indent=1)
    print(f"J&F {result['J&F']:.3f}  J {result['J']:.3f}  F {result['F']:.3f}  ({len(result['rows'])} objects in "
          f"{len(result['videos'])} videos) -> {args.out}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("eval-video", help="J&F on a DAVIS-format dataset (EfficientTAM, or your predictions)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--davis-root", required=True, help="JPEGImages/<video>/*.jpg and Annotations/<video>/*.png")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--predictions", help="palette PNGs laid out like Annotations/ to score")
    what.add_argument("--checkpoint", help="an EfficientTAM release file or save_pretrained directory to run")
    p.add_argument("--model", default=EFFICIENT_TAM_NAMES[0], choices=EFFICIENT_TAM_NAMES)
    p.add_argument("--setting", default="semi-supervised", choices=SETTINGS)
    p.add_argument("--videos", help="a text file of video names (DAVIS's ImageSets/2017/val.txt)")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    p.add_argument("--out", required=True, help="the JSON file to write")
    p.set_defaults(func=cmd_eval_video)
