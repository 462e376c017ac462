"""Frozen SAMI teachers from transformers, registered in ``modeling.teachers.TEACHERS`` on import."""
from __future__ import annotations

from typing import Optional

import torch

from ...modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD
from ...modeling.teachers import Teacher, register_teacher

__all__ = ["HFSamTeacher", "HFClipTeacher"]


def _hf_model(model_cls, config_cls, pretrained: Optional[str], config: Optional[dict], seed: int):
    """A transformers vision tower from a Hub id / directory, or randomly initialised from a config dict (seeded:
    every rank and every resumed run gets the same random teacher)."""
    if (pretrained is None) == (config is None):
        raise ValueError("give exactly one of pretrained= (Hub id or directory) or config= (random teacher)")
    if pretrained is not None:
        return model_cls.from_pretrained(pretrained)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_cls(config_cls(**config))


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

        # SamVisionConfig's default initializer_range (1e-10) gives a random teacher whose features are ~0;
        # a random teacher is only useful with weights of ordinary scale.
        model = _hf_model(SamVisionModel, SamVisionConfig, pretrained,
                          None if config is None else {"initializer_range": 0.02, **config}, seed)
        super().__init__(input_size or model.config.image_size, resize_mode)
        if self.input_size != model.config.image_size:
            raise ValueError(f"SamVisionModel takes {model.config.image_size}-px inputs, input_size is {self.input_size}")
        self.model = model
        self.out_channels = model.config.output_channels
        self.freeze()

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=images).last_hidden_state


#: CLIP's own input normalisation (0..1 scale), as its image processors apply it.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@register_teacher("hf_clip")
class HFClipTeacher(Teacher):
    """A transformers ``CLIPVisionModel`` as frozen SAMI teacher (the paper's reconstruction-target ablation).

    The student's ImageNet-normalised images are re-normalised to CLIP's statistics; the output is the last layer's
    patch tokens (class token dropped) as a map ``[B, hidden, g, g]`` (14x14x768 for ``openai/clip-vit-base-patch16``
    at 224 px), which SAMI resizes to the student's grid like any teacher map.
    ``pretrained``: a Hub id or directory; ``config``: a ``CLIPVisionConfig`` dict for a random teacher (tests).
    """

    def __init__(self, pretrained: Optional[str] = None, config: Optional[dict] = None,
                 input_size: Optional[int] = None, resize_mode: str = "bicubic", seed: int = 0) -> None:
        from transformers import CLIPVisionConfig, CLIPVisionModel

        model = _hf_model(CLIPVisionModel, CLIPVisionConfig, pretrained, config, seed)
        super().__init__(input_size or model.config.image_size, resize_mode)
        self.model = model
        self.out_channels = model.config.hidden_size
        self.grid = self.input_size // model.config.patch_size
        # normalised-for-ImageNet -> normalised-for-CLIP: x * a + b per channel
        scale = torch.tensor(IMAGENET_STD) / torch.tensor(CLIP_STD)
        shift = (torch.tensor(IMAGENET_MEAN) - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
        self.register_buffer("renorm_scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("renorm_shift", shift.view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        x = images * self.renorm_scale + self.renorm_shift
        tokens = self.model(pixel_values=x, interpolate_pos_encoding=self.input_size != self.model.config.image_size
                            ).last_hidden_state[:, 1:]
        b, n, c = tokens.shape
        return tokens.transpose(1, 2).reshape(b, c, self.grid, self.grid)
