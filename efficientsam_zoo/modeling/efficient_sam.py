"""EfficientSAM: ViT image encoder + sparse prompt encoder + two-way mask decoder.

The forward contract is the official release's:

``forward(batched_images [B,3,H,W] in 0..1, batched_points [B,Q,N,2] (x, y) in the images' pixel frame,
batched_point_labels [B,Q,N])`` -> ``(mask logits [B,Q,3,H,W], iou predictions [B,Q,3])``.

Images are *stretched* (bilinear, no letterbox) to ``img_size`` x ``img_size`` and normalised with
ImageNet mean/std; points are rescaled into that frame (negative coordinates mark padding and stay
``-1``); each query is padded with label ``-1`` or truncated to ``decoder_max_num_input_points`` (6);
low-resolution logits (``img_size / 4``) are upsampled bicubically to the requested output size.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .mask_decoder import MaskDecoder, TwoWayTransformer
from .prompt_encoder import NO_MASK_PROMPTS, PromptEncoder
from .vit import ViT

__all__ = ["EfficientSamSpec", "EfficientSam", "use_reference_arithmetic", "normalize_images", "rescale_points",
           "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_images(images: torch.Tensor, size: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """RGB images ``[B, 3, H, W]`` on a 0..1 scale -> stretched (bilinear, no letterbox) to ``size`` x ``size`` and
    normalised with ``mean`` / ``std`` (``[1, 3, 1, 1]``, 0..1 scale). The model's and the HF processor's step."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB images [B, 3, H, W] on a 0..1 scale, got shape {tuple(images.shape)}")
    # Always resized (the identity, exactly, at ``size`` x ``size``): no branch on the image size, so exported graphs
    # (torch.export, ONNX) take every size with one program.
    images = F.interpolate(images, (size, size), mode="bilinear")
    return (images - mean.to(images.dtype)) / std.to(images.dtype)


def _concrete(t: torch.Tensor) -> bool:
    """A real tensor with values to look at (not traced, compiled, exported, fake, or inside a CUDA-graph capture,
    where reading a value back would synchronise)."""
    return (type(t) in (torch.Tensor, nn.Parameter) and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling()
            and not (t.is_cuda and torch.cuda.is_current_stream_capturing()))


def check_images(images: torch.Tensor) -> None:
    """Model inputs must be float RGB on a 0..1 scale: refuse uint8 / integer pixels and NaN / inf with the fix."""
    if not images.is_floating_point():
        raise TypeError(f"images must be float on a 0..1 scale, got {images.dtype} pixels; divide uint8 images by "
                        "255 (or pass the array to EfficientSamPredictor.set_image, which accepts uint8 / uint16)")
    if _concrete(images) and images.numel() and not bool(torch.isfinite(images).all()):
        n = int((~torch.isfinite(images)).sum())
        raise ValueError(f"images hold {n} non-finite values (NaN or inf); replace them (torch.nan_to_num) first")


def rescale_points(points: torch.Tensor, input_h, input_w, size: int) -> torch.Tensor:
    """(x, y) pixels ``[..., 2]`` of an ``input_h`` x ``input_w`` image -> the ``size`` x ``size`` model frame;
    negative coordinates mark padding and become -1."""
    x, y = points[..., 0], points[..., 1]
    pad = torch.full_like(x, -1.0)
    x = torch.where(x >= 0, x * size / input_w, pad)
    y = torch.where(y >= 0, y * size / input_h, pad)
    return torch.stack([x, y], dim=-1)


@dataclass
class EfficientSamSpec:
    """Every architecture number of an EfficientSAM model (defaults: the released ViT-Ti model)."""

    img_size: int = 1024  # the image encoder: a plain ViT working at img_size x img_size
    patch_size: int = 16
    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_ratio: float = 4.0
    pretrain_img_size: int = 224  # the grid its position embedding is stored at (+ a cls slot)
    neck_dim: int = 256  # SAM's convolutional neck: the image embedding's channels
    decoder_max_num_input_points: int = 6  # prompt points per query (a box counts as two)
    decoder_depth: int = 2  # the two-way transformer of the mask decoder
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    upscaling_layer_dims: Tuple[int, ...] = (64, 32)  # transposed convs from the embedding to the mask grid
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3  # linear layers of the IoU head, as MaskDecoder counts them (2 hidden + output)
    iou_head_hidden_dim: int = 256
    negative_points: bool = False  # label 0 = SAM's negative click (a learned embedding; the release has none)
    mask_prompts: bool = False  # SAM's dense mask prompt (the release has none)
    pixel_mean: Tuple[float, ...] = field(default=IMAGENET_MEAN)
    pixel_std: Tuple[float, ...] = field(default=IMAGENET_STD)

    def replace(self, **overrides) -> "EfficientSamSpec":
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown EfficientSAM option(s) {unknown}; known: {sorted(known)}")
        return EfficientSamSpec(**{**asdict(self), **overrides})

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("upscaling_layer_dims", "pixel_mean", "pixel_std"):
            d[k] = list(d[k])
        return d


class EfficientSam(nn.Module):
    """EfficientSAM: :class:`ViT` image encoder (with SAM's neck) + :class:`PromptEncoder` + :class:`MaskDecoder`.

    Build with :meth:`from_spec` (or ``build_efficient_sam``). Inputs follow the release: images on a 0..1 scale
    (:meth:`get_image_embeddings` normalises them), prompts in the images' pixel frame (:meth:`predict_masks`
    rescales them). See the module docstring for the forward contract.
    """

    mask_threshold: float = 0.0
    image_format: str = "RGB"

    def __init__(self, image_encoder: ViT, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder,
                 decoder_max_num_input_points: int = EfficientSamSpec.decoder_max_num_input_points,
                 pixel_mean: Sequence[float] = IMAGENET_MEAN, pixel_std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.decoder_max_num_input_points = decoder_max_num_input_points
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(1, 3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(1, 3, 1, 1), False)
        self.spec: Optional[EfficientSamSpec] = None

    @classmethod
    def from_spec(cls, spec: EfficientSamSpec) -> "EfficientSam":
        encoder = ViT(img_size=spec.img_size, patch_size=spec.patch_size, embed_dim=spec.embed_dim,
                      depth=spec.depth, num_heads=spec.num_heads, mlp_ratio=spec.mlp_ratio,
                      pretrain_img_size=spec.pretrain_img_size, neck_dim=spec.neck_dim)
        grid = spec.img_size // spec.patch_size
        prompt_encoder = PromptEncoder(spec.neck_dim, (grid, grid), (spec.img_size, spec.img_size),
                                       negative_points=spec.negative_points, mask_prompts=spec.mask_prompts)
        decoder = MaskDecoder(
            transformer_dim=spec.neck_dim,
            transformer=TwoWayTransformer(spec.decoder_depth, spec.neck_dim, spec.decoder_num_heads,
                                          spec.decoder_mlp_dim),
            num_multimask_outputs=spec.num_multimask_outputs,
            iou_head_depth=spec.iou_head_depth,
            iou_head_hidden_dim=spec.iou_head_hidden_dim,
            upscaling_layer_dims=spec.upscaling_layer_dims,
        )
        model = cls(encoder, prompt_encoder, decoder, spec.decoder_max_num_input_points,
                    spec.pixel_mean, spec.pixel_std)
        model.spec = spec
        return model

    @property
    def img_size(self) -> int:
        return self.image_encoder.img_size

    @property
    def negative_points(self) -> bool:
        """Label 0 is a negative click (a trained embedding); the released weights have none."""
        return self.prompt_encoder.negative_points

    @property
    def mask_prompts(self) -> bool:
        """The model takes the previous round's low-resolution logits as a mask prompt; the released weights do not."""
        return self.prompt_encoder.mask_prompts

    def extension_keys(self) -> Tuple[str, ...]:
        """State-dict keys of the switched-on prompts (``negative_points``, ``mask_prompts``): what a released
        checkpoint lacks and a switched-on model may start from zero."""
        return tuple(k for k in self.state_dict() if k.startswith((
            "prompt_encoder.negative_point_embeddings.", "prompt_encoder.mask_downscaling.",
            "prompt_encoder.no_mask_embed.")))

    # -- image side -------------------------------------------------------------------------------
    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Stretch to ``img_size`` x ``img_size`` (bilinear) and normalise; ``x`` is on a 0..1 scale."""
        return normalize_images(x, self.img_size, self.pixel_mean, self.pixel_std)

    def get_image_embeddings(self, batched_images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` **on a 0..1 scale** (the release's contract; normalised here) -> embeddings
        ``[B, 256, img_size/16, img_size/16]``. The HF ``EfficientSamModel.get_image_embeddings`` takes the
        processor's already normalised ``pixel_values`` instead, as transformers' ``SamModel`` does.

        Float images of any precision are cast to the encoder's (a ``.half()`` model takes float32 images);
        integer pixels and non-finite values are refused with the fix named."""
        check_images(batched_images)
        return self.embed_images(batched_images)

    def embed_images(self, batched_images: torch.Tensor) -> torch.Tensor:
        """:meth:`get_image_embeddings` without the pixel checks, for callers that checked the images already (the
        predictor reads them through ``utils.image.image_to_tensor``)."""
        x = self.preprocess(batched_images)
        weight = self.image_encoder.patch_embed.proj.weight
        return self.image_encoder(x.to(weight.dtype) if x.dtype != weight.dtype else x)

    # -- prompt side ------------------------------------------------------------------------------
    def get_rescaled_pts(self, batched_points: torch.Tensor, input_h: int, input_w: int) -> torch.Tensor:
        """Pixel coordinates of an ``input_h`` x ``input_w`` image -> the model frame; negatives -> -1."""
        return rescale_points(batched_points, input_h, input_w, self.img_size)

    def pad_prompts(self, points: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pad (point -1, label -1) or truncate the point axis to ``decoder_max_num_input_points``.

        One branch-free ``F.pad``: a negative pad truncates, so exported graphs keep a dynamic point axis.
        """
        extra = self.decoder_max_num_input_points - points.shape[2]
        return F.pad(points, (0, 0, 0, extra), value=-1.0), F.pad(labels, (0, extra), value=-1)

    def predict_masks(self, image_embeddings: torch.Tensor, batched_points: torch.Tensor,
                      batched_point_labels: torch.Tensor, multimask_output: bool, input_h: int, input_w: int,
                      output_h: int = -1, output_w: int = -1, mask_input: Optional[torch.Tensor] = None,
                      has_mask_input: Optional[torch.Tensor] = None, all_tokens: bool = False
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decoder only. Points ``[B,Q,N,2]`` in an ``input_h`` x ``input_w`` frame, labels ``[B,Q,N]``, as checked by
        the caller (``prompts.assemble_prompts`` in the predictor and the HF classes; :meth:`forward` checks its own).

        ``mask_input`` ``[B, Q, 1, img_size/4, img_size/4]``: the previous round's low-res logits as mask prompts (models
        with ``mask_prompts`` only). ``has_mask_input`` ``[B, Q]`` (1 / 0, with ``mask_input``): which queries take
        their mask prompt; the others are decoded as without one (SAM's ONNX switch, so one graph serves both).
        ``all_tokens``: every mask token's output, the single-mask token first (``MaskDecoder``; the ONNX graph's).

        Returns logits ``[B,Q,M,output_h,output_w]`` (or the low-res ``img_size/4`` grid when no output
        size is given) and IoU predictions ``[B,Q,M]``, with ``M`` = 3 (multimask) or 1.
        """
        b, nq = batched_points.shape[:2]
        sparse, dense_pe = self._encode_prompts(image_embeddings, batched_points, batched_point_labels,
                                                input_h, input_w)
        low_res, iou = self.mask_decoder(self._add_dense(image_embeddings, mask_input, nq, has_mask_input), dense_pe,
                                         sparse, multimask_output, all_tokens=all_tokens)
        m, lh, lw = low_res.shape[1:]
        if output_h > 0 and output_w > 0:
            low_res = F.interpolate(low_res, (output_h, output_w), mode="bicubic")
            lh, lw = output_h, output_w
        return low_res.reshape(b, nq, m, lh, lw), iou.reshape(b, nq, m)

    def predict_masks_above(self, image_embeddings: torch.Tensor, batched_points: torch.Tensor,
                            batched_point_labels: torch.Tensor, input_h: int, input_w: int,
                            min_iou: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Segment everything's decoder call (the 3 multimask outputs): IoU predictions of every query
        ``[B, Q, 3]``, and low-res logits ``[K, 3, img_size/4, img_size/4]`` only of the ``K`` queries with an IoU
        prediction above ``min_iou``, with their flat ``B*Q`` indices ``[K]``.

        The IoU head reads the output tokens alone, so the upscaling (about a third of a decoder call) is skipped
        for queries the predicted-IoU filter drops whole; a kept query's logits are those of :meth:`predict_masks`
        (the token-side work runs on every query as there; the upscaling is computed row by row)."""
        b, nq = batched_points.shape[:2]
        sparse, dense_pe = self._encode_prompts(image_embeddings, batched_points, batched_point_labels,
                                                input_h, input_w)
        hyper_in, src, iou = self.mask_decoder.decode_tokens(self._add_dense(image_embeddings, None, nq), dense_pe,
                                                             sparse)
        iou = iou[:, 1:]
        index = torch.nonzero((iou > min_iou).any(1)).flatten()
        low_res = self.mask_decoder.upscale_masks(hyper_in[index], src[index], *image_embeddings.shape[-2:])[:, 1:]
        return low_res, iou.reshape(b, nq, -1), index

    def _add_dense(self, image_embeddings: torch.Tensor, mask_input: Optional[torch.Tensor], nq: int,
                   has_mask_input: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The image embedding plus the dense prompt: unchanged without ``mask_prompts``; plus ``no_mask_embed`` (shared
        by every query) without masks; per query ``[B, Q, C, h, w]`` with masks (``no_mask_embed`` for the queries
        whose ``has_mask_input`` is 0: ``1 * x + 0 * y`` is exactly ``x``)."""
        if mask_input is not None and not self.mask_prompts:
            raise ValueError(NO_MASK_PROMPTS)
        if not self.mask_prompts:
            return image_embeddings
        if mask_input is None:
            return image_embeddings + self.prompt_encoder.dense_embeddings(None).to(image_embeddings.dtype)
        b = image_embeddings.shape[0]
        want = (b, nq, 1, *self.prompt_encoder.mask_input_size)
        if tuple(mask_input.shape) != want:
            raise ValueError(f"mask_input must be the previous round's low-res logits [B, Q, 1, h, w] = {want}, got "
                             f"{tuple(mask_input.shape)}")
        dense = self.prompt_encoder.dense_embeddings(mask_input.reshape(b * nq, *want[2:]).to(image_embeddings.dtype))
        dense = dense.reshape(b, nq, *dense.shape[1:])
        if has_mask_input is not None:
            has = has_mask_input.to(dense.dtype).reshape(b, nq, 1, 1, 1)
            dense = has * dense + (1 - has) * self.prompt_encoder.dense_embeddings(None).to(dense.dtype)
        return image_embeddings[:, None] + dense

    def _encode_prompts(self, image_embeddings: torch.Tensor, batched_points: torch.Tensor,
                        batched_point_labels: torch.Tensor, input_h: int, input_w: int
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Rescaled, padded prompts -> sparse embeddings ``[B, Q, T, C]`` and the dense positional encoding, in the
        embeddings' dtype. Only the tensors' shapes are checked here (the values are the caller's, see
        :meth:`predict_masks`)."""
        _check_prompts(batched_points, batched_point_labels, image_embeddings.shape[0])
        b, nq = batched_points.shape[:2]
        points = self.get_rescaled_pts(batched_points, input_h, input_w)
        points, labels = self.pad_prompts(points, batched_point_labels)
        sparse = self.prompt_encoder(points.reshape(b * nq, -1, 2), labels.reshape(b * nq, -1))
        sparse = sparse.reshape(b, nq, sparse.shape[1], sparse.shape[2]).to(image_embeddings.dtype)
        return sparse, self.prompt_encoder.get_dense_pe().to(image_embeddings.dtype)

    def forward(self, batched_images: torch.Tensor, batched_points: torch.Tensor,
                batched_point_labels: torch.Tensor, scale_to_original_image_size: bool = True
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """End to end: images ``[B,3,H,W]`` (0..1), points ``[B,Q,N,2]``, labels ``[B,Q,N]``."""
        if batched_images.ndim != 4:
            raise ValueError(f"batched_images must be [B, 3, H, W], got shape {tuple(batched_images.shape)}")
        _, _, h, w = batched_images.shape
        if _concrete(batched_points) and not bool(torch.isfinite(batched_points).all()):
            raise ValueError("batched_points hold NaN or inf; prompts must be finite pixel coordinates (use -1 with "
                             "label -1 for padding)")
        embeddings = self.get_image_embeddings(batched_images)
        out_h, out_w = (h, w) if scale_to_original_image_size else (-1, -1)
        return self.predict_masks(embeddings, batched_points, batched_point_labels, multimask_output=True,
                                  input_h=h, input_w=w, output_h=out_h, output_w=out_w)


def _check_prompts(points: torch.Tensor, labels: torch.Tensor, batch: int) -> None:
    if points.ndim != 4 or points.shape[-1] != 2:
        raise ValueError(f"batched_points must be [B, Q, N, 2] (x, y), got shape {tuple(points.shape)}")
    if labels.shape != points.shape[:3]:
        raise ValueError(f"batched_point_labels must be [B, Q, N] = {tuple(points.shape[:3])}, "
                         f"got {tuple(labels.shape)}")
    if points.shape[0] != batch:
        raise ValueError(f"prompts are for {points.shape[0]} images but there are {batch} image embeddings")
    if points.shape[1] == 0 or points.shape[2] == 0:
        raise ValueError(f"empty prompt: batched_points has shape {tuple(points.shape)}; give at least one point")


def use_reference_arithmetic(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch ``model`` to the release's arithmetic (``enabled=True``) or back to the fast path.

    Reference: attention written out as matmul-softmax-matmul and the image embedding copied once per
    query before the decoder. Fast (default): fused scaled-dot-product attention and one shared copy of
    the image tokens. Both compute the same function; the benchmarks time one against the other.
    """
    for module in model.modules():
        if hasattr(module, "fused"):
            module.fused = not enabled
        if isinstance(module, TwoWayTransformer):
            module.tile_per_query = enabled
    return model
