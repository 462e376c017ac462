"""THE table of model variants: every other place derives its names, sizes, files and numbers from it.

=================  ==========  =========================  ==============================================
name               backbone    Hub repository             released weights (tried in this order)
=================  ==========  =========================  ==============================================
efficientsam-ti    vit-ti      merve/EfficientSAM         efficient_sam_vitt.pt (Hub), the GitHub file
efficientsam-s     vit-s       merve/EfficientSAM         efficient_sam_vits.pt (Hub), the GitHub
                                                          .pt.zip, efficient_sam_s_cpu.jit (TorchScript)
sami-vit-ti/s/b    vit-ti/s/b  efficientsam-zoo/sami-...  (not published yet; pass a local directory)
efficienttam-ti    vit-ti      yunyangx/efficient-track-  efficienttam_ti.pt; also -ti-1, -ti-2 (landmark
efficienttam-s     vit-s       anything                   memory attention) and -ti-512x512, likewise for -s
=================  ==========  =========================  ==============================================

The backbone sizes themselves are :data:`efficientsam_zoo.modeling.vit.VIT_SIZES`; the paper's numbers
(Tables 1-5 and 8) are stored here once and feed the model cards, the CLI choices, the HF aliases and
the timm names. Downloading lives in :mod:`efficientsam_zoo.hub`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .modeling.efficient_sam import EfficientSamSpec
from .modeling.vit import VIT_SIZES

__all__ = ["PaperResult", "WeightSource", "TrackerSpec", "Variant", "VARIANTS", "EFFICIENT_SAM_NAMES", "SAMI_NAMES",
           "EFFICIENT_TAM_NAMES", "LANDMARK_POOLINGS", "DEFAULT_MODEL", "PAPER", "ETAM_PAPER", "get_variant",
           "get_spec", "EFFICIENT_SAM_SPECS", "variant_of_width"]

PAPER = dict(title="EfficientSAM: Leveraged Masked Image Pretraining for Efficient Segment Anything",
             citation="Xiong et al., 2023", url="https://arxiv.org/abs/2312.00863")
OFFICIAL_GITHUB = "https://github.com/yformer/EfficientSAM/raw/main/weights/"


@dataclass(frozen=True)
class PaperResult:
    """One number of the paper (as reported there), in the vocabulary of a Hub model-index entry."""

    task: str  # HF task type, e.g. "mask-generation"
    experiment: str  # e.g. "Zero-shot single point valid mask (Table 4)"
    dataset: str  # e.g. "coco"
    dataset_name: str  # e.g. "COCO 2017 val"
    metric: str  # e.g. "mIoU"
    metric_name: str  # e.g. "mIoU (box)"
    value: float


@dataclass(frozen=True)
class WeightSource:
    """Where released weights can be found: ``kind`` is ``state_dict`` (a ``{"model": ...}`` .pt), ``zip`` (that
    .pt inside a .zip) or ``torchscript`` (a scripted whole model whose ``state_dict()`` is taken); the file is
    ``filename`` in Hub repository ``repo_id``, or at ``url``."""

    kind: str
    filename: str
    repo_id: Optional[str] = None
    url: Optional[str] = None

    def where(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/resolve/main/{self.filename}" if self.repo_id else self.url


#: Where an EfficientTAM release puts the ``2 ln 2`` of its pooled memory (see :class:`TrackerSpec`).
LANDMARK_POOLINGS = (None, "logits", "keys")


@dataclass(frozen=True)
class TrackerSpec:
    """What distinguishes the EfficientTAM releases (``yformer/EfficientTAM``, ``configs/efficienttam/*.yaml``); the rest
    is SAM 2's video model with a SAMI ViT as its image encoder (see ``integrations/hf/efficienttam.py``).

    ``landmark_pooling``: ``None`` is SAM 2's full memory cross-attention (the plain and 512x512 releases); the ``_1``
    releases average-pool each past frame's memory keys and values 2x2 into landmarks and add ``2 ln 2`` to the
    landmark logits (``"logits"``), the ``_2`` releases add ``2 ln 2`` to the pooled key vectors instead (``"keys"``).
    """

    image_size: int = 1024
    landmark_pooling: Optional[str] = None

    def __post_init__(self) -> None:
        if self.landmark_pooling not in LANDMARK_POOLINGS:
            raise ValueError(f"landmark_pooling must be one of {LANDMARK_POOLINGS}, got {self.landmark_pooling!r}")


@dataclass(frozen=True)
class Variant:
    """One named model: what it is, where its weights live, what the paper reports for it."""

    name: str
    family: str  # "efficientsam" (promptable segmentation), "sami" (a plain pretrained backbone), "efficienttam"
    backbone: str  # a key of VIT_SIZES
    hub_repo: str
    description: str
    results: Tuple[PaperResult, ...] = ()
    weights: Tuple[WeightSource, ...] = ()
    throughput: Optional[str] = None  # paper Table 8
    timm_name: Optional[str] = None
    tracker: Optional[TrackerSpec] = None  # EfficientTAM's settings (family "efficienttam")

    @property
    def vit_size(self) -> dict:
        return VIT_SIZES[self.backbone]

    @property
    def is_segmenter(self) -> bool:
        return self.family == "efficientsam"

    def spec(self) -> EfficientSamSpec:
        """The :class:`EfficientSamSpec` of a segmenter (its encoder is this variant's backbone size)."""
        if not self.is_segmenter:
            raise ValueError(f"{self.name!r} is a backbone, not an EfficientSAM model")
        return EfficientSamSpec(**self.vit_size)


# -- the paper's numbers ------------------------------------------------------------------------------------
_T4 = "Zero-shot single point valid mask (Table 4)"
_T5 = "Zero-shot instance segmentation with ViTDet-H boxes (Table 5)"


def _segment_results(coco: Tuple[float, float, float, float], lvis: Tuple[float, float, float, float]
                     ) -> Tuple[PaperResult, ...]:
    """(box, 1 click, 3 clicks mIoU, mask AP) on COCO and LVIS, Tables 4 and 5."""
    sets = (("coco", "COCO 2017 val", coco), ("lvis", "LVIS v1 val", lvis))
    out: List[PaperResult] = []
    for ds, ds_name, (box, one, three, _) in sets:
        for metric_name, value in (("mIoU (box)", box), ("mIoU (1 click)", one), ("mIoU (3 clicks)", three)):
            out.append(PaperResult("mask-generation", _T4, ds, ds_name, "mIoU", metric_name, value))
    out += [PaperResult("instance-segmentation", _T5, ds, ds_name, "AP", "mask AP", ap) for ds, ds_name, (*_, ap) in sets]
    return tuple(out)


def _backbone_results(top1: float, box_ap: float, mask_ap: float, ade_miou: float) -> Tuple[PaperResult, ...]:
    """ImageNet top-1 (Table 1), ViTDet box / mask AP (Table 2), Mask2Former ADE20K mIoU (Table 3)."""
    t2 = "ViTDet Mask R-CNN on COCO (Table 2)"
    return (
        PaperResult("image-classification", "ImageNet-1K finetuning, 100 epochs (Table 1)", "imagenet-1k",
                    "ImageNet-1K val", "accuracy", "top-1", top1),
        PaperResult("object-detection", t2, "coco", "COCO 2017 val", "AP", "box AP", box_ap),
        PaperResult("instance-segmentation", t2, "coco", "COCO 2017 val", "AP", "mask AP", mask_ap),
        PaperResult("image-segmentation", "Mask2Former on ADE20K 512x512 (Table 3)", "ade20k", "ADE20K val", "mIoU",
                    "mIoU", ade_miou),
    )


_MIRROR = "merve/EfficientSAM"
_SIZE_WORD = {"vit-ti": "tiny", "vit-s": "small", "vit-b": "base"}


def _sami(backbone: str, results: Tuple[PaperResult, ...]) -> Variant:
    short = backbone.split("-")[1]
    size = VIT_SIZES[backbone]
    return Variant(
        name=f"sami-vit-{short}", family="sami", backbone=backbone, hub_repo=f"efficientsam-zoo/sami-vit-{short}",
        description=f"SAMI-pretrained ViT-{short.capitalize()} backbone "
                    f"({size['embed_dim']}-d, 12 blocks, {size['num_heads']} heads)",
        results=results, timm_name=f"sami_vit_{_SIZE_WORD[backbone]}_patch16_224")


ETAM_PAPER = dict(title="Efficient Track Anything", citation="Xiong et al., 2024", url="https://arxiv.org/abs/2411.18933")
_ETAM_REPO = "yunyangx/efficient-track-anything"
_ETAM_SUFFIX = {"": TrackerSpec(), "-1": TrackerSpec(landmark_pooling="logits"),
                "-2": TrackerSpec(landmark_pooling="keys"), "-512x512": TrackerSpec(image_size=512)}


def _vos_results(sav_test: float, davis17: float) -> Tuple[PaperResult, ...]:
    """Semi-supervised J&F on SA-V test and DAVIS 2017 val, as the EfficientTAM paper reports them."""
    exp = "Semi-supervised video object segmentation (EfficientTAM paper)"
    return (PaperResult("video-object-segmentation", exp, "sa-v", "SA-V test", "J&F", "J&F", sav_test),
            PaperResult("video-object-segmentation", exp, "davis", "DAVIS 2017 val", "J&F", "J&F", davis17))


def _efficienttam(backbone: str, suffix: str, results: Tuple[PaperResult, ...] = (),
                  throughput: Optional[str] = None) -> Variant:
    short = backbone.split("-")[1]
    tracker = _ETAM_SUFFIX[suffix]
    memory = {None: "SAM 2's memory attention", "logits": "landmark memory attention (logit bias)",
              "keys": "landmark memory attention (key bias)"}[tracker.landmark_pooling]
    filename = f"efficienttam_{short}{suffix.replace('-', '_')}.pt"
    return Variant(
        name=f"efficienttam-{short}{suffix}", family="efficienttam", backbone=backbone, hub_repo=_ETAM_REPO,
        description=f"EfficientTAM with a SAMI ViT-{short.capitalize()} image encoder, {memory}, "
                    f"{tracker.image_size} px", results=results, throughput=throughput,
        weights=(WeightSource("state_dict", filename, repo_id=_ETAM_REPO),), tracker=tracker)


VARIANTS: Dict[str, Variant] = {v.name: v for v in (
    Variant("efficientsam-ti", "efficientsam", "vit-ti", _MIRROR, "EfficientSAM with a ViT-Ti image encoder",
            results=_segment_results((75.7, 45.5, 67.2, 42.3), (74.3, 52.7, 66.8, 39.9)),
            weights=(WeightSource("state_dict", "efficient_sam_vitt.pt", repo_id=_MIRROR),
                     WeightSource("state_dict", "efficient_sam_vitt.pt", url=OFFICIAL_GITHUB + "efficient_sam_vitt.pt")),
            throughput="54 images/s on one A100 (Table 8)"),
    Variant("efficientsam-s", "efficientsam", "vit-s", _MIRROR, "EfficientSAM with a ViT-S image encoder",
            results=_segment_results((76.9, 50.0, 69.8, 44.4), (75.4, 56.2, 68.7, 42.3)),
            weights=(WeightSource("state_dict", "efficient_sam_vits.pt", repo_id=_MIRROR),
                     WeightSource("zip", "efficient_sam_vits.pt.zip", url=OFFICIAL_GITHUB + "efficient_sam_vits.pt.zip"),
                     WeightSource("torchscript", "efficient_sam_s_cpu.jit", repo_id=_MIRROR)),
            throughput="47 images/s on one A100 (Table 8)"),
    _sami("vit-ti", _backbone_results(76.8, 44.7, 40.0, 42.7)),
    _sami("vit-s", _backbone_results(82.7, 49.8, 44.2, 48.8)),
    _sami("vit-b", _backbone_results(84.8, 52.5, 46.5, 51.8)),
    _efficienttam("vit-ti", ""), _efficienttam("vit-s", "", _vos_results(74.5, 89.2), "85 frames/s on one A100"),
    _efficienttam("vit-ti", "-1"), _efficienttam("vit-s", "-1"),
    _efficienttam("vit-ti", "-2", _vos_results(70.8, 88.4), "109 frames/s on one A100"), _efficienttam("vit-s", "-2"),
    _efficienttam("vit-ti", "-512x512"), _efficienttam("vit-s", "-512x512"),
)}

#: Names of the promptable segmenters (CLI ``--model`` choices, HF ``EfficientSamModel`` aliases).
EFFICIENT_SAM_NAMES: List[str] = [n for n, v in VARIANTS.items() if v.is_segmenter]
#: Names of the SAMI backbones (HF ``SamiViTModel`` aliases, timm names).
SAMI_NAMES: List[str] = [n for n, v in VARIANTS.items() if v.family == "sami"]
#: Names of the EfficientTAM video models (``EfficientTamVideoModel`` aliases, the ``track`` command's choices).
EFFICIENT_TAM_NAMES: List[str] = [n for n, v in VARIANTS.items() if v.family == "efficienttam"]
DEFAULT_MODEL = EFFICIENT_SAM_NAMES[0]
#: name -> architecture of every segmenter.
EFFICIENT_SAM_SPECS: Dict[str, EfficientSamSpec] = {n: VARIANTS[n].spec() for n in EFFICIENT_SAM_NAMES}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(VARIANTS)}") from None


def get_spec(name: str) -> EfficientSamSpec:
    """The architecture of an EfficientSAM variant (``efficientsam-ti`` / ``efficientsam-s``)."""
    if name not in EFFICIENT_SAM_SPECS:
        raise ValueError(f"unknown model {name!r}; choose one of {EFFICIENT_SAM_NAMES}")
    return EFFICIENT_SAM_SPECS[name]


def variant_of_width(embed_dim: int, family: str = "efficientsam") -> Optional[str]:
    """The variant of ``family`` whose encoder is ``embed_dim`` wide (checkpoints tell their size this way)."""
    for name, v in VARIANTS.items():
        if v.family == family and v.vit_size["embed_dim"] == embed_dim:
            return name
    return None
