"""What every command shares: the ``--model`` / ``--checkpoint`` options and the model they name, input checks made
before a model loads, the device, result tables."""
from __future__ import annotations

import argparse
import csv
import os
from typing import Dict, List, Optional

import torch

from ..build import build_efficient_sam, efficient_sam_from_checkpoint
from ..hub import fetch_official_checkpoint
from ..registry import EFFICIENT_SAM_NAMES, VARIANTS, get_spec
from ..utils.io import atomic_path

__all__ = ["device", "load_model_from_args", "require_inputs", "points_cap", "weights_args", "write_tables"]


def device(name: Optional[str]) -> str:
    """``--device``, default ``cuda`` when available, else ``cpu``."""
    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def load_model_from_args(model: Optional[str], checkpoint: Optional[str], device_name: Optional[str] = None):
    """``--model`` / ``--checkpoint`` -> an EfficientSAM model in eval mode on the device.

    With only ``--checkpoint`` the variant is read off the checkpoint (the file is read once); with only ``--model``
    the released weights are fetched from the Hub (or its local cache)."""
    if checkpoint is None and model is None:
        raise SystemExit("error: give --checkpoint PATH or --model NAME")
    if checkpoint is None:
        return build_efficient_sam(model, checkpoint=fetch_official_checkpoint(model)).to(device(device_name))
    return efficient_sam_from_checkpoint(checkpoint, model).eval().to(device(device_name))


def require_inputs(**paths: str) -> None:
    """Input files / folders checked before the model loads (not after minutes of work); a keyword ending in
    ``_dir`` names a folder."""
    for what, path in paths.items():
        is_dir = what.endswith("_dir")
        if not (os.path.isdir(path) if is_dir else os.path.isfile(path)):
            raise FileNotFoundError(f"--{what.replace('_', '-')} {path!r} does not exist"
                                    + (" (a folder)" if is_dir else ""))


def points_cap() -> int:
    """Prompt points per query that every EfficientSAM variant takes (the decoder's fixed input size)."""
    return min(get_spec(n).decoder_max_num_input_points for n in EFFICIENT_SAM_NAMES)


def weights_args(p: argparse.ArgumentParser, with_device: bool = True) -> None:
    """``--checkpoint`` / ``--model`` (and ``--device``) on a command's parser."""
    files = ", ".join(VARIANTS[n].weights[0].filename for n in EFFICIENT_SAM_NAMES)
    src = p.add_argument_group("weights (one of)")
    src.add_argument("--checkpoint", help=f"official checkpoint file ({files}, the .pt.zip form or a TorchScript "
                                          "export)")
    src.add_argument("--model", choices=EFFICIENT_SAM_NAMES,
                     help="model name; without --checkpoint the released weights are downloaded")
    if with_device:
        p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")


def write_tables(rows: List[Dict], columns: List[str], stem: str) -> None:
    """``stem.md`` (markdown) and ``stem.csv`` with the same rows, each written atomically."""
    with atomic_path(stem + ".md") as tmp, open(tmp, "w") as f:
        f.write("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n")
        for r in rows:
            f.write("| " + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in columns)
                    + " |\n")
    with atomic_path(stem + ".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows([{c: r[c] for c in columns} for r in rows])
