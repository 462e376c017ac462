"""Names -> architectures and where their released weights live.

=================  ==========================  =======================================
name               architecture                released weights (Hub repo, file)
=================  ==========================  =======================================
efficientsam-ti    ViT-Ti encoder (192-d, 3h)  merve/EfficientSAM, efficient_sam_vitt.pt
efficientsam-s     ViT-S encoder (384-d, 6h)   merve/EfficientSAM, efficient_sam_vits.pt
=================  ==========================  =======================================

The official GitHub release ships the same two files (``weights/efficient_sam_vitt.pt`` and the
zipped ``weights/efficient_sam_vits.pt.zip``); ``merve/EfficientSAM`` is a community mirror on the
Hugging Face Hub.
"""
from __future__ import annotations

import os
from typing import Dict, Tuple

from .modeling.efficient_sam import EfficientSamSpec

__all__ = ["EFFICIENT_SAM_SPECS", "OFFICIAL_WEIGHTS", "get_spec", "fetch_official_checkpoint"]

EFFICIENT_SAM_SPECS: Dict[str, EfficientSamSpec] = {
    "efficientsam-ti": EfficientSamSpec(embed_dim=192, num_heads=3),
    "efficientsam-s": EfficientSamSpec(embed_dim=384, num_heads=6),
}

#: name -> (Hub repo id, file name) of the released ``{"model": state_dict}`` checkpoint.
OFFICIAL_WEIGHTS: Dict[str, Tuple[str, str]] = {
    "efficientsam-ti": ("merve/EfficientSAM", "efficient_sam_vitt.pt"),
    "efficientsam-s": ("merve/EfficientSAM", "efficient_sam_vits.pt"),
}


def get_spec(name: str) -> EfficientSamSpec:
    try:
        return EFFICIENT_SAM_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(EFFICIENT_SAM_SPECS)}") from None


def fetch_official_checkpoint(name: str) -> str:
    """Local path of the released checkpoint for ``name`` (downloaded once into the HF cache)."""
    get_spec(name)
    repo, filename = OFFICIAL_WEIGHTS[name]
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub is part of the [hf] extra
        raise RuntimeError("downloading weights needs huggingface_hub: pip install 'efficientsam-zoo[hf]', "
                           f"or download {filename} yourself and pass --checkpoint PATH") from exc
    try:
        return hf_hub_download(repo, filename)
    except Exception as exc:  # noqa: BLE001 - offline, network and missing-file errors all end here
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
        why = "HF_HUB_OFFLINE is set and the file is not in the cache" if offline else f"{type(exc).__name__}: {exc}"
        raise RuntimeError(
            f"could not get the {name} weights ({why}). Download https://huggingface.co/{repo}/resolve/main/"
            f"{filename} on a machine with network access and pass it with --checkpoint PATH "
            f"(or checkpoint=PATH), or copy it into the Hugging Face cache.") from exc
