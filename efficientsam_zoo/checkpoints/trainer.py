"""Checkpoints written by this package's own training runs (mmengine's Runner)."""
from __future__ import annotations

import os
from typing import Dict, Mapping

import torch

from .io import CheckpointError

__all__ = ["read_trainer_checkpoint"]


def read_trainer_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """Model state dict of a checkpoint written by an mmengine Runner run of this package.

    Such files also hold the optimiser and the run's message hub (Python objects), which
    ``weights_only=True`` cannot read, so this one reader uses ``weights_only=False``: pass it only files
    your own training wrote. Released or downloaded weights go through :func:`read_checkpoint`.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist (or is not a file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"could not read training checkpoint {path!r} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, Mapping) or not isinstance(obj.get("state_dict"), Mapping):
        raise CheckpointError(f"{path!r} is not an mmengine checkpoint (no 'state_dict'); for released weights "
                              "use the official-checkpoint or backbone loaders")
    return dict(obj["state_dict"])
