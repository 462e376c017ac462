"""COCO and LVIS annotation files through their own APIs (pycocotools, ``lvis``): which one a file is, its images,
their annotations and masks -- the one place that knows the two APIs' spellings."""
from __future__ import annotations

import json
import os
from typing import Dict, List

import numpy as np

__all__ = ["load_coco_like", "image_path", "ann_to_mask", "image_infos", "anns_of", "category_list", "lvis_numpy_compat"]


def lvis_numpy_compat() -> None:
    """lvis 0.5.3 (the latest release) still uses ``np.float``, removed in NumPy 1.24; give it back the alias."""
    if "float" not in np.__dict__:
        np.float = float  # type: ignore[attr-defined]


def load_coco_like(ann_file: str):
    """``(api, kind)`` for a COCO or LVIS annotation file (LVIS through the ``lvis`` package)."""
    if not os.path.isfile(ann_file):
        raise FileNotFoundError(f"annotation file {ann_file!r} does not exist (a COCO / LVIS instances JSON)")
    try:
        with open(ann_file) as f:
            head = json.load(f)
    except ValueError as exc:
        raise ValueError(f"annotation file {ann_file!r} is not valid JSON ({exc})") from exc
    is_lvis = any("frequency" in c for c in head.get("categories", [])[:5])
    if is_lvis:
        from lvis import LVIS

        lvis_numpy_compat()
        return LVIS(ann_file), "lvis"
    from pycocotools.coco import COCO

    return COCO(ann_file), "coco"


def image_path(img_dir: str, info: Dict) -> str:
    """The file of a COCO / LVIS ``images`` entry: its ``file_name``, or the last part of LVIS's ``coco_url``."""
    name = info.get("file_name") or os.path.basename(info["coco_url"])
    return os.path.join(img_dir, name)


def ann_to_mask(api, ann: Dict) -> np.ndarray:
    return api.ann_to_mask(ann).astype(bool) if hasattr(api, "ann_to_mask") else api.annToMask(ann).astype(bool)


def image_infos(api, kind: str) -> List[Dict]:
    if kind == "lvis":
        return api.load_imgs(sorted(api.get_img_ids()))
    return api.loadImgs(sorted(api.getImgIds()))


def anns_of(api, kind: str, image_id: int) -> List[Dict]:
    if kind == "lvis":
        return api.load_anns(api.get_ann_ids(img_ids=[image_id]))
    return api.loadAnns(api.getAnnIds(imgIds=[image_id], iscrowd=False))


def category_list(api, kind: str) -> List[Dict]:
    return api.load_cats(api.get_cat_ids()) if kind == "lvis" else api.loadCats(api.getCatIds())
