"""Short names in every ``from_pretrained`` of the Hugging Face classes.

:data:`HUB_ALIASES` is derived from the variant table (``efficientsam_zoo.registry.VARIANTS``): a name maps to its
Hub repository, and EfficientSAM names also to their released weights, which ``efficientsam_zoo.hub`` fetches
(and converts) when the repository holds no ``config.json``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ...hub import WeightsUnavailable, fetch_official_checkpoint, hf_offline
from ...registry import VARIANTS

__all__ = ["HubEntry", "HUB_ALIASES", "resolve_pretrained", "AliasMixin"]


@dataclass(frozen=True)
class HubEntry:
    repo_id: str
    variant: Optional[str] = None  # an EfficientSAM variant: its released weights are converted on the fly


HUB_ALIASES: Dict[str, HubEntry] = {
    name: HubEntry(v.hub_repo, name if v.weights else None) for name, v in VARIANTS.items()}


def resolve_pretrained(name: str) -> Tuple[Optional[str], Optional[str]]:
    """``name`` -> ``(directory or repo id for from_pretrained, None)`` or ``(None, official checkpoint path)``.

    Order: an existing local directory; an alias or a full ``org/name`` id whose repository has a ``config.json``
    (fetched, or found in the HF cache); for EfficientSAM aliases, the released weights (every source of the
    variant, see ``efficientsam_zoo.hub``), to be converted by the caller. Offline with nothing cached: one error
    naming what to download and where to put it.
    """
    if os.path.isdir(name):
        return name, None
    from huggingface_hub import hf_hub_download

    entry = HUB_ALIASES.get(name, HubEntry(name))
    errors: List[str] = []
    try:
        hf_hub_download(entry.repo_id, "config.json")
        return entry.repo_id, None
    except Exception as exc:  # noqa: BLE001 - missing file, offline cache miss, network errors
        errors.append(f"{entry.repo_id}/config.json: {type(exc).__name__}")
    if entry.variant:
        try:
            return None, fetch_official_checkpoint(entry.variant)
        except WeightsUnavailable as exc:
            raise OSError(f"cannot load {name!r}: {exc}\nWith the file at hand: build_efficient_sam({name!r}, "
                          "checkpoint=PATH), or convert it with hf/convert_official_checkpoint.py and call "
                          "from_pretrained(<output dir>).") from exc
    how = ("HF_HUB_OFFLINE=1 is set and the Hugging Face cache has no copy" if hf_offline()
           else "the Hub could not be reached or the repository does not hold it")
    raise OSError(
        f"cannot load {name!r}: {how} ({'; '.join(errors)}). On a machine with network access run "
        f"`huggingface-cli download {entry.repo_id}` and copy the Hugging Face cache (~/.cache/huggingface/hub) here, "
        f"or download config.json + model.safetensors from https://huggingface.co/{entry.repo_id} and call "
        "from_pretrained(<local directory>).")


class AliasMixin:
    """``from_pretrained`` that understands the short names of :data:`HUB_ALIASES`."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        name = os.fspath(pretrained_model_name_or_path)
        if os.path.isdir(name) or ("/" not in name and name not in HUB_ALIASES):
            return super().from_pretrained(name, *args, **kwargs)
        target, official = resolve_pretrained(name)
        if target is not None:
            return super().from_pretrained(target, *args, **kwargs)
        return cls._from_official(official, HUB_ALIASES[name].variant)

    @classmethod
    def _from_official(cls, path: str, variant: Optional[str]):
        raise OSError(f"{cls.__name__} cannot be built from an official EfficientSAM checkpoint ({path})")
