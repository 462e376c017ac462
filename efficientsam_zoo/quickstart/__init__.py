"""``efficientsam-zoo quickstart``: an offline end-to-end run on generated scenes that shows every stage learns.

1. SAMI-pretrain a 6-block ViT-Ti student (tiny random SAM teacher) on 128-px scenes; export the backbone.
2. Finetune EfficientSAM from that export on SA-1B-layout shards of generated scenes; measure box and 1-point mIoU
   on held-out scenes before and after, with pictures of both.
3. Finetune ViTDet Mask R-CNN (MMDetection) from the same export; COCO AP on held-out and training scenes.
4. Run the zero-shot protocols (box / point mIoU, instance AP from boxes) with the finetuned model.
5. Train a tiny EfficientTAM from that EfficientSAM on generated moving-shapes videos; J&F before and after on
   held-out videos drawn as the training videos are and on held-out videos where an object is hidden and seen again,
   each beside the same model without memory.

Writes ``report.md`` (tables, before / after pictures, a tracked video before / after, learning curves),
``summary.json`` and per-stage logs. With ``checkpoint`` (official weights) it segments the held-out scenes with those
weights instead, without training.
"""
from __future__ import annotations

import os
import time
from typing import Dict, Optional

from ..build import efficient_sam_from_checkpoint
from ..checkpoints import guess_efficientsam_variant
from . import report, stages, track
from .console import Stage, quiet_known_warnings

__all__ = ["run_quickstart"]


def run_quickstart(out_dir: str, checkpoint: Optional[str] = None, device: str = "cpu", seed: int = 0,
                   verbose: bool = False) -> Dict:
    """Run every stage; returns the summary (also written to ``out_dir/summary.json``) with ``report`` and ``logs``
    paths."""
    import torch

    quiet_known_warnings()
    start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    logs = os.path.join(out_dir, "logs")
    torch.manual_seed(seed)
    with Stage("scenes", os.path.join(logs, "scenes.log"), stages.DATA_IMAGES, verbose, unit="img") as bar:
        data = stages.make_data(os.path.join(out_dir, "data"), seed, bar)
    if checkpoint is not None:
        summary = _real_weights(checkpoint, data, out_dir, logs, device, verbose)
    else:
        summary = _train_everything(data, out_dir, logs, verbose, seed)
    summary["seconds"] = round(time.time() - start, 1)
    summary["logs"] = logs
    summary["report"] = report.write(out_dir, summary, data)
    return summary


def _train_everything(data: Dict, out_dir: str, logs: str, verbose: bool, seed: int) -> Dict:
    with Stage("SAMI pretraining", os.path.join(logs, "sami.log"), stages.iterations("sami"), verbose) as bar:
        sami = stages.sami_stage(data, out_dir, bar)
    with Stage("EfficientSAM finetuning", os.path.join(logs, "efficientsam.log"), stages.iterations("segment"),
               verbose) as bar:
        segment = stages.segment_stage(data, sami["export"], out_dir, bar)
    with Stage("ViTDet (MMDetection)", os.path.join(logs, "vitdet.log"), stages.iterations("vitdet"), verbose) as bar:
        vitdet = stages.vitdet_stage(data, sami["export"], out_dir, bar)
    with Stage("zero-shot evaluation", os.path.join(logs, "zero_shot.log"), 2, verbose, unit="protocol") as bar:
        zero_shot = stages.zero_shot_stage(segment.pop("model"), data, out_dir, bar)
    data["videos"] = track.make_videos(os.path.join(out_dir, "data", "videos"), seed)
    with Stage("EfficientTAM tracking", os.path.join(logs, "efficienttam.log"), stages.iterations("track"),
               verbose) as bar:
        tracking = track.track_stage(data["videos"], segment["model_dir"], out_dir, bar)
    return dict(mode="trained", sami=sami, segment=segment, vitdet=vitdet, zero_shot=zero_shot, track=tracking)


def _real_weights(checkpoint: str, data: Dict[str, str], out_dir: str, logs: str, device: str, verbose: bool) -> Dict:
    """Released weights: real segmentations of the held-out scenes (no training), and the zero-shot protocols."""
    with Stage("segment (released weights)", os.path.join(logs, "segment.log"), 2, verbose, unit="step") as bar:
        sam = efficient_sam_from_checkpoint(checkpoint).to(device)
        name = guess_efficientsam_variant(sam.state_dict())
        pictures = stages.overlay_predictions(sam, data, out_dir, "released")
        bar.update(1)
        metrics = stages.segment_eval(sam, data, num_instances=12)  # a few scenes: 1024-px encoder passes are slow
        bar.update(1)
    with Stage("zero-shot evaluation", os.path.join(logs, "zero_shot.log"), 2, verbose, unit="protocol") as bar:
        zero_shot = stages.zero_shot_stage(sam, data, out_dir, bar, max_images=4)
    segment = dict(box_miou_before=None, point_miou_before=None, box_miou_after=metrics["box"],
                   point_miou_after=metrics["1pt"], pictures_after=pictures, weights=checkpoint, variant=name)
    return dict(mode="released weights", segment=segment, vitdet=None, sami=None, zero_shot=zero_shot)
