"""``PromptQualityCurveHook``: the paper's Figure 7 -- segment-anything quality against finetuning steps.

During SA-1B finetuning (``EfficientSamFinetuner``) it scores prompt mIoU on a COCO-format validation set (the
``eval-points`` code: :func:`~efficientsam_zoo.evaluation.point_eval.evaluate_points`, seeded prompts) at given
fractions of an epoch, and keeps ``<work_dir>/prompt_quality_curve.csv`` and ``.png`` (atomically rewritten after
every point; a resumed run keeps the rows before its start). Only the main process evaluates.
"""
from __future__ import annotations

import csv
import math
import os
from typing import Dict, List, Optional, Sequence

from mmengine.hooks import Hook

from ...evaluation.common import predictor_segment_fn
from ...evaluation.point_eval import evaluate_points
from ...predictor import EfficientSamPredictor
from ...utils.io import atomic_path
from .scope import HOOKS

__all__ = ["PromptQualityCurveHook"]


@HOOKS.register_module()
class PromptQualityCurveHook(Hook):
    """Args:
        ann_file, img_dir: the COCO / LVIS-format validation set.
        fractions: when to evaluate, in epochs of the training set (0 = before the first step).
        prompts: prompt types of ``eval-points`` (``"box"``, ``"1pt"``, ``"3pt"`` ...).
        num_instances: at most this many instances per evaluation (``None``: all); seed: the prompts' seed.
        iters_per_epoch: override (default: ``ceil(len(dataset) / (batch_size * world_size))``).
    """

    priority = "LOW"
    FILE = "prompt_quality_curve"

    def __init__(self, ann_file: str, img_dir: str, fractions: Sequence[float] = (0.1, 0.25, 0.5, 1, 2, 5),
                 prompts: Sequence[str] = ("box",), num_instances: Optional[int] = None, seed: int = 0,
                 iters_per_epoch: Optional[int] = None) -> None:
        if not fractions or any(f < 0 for f in fractions):
            raise ValueError(f"fractions must be epochs >= 0, got {fractions}")
        self.ann_file, self.img_dir = ann_file, img_dir
        self.fractions, self.prompts = sorted(fractions), list(prompts)
        self.num_instances, self.seed, self.iters_per_epoch = num_instances, seed, iters_per_epoch
        self.at: Dict[int, float] = {}
        self.rows: List[Dict] = []

    def before_train(self, runner) -> None:
        from mmengine.dist import get_world_size

        per_epoch = self.iters_per_epoch or math.ceil(
            len(runner.train_dataloader.dataset) / (runner.train_dataloader.batch_size * get_world_size()))
        self.at = {}
        for f in self.fractions:  # a fraction > 0 is never scored before the first step
            it = 0 if f == 0 else max(1, math.ceil(f * per_epoch))
            if it in self.at:
                runner.logger.warning(f"PromptQualityCurveHook: epochs {self.at[it]:g} and {f:g} both fall on "
                                      f"iteration {it} ({per_epoch} iterations per epoch); scoring it once")
                continue
            self.at[it] = f
        self.rows = [r for r in self._read(runner) if r["iter"] <= runner.iter]
        if runner.iter == 0 and 0 in self.at:
            self._evaluate(runner, 0)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        it = runner.iter + 1
        if it in self.at and it > 0:
            self._evaluate(runner, it)

    # -- internals --------------------------------------------------------------------------------
    def _path(self, runner, ext: str) -> str:
        return os.path.join(runner.work_dir, f"{self.FILE}.{ext}")

    def _read(self, runner) -> List[Dict]:
        path = self._path(runner, "csv")
        if not os.path.isfile(path):
            return []
        with open(path, newline="") as f:
            return [{k: (int(v) if k == "iter" else float(v)) for k, v in row.items() if v not in ("", None)}
                    for row in csv.DictReader(f)]

    def _evaluate(self, runner, it: int) -> None:
        from mmengine.dist import is_main_process
        from mmengine.model import is_model_wrapper

        if not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        sam = model.sam
        was_training = sam.training
        sam.eval()
        try:
            out = evaluate_points(predictor_segment_fn(EfficientSamPredictor(sam)), self.ann_file, self.img_dir,
                                  prompt_types=self.prompts, num_instances=self.num_instances, seed=self.seed,
                                  progress=False)
        finally:
            sam.train(was_training)
        row = {"epoch": self.at[it], "iter": it, **{f"{p}_miou": out["summary"][p]["all"] for p in self.prompts}}
        self.rows = [r for r in self.rows if r["iter"] != it] + [row]
        runner.logger.info("prompt quality at epoch %g (iter %d): %s", row["epoch"], it,
                           ", ".join(f"{p} mIoU {row[f'{p}_miou']:.2f}" for p in self.prompts))
        self._write(runner)

    def _write(self, runner) -> None:

        columns = ["epoch", "iter"] + [f"{p}_miou" for p in self.prompts]
        with atomic_path(self._path(runner, "csv")) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")  # rows of an earlier run may
            # score other prompt types
            writer.writeheader()
            writer.writerows(self.rows)
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:  # the PNG needs the [quickstart] extra; the CSV is always written
            return
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for p in self.prompts:
            rows = [r for r in self.rows if f"{p}_miou" in r]
            ax.plot([r["epoch"] for r in rows], [r[f"{p}_miou"] for r in rows], marker="o", label=p)
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("finetuning epochs")
        ax.set_ylabel("mIoU")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        with atomic_path(self._path(runner, "png")) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)
