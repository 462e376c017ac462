"""EfficientTAM training through mmengine's Runner: ``VideoClipDataset`` (``data.video``'s layouts and clip sampling)
and ``EfficientTamTrainer`` (SAM 2's simulated interaction and losses on the transformers video model).

The video model is the Hugging Face adapter's ``EfficientTamVideoModel``: this module builds it through that
adapter's public builder, imported where the model is built (the one sanctioned edge between two adapters, listed in
``tests/core/test_layout.py``: EfficientTAM exists only as transformers modules, and a trainer needs a model).
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel

from ...data.video import VideoClips, open_video_source
from ...modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD
from ...registry import EFFICIENT_TAM_NAMES
from .models import sample_generators
from .scope import DATASETS, HOOKS, MODELS

__all__ = ["VideoClipDataset", "EfficientTamTrainer", "SaveVideoModelHook"]


@DATASETS.register_module()
class VideoClipDataset(torch.utils.data.Dataset):
    """Clips of a video dataset (``data.video.VideoClips``): ``layout`` ``"davis"`` (DAVIS / YouTube-VOS / MOSE,
    the generated moving shapes), ``"sa-v"`` or ``"images"`` (one-frame videos of a COCO JSON / mask folder, given as
    ``source=dict(annotations=...)`` or ``source=dict(masks=...)``) under ``data_root``."""

    def __init__(self, data_root: str, layout: str = "davis", num_frames: int = 8, max_objects: int = 3,
                 img_size: int = 1024, seed: int = 0, flip_prob: float = 0.5, source: Optional[dict] = None) -> None:
        self.clips = VideoClips(open_video_source(layout, data_root, **(source or {})), num_frames=num_frames,
                                max_objects=max_objects, img_size=img_size, seed=seed, flip_prob=flip_prob)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, idx: int) -> dict:
        return self.clips[idx]


@MODELS.register_module()
class EfficientTamTrainer(BaseModel):
    """EfficientTAM trained as SAM 2 trains (``integrations.hf.efficienttam_training``).

    ``variant``: an EfficientTAM name (``efficienttam-ti``, ``efficienttam-s-2`` ...); ``config`` overrides of its
    ``EfficientTamVideoConfig`` (``image_size``, ``vision_config``, ``memory_attention_num_layers`` ...).
    ``init_checkpoint``: a SAMI backbone export (the image encoder; everything else starts fresh), an EfficientSAM
    checkpoint or model directory (image encoder, prompt encoder and mask decoder, which then keeps EfficientSAM's
    activations: ``efficientsam_decoder=True`` unless the config says otherwise) or an EfficientTAM release file /
    ``save_pretrained`` directory (everything). ``interaction``: fields of ``InteractionSettings``.
    ``freeze_image_encoder``: SAM 2's switch of that name. ``memory_readout_gain``: a start other than SAM 2's for a
    fresh memory (``efficienttam_training.sam2_memory_init_``): the memory attention's readout scaled by this much.
    """

    def __init__(self, variant: str = EFFICIENT_TAM_NAMES[0], config: Optional[dict] = None,
                 init_checkpoint: Optional[str] = None, interaction: Optional[dict] = None,
                 freeze_image_encoder: bool = False, memory_readout_gain: float = 1.0, seed: int = 0,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type="BaseDataPreprocessor"), init_cfg=init_cfg)
        from ..hf.efficienttam import build_efficienttam_video_model, efficienttam_config_for
        from ..hf.efficienttam_training import (InteractionSettings, checkpoint_kind, init_from_checkpoint,
                                                sam2_memory_init_)

        config = dict(config or {})
        self.init_kind = checkpoint_kind(init_checkpoint) if init_checkpoint else None
        if self.init_kind == "efficientsam":
            config.setdefault("efficientsam_decoder", True)  # the decoder keeps computing what EfficientSAM's did
        cfg = efficienttam_config_for(variant, **config)
        self.model = build_efficienttam_video_model(cfg, mode="train")
        if self.init_kind != "efficienttam":  # the memory parts start fresh, as in SAM 2
            sam2_memory_init_(self.model, memory_readout_gain)
        if init_checkpoint:
            init_from_checkpoint(self.model, init_checkpoint, self.init_kind)
        if freeze_image_encoder:
            self.model.vision_encoder.requires_grad_(False)
        self.interaction = InteractionSettings(**(interaction or {}))
        self.seed = seed
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1) * 255, persistent=False)

    def forward(self, frames: torch.Tensor = None, masks: torch.Tensor = None, valid: torch.Tensor = None,
                index: torch.Tensor = None, mode: str = "loss", **kwargs):
        from ..hf.efficienttam_training import clip_losses

        if mode != "loss":
            raise ValueError("EfficientTamTrainer only trains (mode='loss'); score it with efficientsam-zoo eval-video")
        x = (frames.float() - self.pixel_mean) / self.pixel_std
        return clip_losses(self.model, x, masks, valid, sample_generators(self.seed, index), self.interaction)


@HOOKS.register_module()
class SaveVideoModelHook(Hook):
    """After training, the trained ``EfficientTamVideoModel`` as a ``save_pretrained`` directory ``<work_dir>/model``
    (rank 0), which ``track``, ``eval-video``, the demo and ``from_pretrained`` load."""

    priority = "VERY_LOW"

    def after_train(self, runner) -> None:
        from mmengine.dist import is_main_process
        from mmengine.model import is_model_wrapper

        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if is_main_process():
            model.model.save_pretrained(os.path.join(runner.work_dir, "model"))
