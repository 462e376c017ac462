"""Hub-side tooling: model cards from one template, official -> HF conversion with verification, pushing.

Used by the scripts in ``hf/`` (``convert_official_checkpoint.py``, ``push_to_hub.py``, ``make_cards.py``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, List

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..build import build_efficient_sam
from ..registry import get_spec
from .transformers import EfficientSamImageProcessor, EfficientSamModel

__all__ = ["CARD_NAMES", "PAPER", "make_model_card", "convert_official_checkpoint", "push_folder"]

PAPER = dict(name="EfficientSAM paper (Xiong et al., 2023), as reported", url="https://arxiv.org/abs/2312.00863")

# (task_type, task_name, dataset_type, dataset_name, metric_type, metric_name, value); all from the paper.
_T4 = "Zero-shot single point valid mask (Table 4)"
_T5 = "Zero-shot instance segmentation with ViTDet-H boxes (Table 5)"
_RESULTS: Dict[str, List[tuple]] = {
    "efficientsam-ti": [
        ("mask-generation", _T4, "coco", "COCO 2017 val", "mIoU", "mIoU (box)", 75.7),
        ("mask-generation", _T4, "coco", "COCO 2017 val", "mIoU", "mIoU (1 click)", 45.5),
        ("mask-generation", _T4, "coco", "COCO 2017 val", "mIoU", "mIoU (3 clicks)", 67.2),
        ("mask-generation", _T4, "lvis", "LVIS v1 val", "mIoU", "mIoU (box)", 74.3),
        ("mask-generation", _T4, "lvis", "LVIS v1 val", "mIoU", "mIoU (1 click)", 52.7),
        ("mask-generation", _T4, "lvis", "LVIS v1 val", "mIoU", "mIoU (3 clicks)", 66.8),
        ("instance-segmentation", _T5, "coco", "COCO 2017 val", "AP", "mask AP", 42.3),
        ("instance-segmentation", _T5, "lvis", "LVIS v1 val", "AP", "mask AP", 39.9),
    ],
    "efficientsam-s": [
        ("mask-generation", _T4, "coco", "COCO 2017 val", "mIoU", "mIoU (box)", 76.9),
        ("mask-generation", _T4, "coco", "COCO 2017 val", "mIoU", "mIoU (1 click)", 50.0),
        ("mask-generation", _T4, "coco", "COCO 2017 val", "mIoU", "mIoU (3 clicks)", 69.8),
        ("mask-generation", _T4, "lvis", "LVIS v1 val", "mIoU", "mIoU (box)", 75.4),
        ("mask-generation", _T4, "lvis", "LVIS v1 val", "mIoU", "mIoU (1 click)", 56.2),
        ("mask-generation", _T4, "lvis", "LVIS v1 val", "mIoU", "mIoU (3 clicks)", 68.7),
        ("instance-segmentation", _T5, "coco", "COCO 2017 val", "AP", "mask AP", 44.4),
        ("instance-segmentation", _T5, "lvis", "LVIS v1 val", "AP", "mask AP", 42.3),
    ],
}
for _size, (_top1, _box, _mask, _ade) in {"ti": (76.8, 44.7, 40.0, 42.7), "s": (82.7, 49.8, 44.2, 48.8),
                                           "b": (84.8, 52.5, 46.5, 51.8)}.items():
    _RESULTS[f"sami-vit-{_size}"] = [
        ("image-classification", "ImageNet-1K finetuning, 100 epochs (Table 1)", "imagenet-1k", "ImageNet-1K val",
         "accuracy", "top-1", _top1),
        ("object-detection", "ViTDet Mask R-CNN on COCO (Table 2)", "coco", "COCO 2017 val", "AP", "box AP", _box),
        ("instance-segmentation", "ViTDet Mask R-CNN on COCO (Table 2)", "coco", "COCO 2017 val", "AP", "mask AP",
         _mask),
        ("image-segmentation", "Mask2Former on ADE20K 512x512 (Table 3)", "ade20k", "ADE20K val", "mIoU", "mIoU",
         _ade),
    ]

_KIND = {
    "efficientsam-ti": dict(arch="EfficientSAM with a ViT-Ti image encoder", params="10.2M", pipeline="mask-generation",
                            throughput="54 images/s on one A100 (Table 8)", datasets=["sa-1b", "imagenet-1k"]),
    "efficientsam-s": dict(arch="EfficientSAM with a ViT-S image encoder", params="26.4M", pipeline="mask-generation",
                           throughput="47 images/s on one A100 (Table 8)", datasets=["sa-1b", "imagenet-1k"]),
    "sami-vit-ti": dict(arch="SAMI-pretrained ViT-Ti backbone (192-d, 12 blocks, 3 heads)", params="5.5M",
                        pipeline="image-feature-extraction", throughput=None, datasets=["imagenet-1k"]),
    "sami-vit-s": dict(arch="SAMI-pretrained ViT-S backbone (384-d, 12 blocks, 6 heads)", params="21.7M",
                       pipeline="image-feature-extraction", throughput=None, datasets=["imagenet-1k"]),
    "sami-vit-b": dict(arch="SAMI-pretrained ViT-B backbone (768-d, 12 blocks, 12 heads)", params="85.8M",
                       pipeline="image-feature-extraction", throughput=None, datasets=["imagenet-1k"]),
}
CARD_NAMES = list(_KIND)

CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ name }}

{{ arch }} ({{ params }} parameters), from *EfficientSAM: Leveraged Masked Image Pretraining for Efficient
Segment Anything* (Xiong et al., 2023), packaged by [efficientsam-zoo]({{ project_url }}).

## Usage

```python
import efficientsam_zoo  # registers the model types with transformers' Auto classes
{% if segment %}from efficientsam_zoo import EfficientSamModel, EfficientSamImageProcessor

model = EfficientSamModel.from_pretrained("{{ name }}")
processor = EfficientSamImageProcessor()
inputs = processor(image, input_points=[[[[580, 350]]]], input_labels=[[[1]]])
out = model(**inputs)  # original_sizes is only for post-processing
masks = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])
```
{% else %}from efficientsam_zoo import SamiViTModel

backbone = SamiViTModel.from_pretrained("{{ name }}")
tokens = backbone(pixel_values).last_hidden_state  # [B, N, C]
```
{% endif %}
## Preprocessing and prompt conventions

{% if segment %}Images are stretched (not letterboxed) to 1024x1024, scaled to 0..1 and normalised with ImageNet
mean/std. Prompts are points with labels: 1 = foreground point, 2 / 3 = box top-left / bottom-right corner,
-1 = padding (every query is padded / truncated to 6 points). Label 0 adds no label embedding: the release
was not trained with negative clicks. Outputs: 3 masks with a predicted IoU each, as low-resolution logits
(256x256) that `post_process_masks` upsamples bicubically to the image size.
{% else %}224x224 crops normalised with ImageNet mean/std; the absolute position embedding is stored for
the 224-px grid (14x14 + one cls slot) and resized bicubically for other input sizes. No final norm.
{% endif %}
## Results reported by the paper

These numbers are **quoted from the paper**, not measured from these weights by efficientsam-zoo.

| task | dataset | metric | value |
|---|---|---|---|
{% for r in results %}| {{ r.task_name }} | {{ r.dataset_name }} | {{ r.metric_name }} | {{ r.metric_value }} |
{% endfor %}{% if throughput %}
Throughput: {{ throughput }}, 1024x1024 input, one box prompt.
{% endif %}
## Intended uses and limitations

Promptable segmentation and dense-prediction backbones for research and applications that need a small
model. Weights derived from SAM features and SA-1B: use them within the SA-1B dataset's research licence
terms and the official EfficientSAM release's Apache-2.0 licence. Quality is below SAM ViT-H (see the
tables); the models were not evaluated for safety-critical use.

## Citation

```bibtex
@article{xiong2023efficientsam,
  title={EfficientSAM: Leveraged Masked Image Pretraining for Efficient Segment Anything},
  author={Xiong, Yunyang and Varadarajan, Bala and Wu, Lemeng and Xiang, Xiaoyu and Xiao, Fanyi and Zhu, Chenchen
          and Dai, Xiaoliang and Wang, Dilin and Sun, Fei and Iandola, Forrest and Krishnamoorthi, Raghuraman
          and Chandra, Vikas},
  journal={arXiv:2312.00863},
  year={2023}
}
```
"""


def make_model_card(name: str, project_url: str = "https://pypi.org/project/efficientsam-zoo/") -> ModelCard:
    """The model card of ``name`` (one of :data:`CARD_NAMES`)."""
    if name not in _KIND:
        raise ValueError(f"no model card for {name!r}; known: {CARD_NAMES}")
    kind = _KIND[name]
    results = [EvalResult(task_type=t, task_name=tn, dataset_type=dt, dataset_name=dn, metric_type=mt,
                          metric_name=mn, metric_value=v, source_name=PAPER["name"], source_url=PAPER["url"])
               for (t, tn, dt, dn, mt, mn, v) in _RESULTS[name]]
    data = ModelCardData(license="apache-2.0", library_name="efficientsam-zoo", pipeline_tag=kind["pipeline"],
                         datasets=kind["datasets"], tags=["efficientsam", "sami", "vision", kind["pipeline"]],
                         model_name=name, eval_results=results)
    return ModelCard.from_template(data, template_str=CARD_TEMPLATE, name=name, arch=kind["arch"],
                                   params=kind["params"], throughput=kind["throughput"], results=results,
                                   segment=name.startswith("efficientsam"), project_url=project_url)


@torch.no_grad()
def _probe_difference(native, hf: EfficientSamModel, processor: EfficientSamImageProcessor, seed: int = 0) -> float:
    """Max |logit difference| between the native forward and the HF path on one probe image + prompts."""
    g = torch.Generator().manual_seed(seed)
    h, w = 96, 128
    image = (torch.rand(3, h, w, generator=g) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    points, labels, boxes = [[[[40.0, 30.0]]]], [[[1]]], [[[10.0, 12.0, 100.0, 80.0]]]
    inputs = processor(image, input_points=points, input_labels=labels, input_boxes=boxes)
    out = hf(pixel_values=inputs["pixel_values"], input_points=inputs["input_points"],
             input_labels=inputs["input_labels"], input_boxes=inputs["input_boxes"])
    hf_logits = processor.post_process_masks(out.pred_masks, inputs["original_sizes"], binarize=False)[0]
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    pts = torch.tensor([[[[40.0, 30.0], [10.0, 12.0], [100.0, 80.0]]]])
    native_logits, native_iou = native(x, pts, torch.tensor([[[1, 2, 3]]]))
    return max(float((hf_logits - native_logits[0]).abs().max()), float((out.iou_scores - native_iou).abs().max()))


def convert_official_checkpoint(checkpoint: str, variant: str, out_dir: str, overwrite: bool = False,
                                tolerance: float = 1e-4) -> Dict[str, float]:
    """Official ``.pt`` / ``.pt.zip`` -> HF directory (safetensors, config, processor config, model card).

    The directory is written beside ``out_dir`` first, reloaded with ``AutoModel.from_pretrained`` and
    compared with the original model on a probe input; only then is it moved into place.
    """
    from transformers import AutoModel

    get_spec(variant)
    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(f"{out_dir!r} exists and is not empty; pass --overwrite to replace it")
    native = build_efficient_sam(variant, checkpoint=checkpoint)
    hf = EfficientSamModel.from_native(native).eval()
    processor = EfficientSamImageProcessor(size=native.img_size)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".convert-", dir=parent)
    try:
        hf.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        make_model_card(variant).save(os.path.join(tmp, "README.md"))
        reloaded = AutoModel.from_pretrained(tmp).eval()
        diff = _probe_difference(native, reloaded, processor)
        if not diff <= tolerance:
            raise RuntimeError(f"converted model differs from the original by {diff:.3g} (> {tolerance}); "
                               "nothing was written")
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return {"max_abs_diff": diff, "parameters": float(sum(p.numel() for p in hf.parameters()))}


def push_folder(folder: str, repo_id: str, dry_run: bool = True, private: bool = False,
                commit_message: str = "Upload with efficientsam-zoo") -> List[str]:
    """Upload ``folder`` to ``repo_id``; with ``dry_run`` only list what would be uploaded."""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(f"{folder!r} has no config.json; convert a checkpoint into it first")
    files = sorted(os.path.relpath(os.path.join(root, f), folder)
                   for root, _, names in os.walk(folder) for f in names)
    if dry_run:
        return files
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message=commit_message)
    return files

