"""``build_efficient_sam`` and a ``sam_model_registry``-style table of builders."""
from __future__ import annotations

from typing import Callable, Dict, Optional, Union

from .checkpoints import guess_efficientsam_variant, load_state_dict_strict, read_official_state_dict
from .modeling.efficient_sam import EfficientSam, EfficientSamSpec
from .registry import DEFAULT_MODEL, EFFICIENT_SAM_NAMES, get_spec

__all__ = ["build_efficient_sam", "efficient_sam_model_registry", "load_official_weights"]


def load_official_weights(model: EfficientSam, checkpoint: str) -> EfficientSam:
    """Load an official ``{"model": state_dict}`` file strictly into ``model``."""
    state_dict = read_official_state_dict(checkpoint)
    found = guess_efficientsam_variant(state_dict)
    want = guess_efficientsam_variant(model.state_dict())
    hint = ""
    if found and want and found != want:
        hint = f"  the checkpoint is {found} but the model is {want}: build the model with name={found!r}"
    load_state_dict_strict(model, state_dict, source=f"checkpoint {checkpoint!r}", hint=hint)
    return model


def build_efficient_sam(name: Union[str, EfficientSamSpec] = DEFAULT_MODEL, checkpoint: Optional[str] = None,
                        **overrides) -> EfficientSam:
    """Build an EfficientSAM model in eval mode.

    Args:
        name: a name of ``registry.EFFICIENT_SAM_NAMES`` (``"efficientsam-ti"``, ``"efficientsam-s"``) or an
            :class:`EfficientSamSpec`.
        checkpoint: path of an official ``{"model": state_dict}`` file (``.pt`` or ``.pt.zip``),
            loaded strictly with ``weights_only=True``.
        overrides: architecture fields to change (e.g. ``img_size=256`` for small tests).
    """
    spec = name if isinstance(name, EfficientSamSpec) else get_spec(name)
    if overrides:
        spec = spec.replace(**overrides)
    model = EfficientSam.from_spec(spec)
    if checkpoint is not None:
        load_official_weights(model, checkpoint)
    return model.eval()


def _builder(name: str) -> Callable[..., EfficientSam]:
    def build(checkpoint: Optional[str] = None, **overrides) -> EfficientSam:
        return build_efficient_sam(name, checkpoint=checkpoint, **overrides)

    build.__name__ = f"build_{name.replace('-', '_')}"
    return build


#: Like segment-anything's ``sam_model_registry``: ``efficient_sam_model_registry["efficientsam-s"](checkpoint=...)``.
efficient_sam_model_registry: Dict[str, Callable[..., EfficientSam]] = {n: _builder(n) for n in EFFICIENT_SAM_NAMES}
