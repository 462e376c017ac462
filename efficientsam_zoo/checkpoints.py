"""Reading checkpoints and translating key layouts: the one place that knows checkpoint formats.

Layouts understood here:

* **official release** (``efficient_sam_vitt.pt`` / ``efficient_sam_vits.pt``, also the zip
  archive ``*.pt.zip`` that wraps one of them): ``{"model": state_dict}`` whose keys are exactly
  the module names of :class:`efficientsam_zoo.modeling.EfficientSam` (``image_encoder.*``,
  ``prompt_encoder.*``, ``mask_decoder.*``). No translation is needed; loading is strict.
* **Hugging Face** ``EfficientSamModel`` directories (``model.safetensors``): the official keys under
  the prefix ``efficientsam.`` (:func:`official_to_hf_efficientsam` / :func:`hf_to_official_efficientsam`).
* **SAMI backbone export** (``*.safetensors`` written by ``efficientsam-zoo export-backbone``): the plain
  :class:`~efficientsam_zoo.modeling.ViT` keys, no prefix and no neck::

      patch_embed.proj.{weight,bias}   pos_embed [1, 197, C] (224-px grid + cls slot)
      blocks.{i}.norm1.{weight,bias}   blocks.{i}.attn.qkv.{weight,bias}   blocks.{i}.attn.proj.{weight,bias}
      blocks.{i}.norm2.{weight,bias}   blocks.{i}.mlp.fc1.{weight,bias}    blocks.{i}.mlp.fc2.{weight,bias}

  with safetensors metadata ``format = "sami-backbone"`` and ``vit`` = the JSON of the ViT's size
  (``embed_dim``, ``depth``, ``num_heads``, ``patch_size``, ``mlp_ratio``, ``pretrain_img_size``). The
  same keys are ``image_encoder.*`` in an official EfficientSAM checkpoint and ``vit.*`` in an HF
  ``SamiViTModel``; :func:`backbone_state_dict` reads any of these and returns the plain layout.
* **segment-anything** image encoders (``sam_vit_h_4b8939.pth`` ...): ``image_encoder.*`` with
  ``mlp.lin1`` / ``mlp.lin2`` for our ``mlp.fc1`` / ``mlp.fc2`` and ``pos_embed`` stored as ``[1, 64, 64, C]``
  (1024-px grid, no cls slot); :func:`segment_anything_to_vit`. Hugging Face ``SamVisionModel`` keys map
  onto that layout with :func:`hf_sam_vision_to_segment_anything`.

Every load reports missing / unexpected / mis-shaped keys and refuses a partial load.
"""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from torch import nn

__all__ = ["CheckpointError", "read_checkpoint", "read_official_state_dict", "check_state_dict",
           "load_state_dict_strict", "guess_efficientsam_variant", "save_official_checkpoint", "atomic_torch_save",
           "official_to_hf_efficientsam", "hf_to_official_efficientsam", "HF_EFFICIENTSAM_PREFIX",
           "segment_anything_to_vit", "hf_sam_vision_to_segment_anything", "backbone_state_dict",
           "save_sami_backbone", "read_sami_backbone", "SAMI_BACKBONE_FORMAT", "read_trainer_checkpoint",
           "load_pretrained_backbone", "load_segmenter_init"]

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
    """The EfficientSAM variant (``registry.VARIANTS``) whose encoder width matches the patch embedding, else
    ``None``."""
    from .registry import variant_of_width

    w = state_dict.get("image_encoder.patch_embed.proj.weight")
    if w is None or w.ndim != 4:
        return None
    return variant_of_width(int(w.shape[0]))


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
    from .utils.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


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


# -- segment-anything / HF SAM image encoders ---------------------------------------------------------------
def segment_anything_to_vit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """segment-anything image-encoder keys (with or without ``image_encoder.``) -> :class:`ViT` keys.

    Prompt-encoder / mask-decoder keys of a full SAM checkpoint are dropped.
    """
    has_prefix = any(k.startswith("image_encoder.") for k in state_dict)
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if has_prefix:
            if not key.startswith("image_encoder."):
                continue
            key = key[len("image_encoder."):]
        key = key.replace(".mlp.lin1.", ".mlp.fc1.").replace(".mlp.lin2.", ".mlp.fc2.")
        if key == "pos_embed" and value.ndim == 4:  # [1, H, W, C] -> [1, H*W, C]
            value = value.reshape(1, -1, value.shape[-1])
        out[key] = value
    return out


_HF_SAM_RULES = [
    (r"^patch_embed\.projection\.", "patch_embed.proj."),
    (r"^layers\.(\d+)\.layer_norm1\.", r"blocks.\1.norm1."),
    (r"^layers\.(\d+)\.layer_norm2\.", r"blocks.\1.norm2."),
    (r"^layers\.(\d+)\.", r"blocks.\1."),
    (r"^neck\.conv1\.", "neck.0."),
    (r"^neck\.layer_norm1\.", "neck.1."),
    (r"^neck\.conv2\.", "neck.2."),
    (r"^neck\.layer_norm2\.", "neck.3."),
]


def hf_sam_vision_to_segment_anything(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """transformers ``SamVisionModel`` / ``SamModel`` vision keys -> segment-anything ``image_encoder.*`` keys."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for prefix in ("vision_encoder.", "model.vision_encoder."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        if not key.startswith(("patch_embed.", "pos_embed", "layers.", "neck.")):
            continue
        for pattern, repl in _HF_SAM_RULES:
            new = re.sub(pattern, repl, key)
            if new != key:
                key = new
                break
        out["image_encoder." + key] = value
    return out


# -- SAMI backbones -----------------------------------------------------------------------------------------
SAMI_BACKBONE_FORMAT = "sami-backbone"
_BACKBONE_PREFIXES = ("image_encoder.", "vit.", "sami_vit.vit.", "sami.encoder.", "encoder.", "backbone.")


def backbone_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Plain ViT backbone keys from a SAMI export, an official EfficientSAM checkpoint (``image_encoder.``,
    neck dropped), an HF ``SamiViTModel`` (``vit.``) or a SAMI training checkpoint (``sami.encoder.``)."""
    keys = list(state_dict)
    if any(k.startswith("patch_embed.") for k in keys):
        chosen = ""
    else:
        found = [p for p in _BACKBONE_PREFIXES if any(k.startswith(p + "patch_embed.") for k in keys)]
        if not found:
            raise CheckpointError("no ViT backbone found: expected keys like 'patch_embed.proj.weight' (SAMI export), "
                                  "'image_encoder.patch_embed...' (official EfficientSAM) or 'vit.patch_embed...' "
                                  f"(HF SamiViTModel); first keys: {keys[:_SHOW]}")
        chosen = found[0]
    out = {k[len(chosen):]: v for k, v in state_dict.items() if k.startswith(chosen)}
    return {k: v for k, v in out.items() if not k.startswith("neck.")}


def save_sami_backbone(state_dict: Mapping[str, torch.Tensor], path: str, vit_args: Mapping) -> None:
    """Write a backbone in the SAMI export layout as safetensors (atomically)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in backbone_state_dict(state_dict).items()}
    meta = {"format": SAMI_BACKBONE_FORMAT, "vit": json.dumps(dict(vit_args), sort_keys=True)}
    from .utils.io import atomic_path

    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def read_sami_backbone(path: str) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """``(state_dict, vit_args)`` of a SAMI backbone export (``vit_args`` empty for non-export files).

    Also accepts an official EfficientSAM ``.pt`` or any ``.pth`` holding a backbone (read with
    ``weights_only=True``) and an HF ``SamiViTModel`` directory.
    """
    if os.path.isdir(path):
        st = os.path.join(path, "model.safetensors")
        if not os.path.isfile(st):
            raise CheckpointError(f"{path!r} is a directory without model.safetensors (not an HF model directory)")
        path = st
    if path.endswith(".safetensors"):
        from safetensors import safe_open

        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint {path!r} does not exist (or is not a file)")
        try:
            with safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
                sd = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"could not read {path!r} as safetensors ({exc})") from exc
        vit_args = json.loads(meta["vit"]) if meta.get("format") == SAMI_BACKBONE_FORMAT else {}
        return backbone_state_dict(sd), vit_args
    obj = read_checkpoint(path)
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    return backbone_state_dict(obj), {}


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


def load_pretrained_backbone(vit: torch.nn.Module, path: str, allow_missing: Iterable[str] = ("rel_pos_",)) -> None:
    """Load a backbone checkpoint (SAMI export, official EfficientSAM, HF SamiViTModel dir, ...) into ``vit``.

    Strict, except for parameters the downstream architecture adds (ViTDet's relative-position tables).
    Loudly refuses a load where nothing matched or shapes differ.
    """
    sd, _ = read_sami_backbone(path)
    own = vit.state_dict()
    matched = [k for k in sd if k in own]
    if not matched:
        raise CheckpointError(f"nothing in {path!r} matches the backbone: checkpoint keys {list(sd)[:_SHOW]}, "
                              f"backbone keys {list(own)[:_SHOW]}")
    missing, unexpected, misshaped = check_state_dict(vit, sd)
    missing = [k for k in missing if not any(a in k for a in allow_missing)]
    if missing or unexpected or misshaped:
        lines = [f"backbone checkpoint {path!r} does not fit:"]
        for title, keys in (("mis-shaped", misshaped), ("missing", missing), ("unexpected", unexpected)):
            if keys:
                lines.append(_listing(title, keys))
        raise CheckpointError("\n".join(lines))
    vit.load_state_dict(sd, strict=False)


def load_segmenter_init(sam: nn.Module, path: str) -> str:
    """Initialise an ``EfficientSam`` for finetuning: an official checkpoint (it has ``mask_decoder.*`` keys) loads
    everything, strictly; a backbone (SAMI export, HF ``SamiViTModel`` directory, ...) loads the image encoder only,
    its SAM neck and the decoder starting fresh. Returns ``"official"`` or ``"backbone"``."""
    if os.path.isfile(path) and not path.endswith(".safetensors"):
        obj = read_checkpoint(path)
        sd = obj.get("model", obj) if isinstance(obj, Mapping) else {}
        if any(k.startswith("mask_decoder.") for k in sd):
            load_state_dict_strict(sam, dict(sd), source=f"checkpoint {path!r}")
            return "official"
    load_pretrained_backbone(sam.image_encoder, path, allow_missing=("rel_pos_", "neck."))
    return "backbone"
