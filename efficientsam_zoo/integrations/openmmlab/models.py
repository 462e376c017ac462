"""The package's own mmengine models: SAMI pretraining and EfficientSAM finetuning on SA-1B. The networks are
``modeling.Sami`` / ``modeling.EfficientSam``; the training arithmetic lives in ``modeling`` / ``training``."""
from __future__ import annotations

import os
from typing import List, Optional

import numpy as np
import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel

from ...build import build_efficient_sam
from ...checkpoints import atomic_torch_save, load_segmenter_init, read_model_spec
from ...modeling.sami import Sami
from ...modeling.teachers import build_teacher
from ...modeling.vit import build_vit
from ...training.sam_finetune import finetune_losses
from .lora import add_lora
from .scope import MODELS

__all__ = ["SamiPretrainer", "EfficientSamFinetuner", "sample_generators", "RECIPES"]


def sample_generators(seed: int, sample_indices) -> List[torch.Generator]:
    """One CPU generator per sample, seeded by (``seed``, training iteration, the sample's dataset index).

    A step's randomness (SAMI's masks, SA-1B's simulated prompts) is then the same whether the batch runs in one
    process or is split across several, and after a resume, which restores the iteration but not global RNGs.
    """
    step = int(MessageHub.get_current_instance().get_info("iter", 0))
    if sample_indices is None:
        raise ValueError("per-sample randomness needs the samples' dataset indices (sample_idx / index)")
    out = []
    for idx in torch.as_tensor(sample_indices).reshape(-1).tolist():
        state = np.random.SeedSequence([int(seed), step, int(idx)]).generate_state(1)[0]
        out.append(torch.Generator().manual_seed(int(state)))
    return out


@MODELS.register_module()
class SamiPretrainer(BaseModel):
    """SAMI as an mmengine model: ``mode="loss"`` runs the frozen teacher and returns ``{"loss": mse}``.

    The teacher is held outside the module tree: it is moved with the model (``.to`` / ``.cuda``) but is not
    part of ``state_dict`` (checkpoints stay student-sized) nor of the optimiser's parameters.
    ``loss`` (``"mse"`` / ``"cosine"``), ``decoder.queries`` (``"masked"`` / ``"all"``) and ``target``
    (``"teacher"`` / ``"pixels"``: MAE, ``teacher=None``) are :class:`~efficientsam_zoo.modeling.sami.Sami`'s options.
    """

    def __init__(self, student: dict, teacher: Optional[dict], mask_ratio: float = 0.75,
                 decoder: Optional[dict] = None, target_resize: str = "area", loss: str = "mse",
                 target: str = "teacher", seed: int = 0, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if (target == "pixels") != (teacher is None):
            raise ValueError("target='pixels' (MAE) takes no teacher (teacher=None); target='teacher' needs one")
        if teacher is None:
            teacher_module, teacher_dim = None, 0  # the pixel head's width comes from the patch size
        elif teacher.get("type") == "precomputed":  # targets come with the data (PrecomputedFeatureDataset)
            teacher_module, teacher_dim = None, int(teacher["out_channels"])
        else:
            teacher_module = build_teacher(teacher)
            teacher_dim = teacher_module.out_channels
        decoder = dict(decoder or {})
        student = {"img_size": 224, **student, "neck_dim": None}
        self.sami = Sami(build_vit(**student), teacher_dim=teacher_dim, mask_ratio=mask_ratio,
                         decoder_dim=decoder.get("dim", 512), decoder_depth=decoder.get("depth", 8),
                         decoder_heads=decoder.get("num_heads", 16), target_resize=target_resize, loss=loss,
                         decoder_queries=decoder.get("queries", "masked"), target=target)
        self.seed = seed
        self._teacher = [teacher_module]

    @property
    def teacher(self):
        return self._teacher[0]

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self._teacher[0] is not None:
            self._teacher[0]._apply(fn, *args, **kwargs)
        return self

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = "tensor"):
        if mode == "loss":
            if self.sami.target == "pixels":
                target = None
            elif self.teacher is None:
                if not isinstance(data_samples, dict) or "teacher_features" not in data_samples:
                    raise ValueError("teacher type 'precomputed' needs a PrecomputedFeatureDataset")
                tokens = data_samples["teacher_features"]  # [B, H*W, C] on the student grid
                h, w = self.sami.encoder.grid_size
                target = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
            else:
                with torch.no_grad():
                    target = self.teacher(inputs)
            gens = sample_generators(self.seed, (data_samples or {}).get("sample_idx"))
            n_tokens = self.sami.encoder.grid_size[0] * self.sami.encoder.grid_size[1]
            noise = torch.stack([torch.rand(n_tokens, generator=g) for g in gens])
            return {"loss": self.sami(inputs, target, noise=noise)["loss"]}
        out = self.sami.forward_features(inputs)
        if mode == "predict":
            return [dict(pred=p, mask=m) for p, m in zip(out["pred"], out["mask"])]
        return out["pred"]


#: The finetuning recipes: every parameter trains; the decoder (prompt encoder + mask decoder) alone on a frozen encoder
#: whose embeddings are cached; LoRA adapters on the encoder's attention plus the decoder.
RECIPES = ("full", "decoder", "lora")


@MODELS.register_module()
class EfficientSamFinetuner(BaseModel):
    """EfficientSAM finetuned with SAM's simulated prompts and losses (``training.sam_finetune``).

    ``init_checkpoint``: a SAMI backbone export / HF ``SamiViTModel`` directory (into the image encoder; its SAM
    neck and the decoder start fresh), an official EfficientSAM checkpoint or a finetuned model directory (everything;
    prompt switches the file lacks start as the prompt encoder initialises them). Loaded when the model is built, before the recipe applies.
    ``recipe`` (:data:`RECIPES`): ``"full"``; ``"decoder"`` (the image encoder frozen, its embeddings cached per sample
    in ``embedding_cache`` when given, so later epochs cost only the decoder); ``"lora"`` (``lora`` keywords, e.g.
    ``dict(rank=8, alpha=16)``: peft adapters on the encoder's attention, the encoder's own weights frozen).
    ``mask_only_rounds``: SAM's rounds with the mask prompt alone (models with ``mask_prompts``).
    """

    def __init__(self, variant: str, overrides: Optional[dict] = None, init_checkpoint: Optional[str] = None,
                 iterative_rounds: int = 2, box_prob: float = 0.5, mask_only_rounds: int = 0, recipe: str = "full",
                 lora: Optional[dict] = None, embedding_cache: Optional[str] = None, seed: int = 0,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type="BaseDataPreprocessor"), init_cfg=init_cfg)
        if recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
        # a finetuned model directory brings its own architecture (image size, depth); the overrides still apply
        start = read_model_spec(init_checkpoint) if init_checkpoint else None
        self.sam = build_efficient_sam(start or variant, **(overrides or {})).train()
        if iterative_rounds < 0 or 2 + iterative_rounds > self.sam.decoder_max_num_input_points:
            raise ValueError(f"iterative_rounds={iterative_rounds}: a box plus the extra points must fit in "
                             f"{self.sam.decoder_max_num_input_points} prompt points")
        if init_checkpoint:
            load_segmenter_init(self.sam, init_checkpoint)
        self.recipe, self.embedding_cache = recipe, embedding_cache
        if recipe == "decoder":
            self.sam.image_encoder.requires_grad_(False)
        elif recipe == "lora":
            add_lora(self.sam.image_encoder, **(lora or {}))
        self.iterative_rounds, self.box_prob, self.mask_only_rounds = iterative_rounds, box_prob, mask_only_rounds
        self.seed = seed

    def _embeddings(self, image: torch.Tensor, index: torch.Tensor) -> Optional[torch.Tensor]:
        """The frozen encoder's embeddings (``decoder`` recipe), read from / written to the per-sample cache."""
        if self.recipe != "decoder":
            return None
        out = []
        with torch.no_grad():
            for x, i in zip(image, torch.as_tensor(index).reshape(-1).tolist()):
                path = os.path.join(self.embedding_cache, f"{int(i)}.pt") if self.embedding_cache else None
                if path and os.path.isfile(path):
                    out.append(torch.load(path, map_location=x.device, weights_only=True))
                    continue
                emb = self.sam.get_image_embeddings(x[None])[0]
                if path:
                    atomic_torch_save(emb.cpu(), path)
                out.append(emb)
        return torch.stack(out)

    def forward(self, image: torch.Tensor = None, masks: torch.Tensor = None, boxes: torch.Tensor = None,
                valid: torch.Tensor = None, index: torch.Tensor = None, mode: str = "loss", **kwargs):
        if mode != "loss":
            raise ValueError("EfficientSamFinetuner only trains (mode='loss'); evaluate with efficientsam-zoo eval-*")
        return finetune_losses(self.sam, image, masks, boxes, valid, sample_generators(self.seed, index),
                               self.iterative_rounds, self.box_prob, self.mask_only_rounds,
                               embeddings=self._embeddings(image, index))
