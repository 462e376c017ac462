"""The quickstart's "track" stage: EfficientTAM (the shipped ``efficienttam_ti_tiny-moving-shapes`` config, mmengine's
Runner) trained from the EfficientSAM the stage before finetuned, on generated moving-shapes videos. DAVIS's J&F
(semi-supervised: the first frame's masks given; overlaps settled as SAM 2's ``vos_inference`` settles them) before
and after, on two held-out sets of other seeds: videos drawn as the training videos are (8 frames long, the training
videos 6), and videos where an object is hidden and seen again; each beside the same model run frame by frame without
memory (each object's first mask kept)."""
from __future__ import annotations

import os
from typing import Dict

import numpy as np

from ..cli.eval_video import evaluate_model
from ..data.video import DavisVideos, make_moving_shapes_davis
from ..utils.io import save_png
from ..visualize import overlay_masks
from .console import callback_hook
from .stages import IMG, loss_curve, stage_runner

__all__ = ["VIDEO_SETS", "make_videos", "track_stage"]

#: Generated videos: set -> (videos, frames, only videos where an object is hidden and seen again, k); set k is drawn
#: with seed 3 x the run's seed + k. The held-out sets are scored; the strip shows the first "occluded" video.
VIDEO_SETS = {"train": (48, 6, False, 1), "occluded": (8, 8, True, 2), "heldout": (16, 8, False, 3)}


def make_videos(root: str, seed: int) -> Dict[str, str]:
    """The training videos and the held-out sets (other seeds), in the DAVIS layout."""
    out = {}
    for name, (n, frames, occluded, offset) in VIDEO_SETS.items():
        out[name] = os.path.join(root, name)
        make_moving_shapes_davis(out[name], n, num_frames=frames, size=IMG, seed=3 * seed + offset,
                                 occluded_only=occluded)
    return out


def _strip(source: DavisVideos, ids: np.ndarray, path: str) -> str:
    """Video 0's frames side by side, its tracked id maps ``ids`` (one per annotated frame) drawn over them (one
    colour per object prompted on the first frame)."""
    frames = [source.frame(0, t) for t in source.annotated(0)]
    objects = [int(k) for k in np.unique(ids[0]) if k]
    tiles = [overlay_masks(frame, [m == k for k in objects]) for frame, m in zip(frames, ids)]
    save_png(np.repeat(np.repeat(np.concatenate(tiles, axis=1), 2, axis=0), 2, axis=1), path)
    return path


def track_stage(videos: Dict[str, str], efficientsam_dir: str, out: str, bar) -> Dict:
    """Train the tiny EfficientTAM from ``efficientsam_dir``; J&F, J and F before and after on both held-out sets
    (``jf_after``, ``occluded_jf_after`` ...), and without memory (``jf_no_memory``, ``occluded_jf_no_memory``)."""
    from ..integrations.hf.efficienttam_predictor import EfficientTamVideoPredictor

    work = os.path.join(out, "work_dirs", "efficienttam")
    sets = {name: DavisVideos(videos[name]) for name in ("heldout", "occluded")}
    result: Dict = {}

    def measure(when):
        def run(runner):
            model = runner.model.model
            was_training = model.training
            predictor = EfficientTamVideoPredictor(model, non_overlap_masks=True)
            for name, source in sets.items():
                prefix = "" if name == "heldout" else f"{name}_"
                scores = evaluate_model(predictor, source, progress=False, keep=True)
                for key in ("J&F", "J", "F"):
                    result[f"{prefix}{key.lower().replace('&', '')}_{when}"] = scores[key]
                if when == "before":  # the masks are prompts kept as they are: the weights do not enter
                    result[f"{prefix}jf_no_memory"] = evaluate_model(predictor, source, memory=False,
                                                                     progress=False)["J&F"]
                if name == "occluded":
                    result[f"strip_{when}"] = _strip(source, scores["predictions"][source.names[0]],
                                                     os.path.join(out, "pictures", f"track_{when}.png"))
            model.train(was_training)
        return run

    def edit(cfg):
        cfg.train_dataloader.dataset.data_root = videos["train"]
        cfg.model.init_checkpoint = efficientsam_dir

    runner = stage_runner("track", edit, work, bar, [callback_hook(measure("before"), measure("after"))])
    runner.train()
    result["curve"] = loss_curve(work)
    result["model_dir"] = os.path.join(work, "model")  # the config's SaveVideoModelHook wrote it
    return result
