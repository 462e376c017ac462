"""Reading checkpoints and translating key layouts: the one place that knows checkpoint formats.

Layouts understood here:

* **official release** (``efficient_sam_vitt.pt`` / ``efficient_sam_vits.pt``, also the zip
  archive ``*.pt.zip`` that wraps one of them): ``{"model": state_dict}`` whose keys are exactly
  the module names of :class:`efficientsam_zoo.modeling.EfficientSam` (``image_encoder.*``,
  ``prompt_encoder.*``, ``mask_decoder.*``). No translation is needed; loading is strict.
* **Hugging Face** ``EfficientSamModel`` directories (``model.safetensors``): the official keys under
  the prefix ``efficientsam.`` (:func:`official_to_hf_efficientsam` / :func:`hf_to_official_efficientsam`).

Every load reports missing / unexpected / mis-shaped keys and refuses a partial load.
"""
from __future__ import annotations

import io
import os
import zipfile
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "read_checkpoint",
    "read_official_state_dict",
    "check_state_dict",
    "load_state_dict_strict",
    "guess_efficientsam_variant",
    "save_official_checkpoint",
    "atomic_torch_save",
    "official_to_hf_efficientsam",
    "hf_to_official_efficientsam",
    "HF_EFFICIENTSAM_PREFIX",
]

HF_EFFICIENTSAM_PREFIX = "efficientsam."

_SHOW = 8  # how many offending keys an error message lists


class CheckpointError(RuntimeError):
    """A checkpoint could not be read, or does not fit the model it is loaded into."""


def _open_bytes(path: str) -> io.BytesIO:
    """The torch-serialised bytes of ``path``; unwraps a ``.pt.zip`` archive around one ``.pt``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist (or is not a file)")
    with open(path, "rb") as f:
        data = f.read()
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            is_torch_archive = any(n.endswith("data.pkl") for n in names)
            inner = [n for n in names if n.endswith((".pt", ".pth")) and not n.startswith("__MACOSX")]
            if not is_torch_archive and len(inner) == 1:
                data = z.read(inner[0])
            elif not is_torch_archive:
                raise CheckpointError(
                    f"{path!r} is a zip archive but not a torch checkpoint, and it holds {len(inner)} .pt/.pth "
                    f"files ({inner[:_SHOW]}); unzip it and pass the one checkpoint file")
    return io.BytesIO(data)


def read_checkpoint(path: str) -> Mapping:
    """``torch.load(path, weights_only=True)`` with one clear error for unreadable files."""
    buffer = _open_bytes(path)
    try:
        return torch.load(buffer, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError / UnpicklingError / EOFError ...
        raise CheckpointError(
            f"could not read checkpoint {path!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
            "The file is truncated, corrupt or not a PyTorch checkpoint: download it again "
            "(official files: efficient_sam_vitt.pt / efficient_sam_vits.pt)") from exc


def read_official_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The state dict of an official release file (``{"model": ...}``; a bare state dict is accepted)."""
    obj = read_checkpoint(path)
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    elif isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path!r} holds no state dict: expected {{'model': state_dict}} as released")
    return dict(obj)


def guess_efficientsam_variant(state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """``efficientsam-ti`` / ``efficientsam-s`` from the patch-embedding width, else ``None``."""
    w = state_dict.get("image_encoder.patch_embed.proj.weight")
    if w is None or w.ndim != 4:
        return None
    return {192: "efficientsam-ti", 384: "efficientsam-s"}.get(int(w.shape[0]))


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]
                     ) -> Tuple[List[str], List[str], List[str]]:
    """``(missing, unexpected, mis-shaped)`` key lists of loading ``state_dict`` into ``model``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    misshaped = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                 for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    return missing, unexpected, misshaped


def _listing(title: str, keys: List[str]) -> str:
    more = f" ... (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return f"  {title} ({len(keys)}): {', '.join(keys[:_SHOW])}{more}"


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint",
                           hint: str = "", ignore_missing: Iterable[str] = ()) -> None:
    """Load strictly; on any mismatch raise one :class:`CheckpointError` naming every kind of problem."""
    missing, unexpected, misshaped = check_state_dict(model, state_dict)
    ignore = tuple(ignore_missing)
    missing = [k for k in missing if not k.startswith(ignore)] if ignore else missing
    if missing or unexpected or misshaped:
        lines = [f"{source} does not fit {type(model).__name__}:"]
        if misshaped:
            lines.append(_listing("mis-shaped", misshaped))
        if missing:
            lines.append(_listing("missing", missing))
        if unexpected:
            lines.append(_listing("unexpected", unexpected))
        if hint:
            lines.append(hint)
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state_dict, strict=not ignore)


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename (never a half-written file)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_official_checkpoint(model: nn.Module, path: str) -> None:
    """Write ``model`` in the release layout ``{"model": state_dict}`` (atomically)."""
    atomic_torch_save({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, path)


def official_to_hf_efficientsam(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Official release keys -> ``EfficientSamModel`` (transformers) keys."""
    return {HF_EFFICIENTSAM_PREFIX + k: v for k, v in state_dict.items()}


def hf_to_official_efficientsam(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``EfficientSamModel`` keys -> official release keys (refuses keys without the prefix)."""
    stray = [k for k in state_dict if not k.startswith(HF_EFFICIENTSAM_PREFIX)]
    if stray:
        raise CheckpointError(f"not an EfficientSamModel state dict: keys without {HF_EFFICIENTSAM_PREFIX!r}: "
                              f"{stray[:_SHOW]}")
    return {k[len(HF_EFFICIENTSAM_PREFIX):]: v for k, v in state_dict.items()}
