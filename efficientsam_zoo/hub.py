"""Getting released weights: one resolver for the CLI, ``build_efficient_sam`` users and the HF aliases.

A variant lists its sources in :data:`efficientsam_zoo.registry.VARIANTS` (``Variant.weights``); they are tried in
order and the first that yields a file wins:

* ``state_dict``: a ``{"model": state_dict}`` .pt on the Hub (``hf_hub_download``, its cache) or at a URL;
* ``zip``: the same .pt inside the official GitHub release's ``.pt.zip`` (read as is by ``read_checkpoint``);
* ``torchscript``: a scripted whole model (``torch.jit.load``); its ``state_dict()`` is checked key by key against
  the variant's architecture and written once as a ``{"model": ...}`` file in the cache (a local TorchScript file
  needs no conversion: ``build_efficient_sam(name, checkpoint="efficient_sam_s_cpu.jit")`` reads it directly).

URL downloads and converted files live in ``$ESZ_CACHE_DIR`` (default ``~/.cache/efficientsam-zoo``)/weights.
With ``HF_HUB_OFFLINE=1`` only caches are read. When every source fails, one error lists what was tried and how to
get the file by hand.
"""
from __future__ import annotations

import os
from typing import List

import torch

from .checkpoints import CheckpointError, atomic_torch_save, check_state_dict, read_official_state_dict
from .modeling.efficient_sam import EfficientSam
from .registry import WeightSource, get_variant
from .utils.io import cache_root

__all__ = ["hf_offline", "cache_dir", "fetch_official_checkpoint", "WeightsUnavailable"]


class WeightsUnavailable(RuntimeError):
    """No source of a variant's released weights could be reached (the message lists each attempt)."""


def hf_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set to a true value."""
    return any(os.environ.get(k, "0").strip().lower() not in ("", "0", "false", "no", "off")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def cache_dir() -> str:
    return os.path.join(cache_root(), "weights")


def _from_url(src: WeightSource) -> str:
    path = os.path.join(cache_dir(), src.filename)
    if os.path.isfile(path):
        return path
    if hf_offline():
        raise FileNotFoundError(f"offline and not in {cache_dir()}")
    os.makedirs(cache_dir(), exist_ok=True)
    torch.hub.download_url_to_file(src.url, path, progress=True)  # writes a temporary file, then renames
    return path


def _from_hub(src: WeightSource) -> str:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with the [hf] extra
        raise FileNotFoundError("huggingface_hub is not installed (pip install 'efficientsam-zoo[hf]')") from exc
    return hf_hub_download(src.repo_id, src.filename)


def _converted_torchscript(path: str, name: str) -> str:
    """``{"model": state_dict}`` of a TorchScript export (read by the one reader, ``read_official_state_dict``),
    checked strictly against ``name``'s architecture and cached, so the archive is loaded once."""
    out = os.path.join(cache_dir(), "converted", f"{name}-{os.path.basename(path)}.pt")
    if os.path.isfile(out) and os.path.getmtime(out) >= os.path.getmtime(path):
        return out
    state_dict = read_official_state_dict(path)
    with torch.device("meta"):
        reference = EfficientSam.from_spec(get_variant(name).spec())
    missing, unexpected, misshaped = check_state_dict(reference, state_dict)
    if missing or unexpected or misshaped:
        raise CheckpointError(f"TorchScript file {path!r} does not hold {name} weights: {len(missing)} missing, "
                              f"{len(unexpected)} unexpected, {len(misshaped)} mis-shaped keys "
                              f"(e.g. {(missing + unexpected + misshaped)[:3]})")
    atomic_torch_save({"model": state_dict}, out)
    return out


def fetch_official_checkpoint(name: str) -> str:
    """Local path of released ``{"model": state_dict}`` weights of EfficientSAM variant ``name``.

    Tries the variant's sources in order (see the module docstring); raises :class:`WeightsUnavailable`
    listing every attempt when none works.
    """
    variant = get_variant(name)
    if not variant.weights:
        raise WeightsUnavailable(f"{name!r} has no released weights; pass a local checkpoint or directory")
    tried: List[str] = []
    for src in variant.weights:
        try:
            path = _from_hub(src) if src.repo_id else _from_url(src)
            return _converted_torchscript(path, name) if src.kind == "torchscript" else path
        except Exception as exc:  # noqa: BLE001 - offline cache misses, 404s, network and format errors alike
            reason = str(exc).splitlines()[0][:160] if str(exc) else ""
            tried.append(f"  - {src.kind} {src.where()}: {type(exc).__name__}{': ' + reason if reason else ''}")
    first = variant.weights[0]
    why = "HF_HUB_OFFLINE is set and no cache holds the file" if hf_offline() else "no source could be reached"
    raise WeightsUnavailable(
        f"could not get the {name} weights ({why}). Tried, in order:\n" + "\n".join(tried) + "\n"
        f"On a machine with network access download {first.where()} and pass it with --checkpoint PATH "
        f"(or checkpoint=PATH), or run `huggingface-cli download {first.repo_id or ''} {first.filename}` and copy "
        "the Hugging Face cache (~/.cache/huggingface/hub) here.")

