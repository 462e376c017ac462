"""Shipped configs by name: ``vitdet_sami_s`` works wherever ``mm_configs/vitdet_sami_s.py`` does.

A wheel carries the configs in the package, OpenMMLab's ``.mim`` way: ``efficientsam_zoo/.mim/configs``
(``mm_configs/``), ``.mim/d2_configs`` and ``.mim/recipes`` (``hf/recipes/``). In a checkout the repository's own
folders are used. ``_base_`` references are relative, so they resolve in either place, and mmengine's
``efficientsam_zoo::vitdet_sami_s.py`` form reads the same ``.mim/configs`` folder.
"""
from __future__ import annotations

import difflib
import os
from typing import Dict, List, Optional

import yaml

__all__ = ["KINDS", "config_dirs", "resolve_config", "shipped_configs", "cpu_smoke", "load_recipe"]

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REPO = os.path.dirname(_PKG)
#: kind -> (folder inside efficientsam_zoo/.mim, folder of a checkout, file extension)
KINDS = {"mm": ("configs", "mm_configs", ".py"), "d2": ("d2_configs", "d2_configs", ".py"),
         "recipe": ("recipes", os.path.join("hf", "recipes"), ".yaml")}


def config_dirs(kind: str = "mm") -> List[str]:
    """Where shipped configs of ``kind`` live on this installation: a checkout's own folders first (so edits count),
    then the copies a wheel carries."""
    mim, repo, _ = KINDS[kind]
    candidates = [os.path.join(_REPO, repo), os.path.join(_PKG, ".mim", mim)]
    return [d for d in candidates if os.path.isdir(d)]


def shipped_configs(kind: str = "mm") -> List[str]:
    """Names (paths relative to the config folder, without extension) of every shipped config of ``kind``."""
    ext = KINDS[kind][2]
    names = set()
    for root in config_dirs(kind):
        for dirpath, _, files in os.walk(root):
            if os.path.basename(dirpath).startswith("_"):
                continue  # _base_ pieces are not runnable on their own
            names.update(os.path.relpath(os.path.join(dirpath, f), root)[:-len(ext)] for f in files if f.endswith(ext))
    return sorted(names)


def resolve_config(name_or_path: str, kind: str = "mm") -> str:
    """A config file path: an existing path as given, else a shipped config by name (``vitdet_sami_s``,
    ``vitdet_sami_s.py``, ``COCO/mask_rcnn_vitdet_sami_s_100ep``). Raises ``FileNotFoundError`` naming the
    closest shipped names."""
    if os.path.isfile(name_or_path):
        return name_or_path
    ext = KINDS[kind][2]
    name = name_or_path[:-len(ext)] if name_or_path.endswith(ext) else name_or_path
    known = shipped_configs(kind)
    for root in config_dirs(kind):
        path = os.path.join(root, name + ext)
        if os.path.isfile(path):
            return path
    by_base = [k for k in known if os.path.basename(k) == os.path.basename(name)]
    if len(by_base) == 1:
        return resolve_config(by_base[0], kind)
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.4)
    where = ", ".join(config_dirs(kind)) or "no shipped config folder found"
    raise FileNotFoundError(f"config {name_or_path!r} is neither a file nor a shipped config name ({where}); "
                            + (f"did you mean {close}?" if close else f"shipped: {known}"))


def load_recipe(path: str, overrides: Optional[List[str]] = None) -> Dict:
    """A recipe file (a path, or the name of a shipped one such as ``vit-s_in1k``) with ``key=value`` overrides."""
    path = resolve_config(path, kind="recipe")
    with open(path) as f:
        recipe = yaml.safe_load(f)
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"--set takes key=value, got {item!r}")
        key, value = item.split("=", 1)
        if key not in recipe:
            raise ValueError(f"unknown recipe key {key!r}; known: {sorted(recipe)}")
        recipe[key] = yaml.safe_load(value)
    return recipe


#: The tiny teachers of CPU smoke runs (random weights: they show the pipeline runs and learns, not SAM's knowledge).
_SMOKE_TEMPLATE = "sami_pretrain_vit-ti_tiny-shapes"
#: Smoke runs show that an experiment's options run end to end, not that it learns: its schedule is cut to this many
#: iterations (10 of warm-up).
SMOKE_ITERS = 60
_TINY_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=64,
                  patch_size=16)


def cpu_smoke(cfg, data_root: str):
    """A CPU-sized variant of a SAMI / MAE pretraining config: the ``sami_pretrain_vit-ti_tiny-shapes`` recipe (a
    6-block ViT-Ti at 128 px, a small decoder) cut to :data:`SMOKE_ITERS` iterations, with the experiment's own model
    options kept -- mask ratio, loss, decoder queries, target -- and its teacher replaced by a tiny random one of the
    same kind."""
    from mmengine.config import Config

    model = cfg.model
    if model.get("type") != "SamiPretrainer":
        raise ValueError(f"--cpu-smoke shrinks SAMI / MAE pretraining configs (model type SamiPretrainer), not "
                         f"{model.get('type')!r}; the other paths have their own *_tiny-shapes configs")
    smoke = Config.fromfile(resolve_config(_SMOKE_TEMPLATE))
    for key in ("mask_ratio", "loss", "target", "target_resize"):
        if key in model:
            smoke.model[key] = model[key]
    smoke.model.decoder["queries"] = (model.get("decoder") or {}).get("queries", "masked")
    teacher = model.get("teacher")
    if teacher is None:
        smoke.model.teacher = None
    elif teacher.get("type") == "hf_clip":
        smoke.model.teacher = dict(type="hf_clip", seed=0, config=_TINY_CLIP)
    smoke.train_dataloader.dataset.data_root = data_root
    warmup = smoke.param_scheduler[0].end
    smoke.train_cfg.max_iters = smoke.param_scheduler[1].end = SMOKE_ITERS
    smoke.param_scheduler[1].T_max = SMOKE_ITERS - warmup
    smoke.default_hooks.checkpoint.interval = SMOKE_ITERS
    return smoke
