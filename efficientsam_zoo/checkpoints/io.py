"""Reading and writing checkpoint files, and strict loading: the one reader every released format goes through.

:func:`read_checkpoint` takes a ``torch.save`` file (``.pt`` / ``.pth``, read with ``weights_only=True``), the zip
archive the release wraps around one (``.pt.zip``) and a TorchScript export (``torch.jit.save``; its
``state_dict()`` is returned). Every load through :func:`load_state_dict_strict` reports missing / unexpected /
mis-shaped keys and refuses a partial load.
"""
from __future__ import annotations

import io
import os
import zipfile
from typing import Iterable, List, Mapping, Sequence, Tuple, Union

import torch
from torch import nn

from ..utils.io import atomic_path

__all__ = ["CheckpointError", "read_checkpoint", "is_torchscript", "check_state_dict", "load_state_dict_strict",
           "atomic_torch_save", "listing", "SHOW"]

SHOW = 8  # how many offending keys an error message lists


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
                    f"files ({inner[:SHOW]}); unzip it and pass the one checkpoint file")
    return io.BytesIO(data)


def is_torchscript(buffer: io.BytesIO) -> bool:
    """A ``torch.jit.save`` archive (it carries ``constants.pkl`` and ``code/``; ``torch.save`` archives do not)."""
    is_zip = zipfile.is_zipfile(buffer)
    buffer.seek(0)  # is_zipfile leaves the position wherever its search ended
    if not is_zip:
        return False
    with zipfile.ZipFile(buffer) as z:
        names = z.namelist()
    buffer.seek(0)
    return any(n.endswith("constants.pkl") for n in names) and any("/code/" in n for n in names)


def read_checkpoint(path: str) -> Mapping:
    """The object in a checkpoint file, with one clear error for unreadable files: ``torch.load(weights_only=True)``
    for ``torch.save`` files (also inside a ``.pt.zip``), the ``state_dict()`` of a TorchScript export."""
    buffer = _open_bytes(path)
    try:
        if is_torchscript(buffer):
            scripted = torch.jit.load(buffer, map_location="cpu")
            return {k: v.detach().clone() for k, v in scripted.state_dict().items()}
        return torch.load(buffer, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError / UnpicklingError / EOFError ...
        raise CheckpointError(
            f"could not read checkpoint {path!r} ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}). "
            "The file is truncated, corrupt or not a PyTorch checkpoint: download it again "
            "(official files: efficient_sam_vitt.pt / efficient_sam_vits.pt)") from exc


def check_state_dict(model: Union[nn.Module, Mapping[str, Sequence[int]]], state_dict: Mapping[str, torch.Tensor]
                     ) -> Tuple[List[str], List[str], List[str]]:
    """``(missing, unexpected, mis-shaped)`` key lists of loading ``state_dict`` into ``model``, or into a model whose
    key -> shape mapping is given (where the model itself lives in a layer above the caller)."""
    own = ({k: tuple(v.shape) for k, v in model.state_dict().items()} if isinstance(model, nn.Module)
           else {k: tuple(shape) for k, shape in model.items()})
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    misshaped = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {own[k]}"
                 for k in own if k in state_dict and tuple(state_dict[k].shape) != own[k]]
    return missing, unexpected, misshaped


def listing(title: str, keys: List[str]) -> str:
    more = f" ... (+{len(keys) - SHOW} more)" if len(keys) > SHOW else ""
    return f"  {title} ({len(keys)}): {', '.join(keys[:SHOW])}{more}"


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint",
                           hint: str = "", ignore_missing: Iterable[str] = ()) -> None:
    """Load strictly; on any mismatch raise one :class:`CheckpointError` naming every kind of problem.
    ``ignore_missing``: key prefixes the model may have that the checkpoint lacks (left as initialised)."""
    missing, unexpected, misshaped = check_state_dict(model, state_dict)
    ignore = tuple(ignore_missing)
    missing = [k for k in missing if not k.startswith(ignore)] if ignore else missing
    if missing or unexpected or misshaped:
        lines = [f"{source} does not fit {type(model).__name__}:"]
        for title, keys in (("mis-shaped", misshaped), ("missing", missing), ("unexpected", unexpected)):
            if keys:
                lines.append(listing(title, keys))
        if hint:
            lines.append(hint)
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state_dict, strict=not ignore)


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename (never a half-written file)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
