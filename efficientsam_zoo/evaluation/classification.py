"""Classification accuracy (ImageNet's top-1 / top-5), framework-free."""
from __future__ import annotations

from typing import Dict

import numpy as np

__all__ = ["topk_accuracy"]


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, ks=(1, 5)) -> Dict[str, float]:
    """``{"top1": %, "top5": %}``: the share of samples whose label is among the ``k`` highest logits (``k`` capped
    at the number of classes)."""
    order = np.argsort(-logits, axis=1)
    out = {}
    for k in ks:
        k_eff = min(k, logits.shape[1])
        out[f"top{k}"] = float(np.mean([labels[i] in order[i, :k_eff] for i in range(len(labels))]) * 100.0)
    return out
