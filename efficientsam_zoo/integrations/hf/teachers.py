"""Frozen SAMI teachers from transformers, registered in ``modeling.teachers.TEACHERS`` on import."""
from __future__ import annotations

from typing import Optional

import torch

from ...modeling.teachers import Teacher, register_teacher

__all__ = ["HFSamTeacher"]


@register_teacher("hf_sam")
class HFSamTeacher(Teacher):
    """A transformers ``SamVisionModel`` (SAM ViT-H/L/B image encoder) as frozen SAMI teacher.

    ``pretrained``: a Hub id such as ``facebook/sam-vit-huge`` (a ``SamModel`` checkpoint works: its vision
    tower is taken) or a local directory; ``config``: a ``SamVisionConfig`` dict for a randomly initialised
    teacher (tests, smoke runs). Output: ``last_hidden_state`` ``[B, 256, 64, 64]`` (the neck output).
    """

    def __init__(self, pretrained: Optional[str] = None, config: Optional[dict] = None,
                 input_size: Optional[int] = None, resize_mode: str = "bilinear", seed: int = 0) -> None:
        from transformers import SamVisionConfig, SamVisionModel

        if (pretrained is None) == (config is None):
            raise ValueError("give exactly one of pretrained= (Hub id or directory) or config= (random teacher)")
        if pretrained is not None:
            model = SamVisionModel.from_pretrained(pretrained)
        else:
            # SamVisionConfig's default initializer_range (1e-10) gives a teacher whose features are ~0;
            # a random teacher is only useful with weights of ordinary scale.
            config = {"initializer_range": 0.02, **config}
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # every rank / resumed run gets the same random teacher
                model = SamVisionModel(SamVisionConfig(**config))
        super().__init__(input_size or model.config.image_size, resize_mode)
        if self.input_size != model.config.image_size:
            raise ValueError(f"SamVisionModel takes {model.config.image_size}-px inputs, input_size is {self.input_size}")
        self.model = model
        self.out_channels = model.config.output_channels
        self.freeze()

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=images).last_hidden_state
