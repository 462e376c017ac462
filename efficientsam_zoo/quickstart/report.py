"""``report.md``, ``summary.json`` and the learning-curve plot of a quickstart run, and its console table."""
from __future__ import annotations

import json
import os
import platform
from typing import Dict, List, Optional

from ..utils.io import atomic_path, write_json

__all__ = ["write", "console_table", "TARGETS", "targets"]

#: What a trained run should show, each figure beside the baseline computed on the same held-out scenes:
#: (section, figure, baseline, margin, meaning) -- the figure should beat the baseline by the margin (a loss: stay
#: below it by the margin). The report prints these; the learning tests write their own bars.
TARGETS = [
    ("sami", "loss_unseen_trained", "mean_feature_loss", 0.0, "SAMI held-out loss below the mean-feature predictor's"),
    ("segment", "box_miou_after", "box_fill_baseline", 0.1, "box-prompt mIoU at least 0.1 above filling the box"),
    ("segment", "point_miou_after", "point_region_baseline", 0.0, "1-point mIoU above the clicked colour region"),
    ("vitdet", "bbox_ap", "mean_box_bbox_ap", 0.05, "ViTDet held-out box AP above the mean-box detector's"),
    ("track", "jf_after", "jf_no_memory", 0.2, "EfficientTAM held-out J&F at least 0.2 above the same model without "
     "memory"),
    ("track", "occluded_jf_after", "occluded_jf_no_memory", 0.2, "EfficientTAM J&F on held-out videos with an "
     "occlusion at least 0.2 above the same model without memory"),
]


def targets(summary: Dict) -> List[tuple]:
    """``(meaning, figure, baseline, met)`` of each target of a trained run."""
    out = []
    for section, key, base, margin, desc in TARGETS:
        if not summary.get(section):
            continue
        v, b = summary[section][key], summary[section][base]
        out.append((desc, v, b, v <= b + margin if key.startswith("loss") else v >= b + margin))
    return out


def _fmt(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.3f}"


def _baseline(section: Dict, key: str, what: str) -> str:
    return f" (baseline: {what} {section[key]:.3f})" if section.get(key) is not None else ""


def _rows(s: Dict) -> List[tuple]:
    rows = []
    if s.get("sami"):
        sami = s["sami"]
        rows += [("SAMI reconstruction loss (training)", f"{sami['loss_first']:.3f} -> {sami['loss_last']:.3f}"),
                 ("SAMI loss on held-out scenes", f"untrained {sami['loss_unseen_untrained']:.3f}, trained "
                  f"{sami['loss_unseen_trained']:.3f}" + _baseline(sami, "mean_feature_loss", "mean teacher map"))]
    seg = s["segment"]
    rows += [("box-prompt mIoU (held-out)", f"{_fmt(seg['box_miou_before'])} -> {_fmt(seg['box_miou_after'])}"
              + _baseline(seg, "box_fill_baseline", "filled box")),
             ("1-point mIoU (held-out)", f"{_fmt(seg['point_miou_before'])} -> {_fmt(seg['point_miou_after'])}"
              + _baseline(seg, "point_region_baseline", "clicked colour region"))]
    if s.get("vitdet"):
        v = s["vitdet"]
        rows += [("ViTDet box / mask AP (held-out)", f"{v['bbox_ap']:.3f} / {v['segm_ap']:.3f} (baseline: mean box "
                  f"{v['mean_box_bbox_ap']:.3f} / {v['mean_box_segm_ap']:.3f})"),
                 ("ViTDet box / mask AP (training scenes)", f"{v['bbox_ap_train']:.3f} / {v['segm_ap_train']:.3f}")]
    z = s["zero_shot"]
    rows += [("zero-shot mIoU box / 1 / 3 points", f"{z['miou_box']:.3f} / {z['miou_1pt']:.3f} / {z['miou_3pt']:.3f}"),
             ("zero-shot instance AP (GT boxes)", f"{z['instance_ap']:.3f}" + _baseline(z, "instance_ap_box_fill",
                                                                                      "filled boxes"))]
    if s.get("track"):
        t = s["track"]
        rows += [(f"EfficientTAM J&F (held-out{what})", f"{t[f'{p}jf_before']:.3f} -> {t[f'{p}jf_after']:.3f}"
                  + _baseline(t, f"{p}jf_no_memory", "no memory"))
                 for p, what in (("", " videos"), ("occluded_", ", an object hidden and seen again"))]
    return rows


def console_table(summary: Dict) -> str:
    rows = _rows(summary) + [("seconds", f"{summary['seconds']:.0f}")]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def _plot(summary: Dict, path: str) -> Optional[str]:
    curves = [(name, summary[key]["curve"]) for key, name in (("sami", "SAMI (MSE)"), ("segment", "EfficientSAM"),
                                                              ("vitdet", "ViTDet (total)"),
                                                              ("track", "EfficientTAM"))
              if summary.get(key) and summary[key].get("curve")]
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3), squeeze=False)
    for ax, (name, points) in zip(axes[0], curves):
        ax.plot([p[0] for p in points], [p[1] for p in points])
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write(out_dir: str, summary: Dict, data: Dict[str, str]) -> str:
    """Write ``report.md``, ``summary.json`` and ``curves.png``; returns the report's path."""

    curves = _plot(summary, os.path.join(out_dir, "curves.png"))
    numbers = json.loads(json.dumps(summary, default=str))
    for section in ("sami", "segment", "vitdet", "track"):
        for key in ("curve", "pictures_before", "pictures_after", "export", "strip_before", "strip_after"):
            (numbers.get(section) or {}).pop(key, None)
    write_json(numbers, os.path.join(out_dir, "summary.json"), indent=1)
    rel = lambda p: os.path.relpath(p, out_dir)  # noqa: E731
    lines = ["# efficientsam-zoo quickstart", "",
             f"Mode: **{summary['mode']}**; {summary['seconds']:.0f} s on {platform.machine()} "
             f"({os.cpu_count()} CPUs), torch {__import__('torch').__version__}.", ""]
    if summary["mode"] == "trained":
        lines += ["Small models on small generated scenes, so that every stage finishes in minutes on a CPU: a 6-block "
                  "ViT-Ti encoder at 128 px (the released EfficientSAM-Ti has 12 blocks at 1024 px), a tiny random SAM "
                  "teacher for SAMI (no SAM weights offline: the SAMI numbers show the pipeline learns, not SAM's "
                  "knowledge), ViTDet with 32-channel heads, EfficientTAM with one memory-attention layer. Configs: "
                  "`mm_configs/*_tiny-shapes.py`, `mm_configs/efficienttam_ti_tiny-moving-shapes.py`.", ""]
    lines += ["| what | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in _rows(summary)] + [""]
    if summary["mode"] == "trained":
        lines += ["Each figure stands beside a baseline computed on the same held-out scenes: what filling the prompt "
                  "box, flood-filling the clicked colour, predicting the teacher's mean map, putting the mean box "
                  "everywhere or tracking without memory scores.", "", "| target | figure | baseline | met |",
                  "|---|---|---|---|"]
        lines += [f"| {desc} | {v:.3f} | {b:.3f} | {'yes' if met else '**no**'} |" for desc, v, b, met in targets(summary)]
        lines += [""]
    seg = summary["segment"]
    for when in ("before", "after"):
        pictures = seg.get(f"pictures_{when}")
        if pictures:
            title = {"before": "Before finetuning (SAMI encoder, untrained decoder)",
                     "after": "After finetuning" if summary["mode"] == "trained" else "Released weights"}[when]
            lines += [f"## {title}", ""] + [f"![{os.path.basename(p)}]({rel(p)})" for p in pictures] + [""]
    if summary.get("track"):
        lines += ["## Tracking a held-out video with an occlusion (EfficientTAM, first frame's masks given)", ""]
        lines += [f"{when}:\n\n![{when}]({rel(summary['track'][f'strip_{when}'])})\n" for when in ("before", "after")]
    if curves:
        lines += ["## Learning curves", "", f"![learning curves]({rel(curves)})", ""]
    lines += ["## Files", "", f"* numbers: `summary.json`; framework logs: `{rel(summary['logs'])}/`",
              f"* generated data: `{rel(data['coco'])}` (COCO format), `{rel(os.path.dirname(data['shards']))}` (SA-1B "
              "layout)"] + ([f"* generated videos: `{rel(os.path.dirname(data['videos']['train']))}` (DAVIS layout)"]
                                    if data.get("videos") else []) + [""]
    path = os.path.join(out_dir, "report.md")
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("\n".join(lines))
    return path
