"""Hub-side tooling: model cards from one template, official -> HF conversion with verification, pushing.

Every number and name on a card comes from the variant table (``efficientsam_zoo.registry.VARIANTS``); the
parameter counts are counted off the models themselves. Used by the scripts in ``hf/``
(``convert_official_checkpoint.py``, ``push_to_hub.py``, ``make_cards.py``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, List, Optional

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ...build import build_efficient_sam
from ...checkpoints import write_model_spec
from ...modeling.efficient_sam import EfficientSam
from ...modeling.vit import build_vit
from ...registry import ETAM_PAPER, PAPER, VARIANTS, Variant, get_spec
from .image_processing import EfficientSamImageProcessor
from .modeling import EfficientSamModel

__all__ = ["CARD_NAMES", "make_model_card", "save_model_dir", "convert_official_checkpoint", "push_folder",
           "parameter_count"]

CARD_NAMES = list(VARIANTS)
_PIPELINE = {"efficientsam": "mask-generation", "sami": "image-feature-extraction", "efficienttam": "mask-generation"}
_DATASETS = {"efficientsam": ["sa-1b", "imagenet-1k"], "sami": ["imagenet-1k"], "efficienttam": ["sa-v", "sa-1b"]}


def parameter_count(variant: Variant) -> int:
    """Parameters of the variant's model, counted on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        if variant.family == "efficienttam":
            from .efficienttam import EfficientTamVideoModel, efficienttam_config_for

            model = EfficientTamVideoModel(efficienttam_config_for(variant.name))
        elif variant.is_segmenter:
            model = EfficientSam.from_spec(variant.spec())
        else:
            model = build_vit(variant.backbone, img_size=224, neck_dim=None)
    return sum(p.numel() for p in model.parameters())


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

Segment everything with transformers' pipeline (the same masks as `SamAutomaticMaskGenerator` below):

```python
from transformers import pipeline

generator = pipeline("mask-generation", model=model, image_processor=processor)  # or model="<converted dir>"
outputs = generator(pil_image, points_per_batch=64, pred_iou_thresh=0.88)  # {"masks": [H x W], "scores": [...]}
```

Natively, as segment-anything's `SamPredictor` (weights file `{{ weights_file }}`):

```python
from efficientsam_zoo import EfficientSamPredictor, SamAutomaticMaskGenerator, build_efficient_sam

model = build_efficient_sam("{{ name }}")  # or checkpoint="{{ weights_file }}"
predictor = EfficientSamPredictor(model)
predictor.set_image(image)
masks, scores, _ = predictor.predict(point_coords=np.array([[580, 350]]), point_labels=np.array([1]))
records = SamAutomaticMaskGenerator(model).generate(image)  # segment everything
```
{% else %}from efficientsam_zoo import SamiViTModel

backbone = SamiViTModel.from_pretrained("{{ name }}")
tokens = backbone(pixel_values).last_hidden_state  # [B, N, C]
```

With timm (`import efficientsam_zoo` registers the name):

```python
model = timm.create_model("{{ timm_name }}", pretrained=True, num_classes=1000)  # or features_only=True
# a local export: checkpoint_path="{{ export_file }}" or pretrained_cfg_overlay=dict(file="{{ export_file }}")
```

As the backbone of MMDetection / MMSegmentation / detectron2 (export the weights to `{{ export_file }}`):

```python
# MMDetection ViTDet (mm_configs/vitdet_sami_{{ short }}.py), MMSegmentation Mask2Former
# (mm_configs/mask2former_sami_{{ short }}_8xb2-160k_ade20k-512x512.py):
model = dict(backbone=dict(arch="vit-{{ short }}", init_cfg=dict(type="Pretrained", checkpoint="{{ export_file }}")))
# detectron2 LazyConfig (d2_configs/COCO/mask_rcnn_vitdet_sami_{{ short }}_100ep.py):
train.init_checkpoint = "{{ export_file }}"
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


TRACKER_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ name }}

{{ arch }} ({{ params }} parameters), from *Efficient Track Anything* (Xiong et al., 2024): SAM 2's video model with a
SAMI-pretrained plain ViT image encoder. Packaged by [efficientsam-zoo]({{ project_url }}) as a transformers
`Sam2VideoModel` subclass, loading the released file `{{ weights_file }}`.

## Usage

```python
import efficientsam_zoo  # registers the model types with transformers' Auto classes
from efficientsam_zoo.integrations.hf import EfficientTamVideoModel
from efficientsam_zoo.integrations.hf.efficienttam import efficienttam_processor

model = EfficientTamVideoModel.from_pretrained("{{ name }}")  # or .from_release("{{ weights_file }}", "{{ name }}")
processor = efficienttam_processor(model.config)  # transformers' Sam2VideoProcessor at {{ size }} px
session = processor.init_video_session(video=frames, inference_device="cpu")
processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1, input_points=[[[[210, 350]]]],
                                          input_labels=[[[1]]])
model(inference_session=session, frame_idx=0)
for out in model.propagate_in_video_iterator(session):
    masks = processor.post_process_masks([out.pred_masks], original_sizes=[frames[0].shape[:2]])[0]
```

Frames are stretched to {{ size }}x{{ size }} and normalised with ImageNet mean / std, as in SAM 2.
{% if results %}
## Results reported by the paper

These numbers are **quoted from the paper**, not measured from these weights by efficientsam-zoo.

| task | dataset | metric | value |
|---|---|---|---|
{% for r in results %}| {{ r.task_name }} | {{ r.dataset_name }} | {{ r.metric_name }} | {{ r.metric_value }} |
{% endfor %}{% if throughput %}
Throughput: {{ throughput }}.
{% endif %}{% endif %}
## Intended uses and limitations

Promptable video object segmentation for research and applications that need a small model. The released weights
are under the official EfficientTAM repository's Apache-2.0 licence and were trained on SA-1B and SA-V: use them within
those datasets' terms. Not evaluated for safety-critical use.

## Citation

```bibtex
@article{xiong2024efficienttam,
  title={Efficient Track Anything},
  author={Xiong, Yunyang and Zhou, Chong and Xiang, Xiaoyu and Wu, Lemeng and Zhu, Chenchen and Liu, Zechun
          and Suri, Saksham and Varadarajan, Balakrishnan and Akula, Ramya and Iandola, Forrest
          and Krishnamoorthi, Raghuraman and Soran, Bilge and Chandra, Vikas},
  journal={arXiv:2411.18933},
  year={2024}
}
```
"""


def make_model_card(name: str, project_url: str = "https://pypi.org/project/efficientsam-zoo/") -> ModelCard:
    """The model card of ``name`` (one of :data:`CARD_NAMES`)."""
    if name not in VARIANTS:
        raise ValueError(f"no model card for {name!r}; known: {CARD_NAMES}")
    variant = VARIANTS[name]
    pipeline = _PIPELINE[variant.family]
    paper = ETAM_PAPER if variant.family == "efficienttam" else PAPER
    source = f"{paper['title'].split(':')[0]} paper ({paper['citation']}), as reported"
    results = [EvalResult(task_type=r.task, task_name=r.experiment, dataset_type=r.dataset,
                          dataset_name=r.dataset_name, metric_type=r.metric, metric_name=r.metric_name,
                          metric_value=r.value, source_name=source, source_url=paper["url"])
               for r in variant.results]
    data = ModelCardData(license="apache-2.0", library_name="efficientsam-zoo", pipeline_tag=pipeline,
                         datasets=_DATASETS[variant.family], tags=["efficientsam", "sami", "vision", pipeline],
                         model_name=name, eval_results=results)
    params = f"{parameter_count(variant) / 1e6:.1f}M"
    if variant.family == "efficienttam":
        data = ModelCardData(license="apache-2.0", library_name="efficientsam-zoo", pipeline_tag=pipeline,
                             datasets=_DATASETS[variant.family], tags=["efficienttam", "sam2", "video", pipeline],
                             model_name=name, eval_results=results or None)
        return ModelCard.from_template(data, template_str=TRACKER_CARD_TEMPLATE, name=name, arch=variant.description,
                                       params=params, throughput=variant.throughput, results=results,
                                       project_url=project_url, weights_file=variant.weights[0].filename,
                                       size=variant.tracker.image_size)
    return ModelCard.from_template(data, template_str=CARD_TEMPLATE, name=name, arch=variant.description,
                                   params=params, throughput=variant.throughput, results=results,
                                   segment=variant.is_segmenter, project_url=project_url,
                                   weights_file=variant.weights[0].filename if variant.weights else "",
                                   timm_name=variant.timm_name, short=variant.backbone.split("-")[1],
                                   export_file=f"sami_{variant.backbone}.safetensors")


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


def save_model_dir(native: EfficientSam, out_dir: str, card: Optional[ModelCard] = None, overwrite: bool = False,
                   tolerance: float = 1e-4) -> Dict[str, float]:
    """A native model -> a model directory: HF ``save_pretrained`` files (safetensors, config, processor config, the
    card) plus ``spec.json`` (``checkpoints.write_model_spec``), so that ``EfficientSamModel.from_pretrained(DIR)`` and
    ``build_efficient_sam(name, checkpoint=DIR)`` both load it. Written beside ``out_dir`` first, reloaded with
    ``AutoModel.from_pretrained`` and compared with ``native`` on a probe input; only then moved into place."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(f"{out_dir!r} exists and is not empty; pass --overwrite to replace it")
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the write-and-reload check is one step of the caller's, not two bars
    native = native.eval()
    hf = EfficientSamModel.from_native(native).eval()
    processor = EfficientSamImageProcessor(size=native.img_size, max_points=native.decoder_max_num_input_points)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".model-", dir=parent)
    try:
        hf.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        write_model_spec(native.spec, tmp)
        if card is not None:
            card.save(os.path.join(tmp, "README.md"))
        reloaded = AutoModel.from_pretrained(tmp).eval()
        diff = _probe_difference(native, reloaded, processor)
        if not diff <= tolerance:
            raise RuntimeError(f"the saved model differs from the original by {diff:.3g} (> {tolerance}); "
                               "nothing was written")
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        if bars:
            hf_logging.enable_progress_bar()
    return {"max_abs_diff": diff, "parameters": float(sum(p.numel() for p in hf.parameters()))}


def convert_official_checkpoint(checkpoint: str, variant: str, out_dir: str, overwrite: bool = False,
                                tolerance: float = 1e-4) -> Dict[str, float]:
    """Official ``.pt`` / ``.pt.zip`` -> HF directory (safetensors, config, processor config, model card), through
    :func:`save_model_dir` (which checks the written directory against the original model)."""
    get_spec(variant)
    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:  # before the (slow) model load
        raise FileExistsError(f"{out_dir!r} exists and is not empty; pass --overwrite to replace it")
    return save_model_dir(build_efficient_sam(variant, checkpoint=checkpoint), out_dir, make_model_card(variant),
                          overwrite=overwrite, tolerance=tolerance)


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

