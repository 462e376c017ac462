"""The quickstart's stages. Each trains with the shipped ``*_tiny-shapes`` config through the framework's own
Runner (in this process) and measures what it learned on held-out generated scenes."""
from __future__ import annotations

import glob
import json
import os
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.config import Config

from ..data.synthetic import make_coco_instances, make_sa1b_shards, make_scene
from ..evaluation.common import predictor_segment_fn
from ..evaluation.baselines import best_color_region_miou, box_fill_segment_fn, mean_box_detections
from ..evaluation.instance_eval import evaluate_instances, evaluate_segm
from ..evaluation.point_eval import evaluate_points
from ..integrations.hf.cards import save_model_dir
from ..modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD
from ..modeling.sami import resize_target
from ..predictor import EfficientSamPredictor
from ..tools.configs import resolve_config
from ..tools.export_backbone import export_backbone
from ..tools.train import build_runner
from ..utils.image import image_to_tensor, load_image_rgb
from ..utils.io import save_png
from ..utils.masks import mask_to_box
from ..visualize import overlay_masks
from .console import callback_hook, progress_hook

__all__ = ["CONFIGS", "DATA_IMAGES", "iterations", "make_data", "stage_runner", "normalized_images", "sami_stage", "segment_stage", "vitdet_stage", "zero_shot_stage", "overlay_predictions",
           "segment_eval", "scalars", "loss_curve"]

IMG = 128  # every quickstart model works at 128 px (the tiny-shapes configs)
#: The shipped config each training stage runs.
CONFIGS = {"sami": "sami_pretrain_vit-ti_tiny-shapes", "segment": "efficientsam_ti_tiny-shapes",
           "vitdet": "vitdet_sami_ti_tiny-shapes", "track": "efficienttam_ti_tiny-moving-shapes"}
#: Generated images: SAMI's scenes, the SA-1B-layout shards (shards x images), the COCO-format splits.
SCENES, SHARDS, COCO_SPLITS = 64, (4, 64), {"train": 32, "val": 16}
DATA_IMAGES = SCENES + SHARDS[0] * SHARDS[1] + sum(COCO_SPLITS.values())


def iterations(stage: str) -> int:
    """The training iterations of a stage's shipped config (its progress bar's length)."""
    return int(Config.fromfile(resolve_config(CONFIGS[stage])).train_cfg.max_iters)


def make_data(root: str, seed: int, bar) -> Dict[str, str]:
    """Scenes for SAMI, SA-1B-layout shards for finetuning, a COCO-format train / held-out split for ViTDet and the
    evaluations."""
    from PIL import Image

    scenes = os.path.join(root, "scenes", "all")
    os.makedirs(scenes, exist_ok=True)
    for i in range(SCENES):
        Image.fromarray(make_scene(seed * 10_000 + i, IMG, IMG)[0]).save(os.path.join(scenes, f"{i}.png"))
        bar.update(1)
    shards = make_sa1b_shards(os.path.join(root, "sa1b"), n_shards=SHARDS[0], images_per_shard=SHARDS[1],
                              size=(IMG, IMG), seed=seed + 1)
    bar.update(SHARDS[0] * SHARDS[1])
    coco = os.path.join(root, "coco") + os.sep
    ann = make_coco_instances(coco, COCO_SPLITS, size=(IMG, IMG), n_objects=3, seed=seed + 2)
    bar.update(sum(COCO_SPLITS.values()))
    return dict(scenes=os.path.dirname(scenes), shards=os.path.join(os.path.dirname(shards[0]), "sa_*.tar"),
                coco=coco, train_ann=ann["train"], val_ann=ann["val"], val_img=coco + "val2017")


def scalars(work_dir: str) -> List[Dict]:
    """The rows a Runner's LocalVisBackend wrote (losses per logged iteration, metrics)."""
    (path,) = glob.glob(os.path.join(work_dir, "*", "vis_data", "scalars.json"))
    return [json.loads(line) for line in open(path)]


def loss_curve(work_dir: str) -> List[List[float]]:
    """``[[iteration, loss], ...]`` of a Runner's training log."""
    return [[r["iter"], r["loss"]] for r in scalars(work_dir) if "loss" in r]


def stage_runner(stage: str, edit, work_dir: str, bar, hooks: Sequence = ()):
    """A Runner for ``stage``'s shipped config, edited by ``edit(cfg)``, its progress on ``bar``."""
    cfg = Config.fromfile(resolve_config(CONFIGS[stage]))
    edit(cfg)
    runner = build_runner(["(quickstart)", "--work-dir", work_dir], cfg=cfg)
    runner.register_hook(progress_hook(bar))
    for hook in hooks:
        runner.register_hook(hook)
    return runner


def normalized_images(files: Sequence[str]) -> torch.Tensor:
    """Image files as the SAMI student and teacher take them: ``[N, 3, H, W]``, ImageNet-normalised."""
    x = torch.stack([image_to_tensor(load_image_rgb(f)) for f in files])
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def sami_stage(data: Dict[str, str], out: str, bar) -> Dict:
    """SAMI pretraining; the reconstruction loss on held-out scenes before and after, beside the loss of predicting
    the training scenes' mean teacher map (``mean_feature_loss``); the backbone export."""
    work = os.path.join(out, "work_dirs", "sami")
    x = normalized_images(sorted(glob.glob(os.path.join(data["val_img"], "*.jpg"))))
    train = normalized_images(sorted(glob.glob(os.path.join(data["scenes"], "all", "*.png"))))
    result: Dict = {}

    def heldout_loss(key):
        def measure(runner):
            model = runner.model
            n = model.sami.encoder.grid_size[0] * model.sami.encoder.grid_size[1]
            noise = torch.rand(len(x), n, generator=torch.Generator().manual_seed(0))  # the same masks both times
            with torch.no_grad():
                target = model.teacher(x)
                result[key] = float(model.sami(x, target, noise=noise)["loss"])
                if "mean_feature_loss" not in result:
                    grid = model.sami.encoder.grid_size
                    mean = resize_target(model.teacher(train), grid, model.sami.target_resize).mean(0, keepdim=True)
                    result["mean_feature_loss"] = float(model.sami.loss(mean.expand(len(x), -1, -1), target))
        return measure

    def edit(cfg):
        cfg.train_dataloader.dataset.data_root = data["scenes"]

    runner = stage_runner("sami", edit, work, bar,
                     [callback_hook(heldout_loss("loss_unseen_untrained"), heldout_loss("loss_unseen_trained"))])
    runner.train()
    curve = loss_curve(work)
    export = os.path.join(out, "sami_vit-ti.safetensors")
    export_backbone(os.path.join(work, f"iter_{runner.max_iters}.pth"), export)
    return dict(result, loss_first=curve[0][1], loss_last=curve[-1][1], curve=curve, export=export)


def segment_eval(sam, data: Dict[str, str], prompts=("box", "1pt"), num_instances=None) -> Dict[str, float]:
    """The ``eval-points`` protocol's mIoU (0..1) per prompt type on the held-out scenes."""
    was_training = sam.training
    sam.eval()
    out = evaluate_points(predictor_segment_fn(EfficientSamPredictor(sam)), data["val_ann"], data["val_img"],
                          prompt_types=prompts, num_instances=num_instances, progress=False)["summary"]
    sam.train(was_training)
    return {p: v["all"] / 100.0 for p, v in out.items()}


def overlay_predictions(sam, data: Dict[str, str], out: str, tag: str, n: int = 2) -> List[str]:
    """Box- and point-prompted masks of the first ``n`` held-out scenes drawn over the images."""
    from pycocotools.coco import COCO

    api = COCO(data["val_ann"])
    predictor, was_training = EfficientSamPredictor(sam), sam.training
    sam.eval()
    paths = []
    for info in api.loadImgs(sorted(api.getImgIds())[:n]):
        image = load_image_rgb(os.path.join(data["val_img"], info["file_name"]))
        gts = [api.annToMask(a).astype(bool) for a in api.loadAnns(api.getAnnIds(imgIds=[info["id"]]))]
        predictor.set_image(image)
        boxes = np.stack([mask_to_box(m) for m in gts])
        points = np.stack([_inner_point(m) for m in gts])
        by_box = [_best(*predictor.predict(box=b)) for b in boxes]
        by_point = [_best(*predictor.predict(point_coords=p[None], point_labels=np.ones(1))) for p in points]
        for kind, masks, extra in (("box", by_box, dict(boxes=boxes)), ("point", by_point, dict(points=points))):
            path = os.path.join(out, "pictures", f"{tag}_{info['id']}_{kind}.png")
            picture = overlay_masks(image, masks, **extra)
            save_png(np.repeat(np.repeat(picture, 3, axis=0), 3, axis=1), path)  # 3x: readable in the report
            paths.append(path)
    sam.train(was_training)
    return paths


def _inner_point(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))  # the mask pixel nearest its centroid
    return np.array([xs[k], ys[k]], dtype=np.float32)


def _best(masks, scores, _low_res):
    return masks[int(np.argmax(scores))]


def segment_stage(data: Dict[str, str], export: str, out: str, bar) -> Dict:
    """EfficientSAM finetuning from the SAMI export; box / 1-point mIoU on held-out scenes before and after, beside
    what filling the prompt box (``box_fill_baseline``) and flood-filling the clicked colour
    (``point_region_baseline``, its best tolerance) score under the same protocol."""
    work = os.path.join(out, "work_dirs", "efficientsam")
    box_fill = evaluate_points(box_fill_segment_fn(), data["val_ann"], data["val_img"], prompt_types=("box",),
                               progress=False)["summary"]["box"]["all"] / 100.0
    region = best_color_region_miou(data["val_ann"], data["val_img"])
    result: Dict = dict(box_fill_baseline=box_fill, point_region_baseline=region["miou"],
                        point_region_tolerance=region["tolerance"])

    def measure(when):
        def run(runner):
            sam = runner.model.sam
            metrics = segment_eval(sam, data)
            result[f"box_miou_{when}"], result[f"point_miou_{when}"] = metrics["box"], metrics["1pt"]
            result[f"pictures_{when}"] = overlay_predictions(sam, data, out, when)
        return run

    def edit(cfg):
        cfg.train_dataloader.dataset.paths = [data["shards"]]
        cfg.model.init_checkpoint = export

    runner = stage_runner("segment", edit, work, bar,
                     [callback_hook(measure("before"), measure("after"))])
    runner.train()
    result["curve"] = loss_curve(work)
    result["model"] = runner.model.sam.eval()
    result["model_dir"] = os.path.join(out, "model")  # build_efficient_sam / from_pretrained / finetune --checkpoint
    save_model_dir(result["model"], result["model_dir"], overwrite=True)
    return result


def vitdet_stage(data: Dict[str, str], export: str, out: str, bar) -> Dict:
    """ViTDet Mask R-CNN (MMDetection) from the same export: COCO AP on held-out scenes and on its training scenes,
    beside the AP of putting each class's mean training box in every held-out scene (``mean_box_*_ap``)."""
    work = os.path.join(out, "work_dirs", "vitdet")

    def edit(cfg):
        for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
            loader.dataset.data_root = data["coco"]
        cfg.val_evaluator.ann_file = data["val_ann"]
        cfg.test_dataloader = dict(cfg.test_dataloader, dataset=dict(
            cfg.val_dataloader.dataset, ann_file="annotations/instances_train2017.json",
            data_prefix=dict(img="train2017/")))
        cfg.test_evaluator = dict(cfg.val_evaluator, ann_file=data["train_ann"])
        cfg.model.backbone.init_cfg = dict(type="Pretrained", checkpoint=export)

    runner = stage_runner("vitdet", edit, work, bar)
    runner.train()
    heldout = [r for r in scalars(work) if "coco/bbox_mAP" in r][-1]
    train = runner.test()
    chance = mean_box_detections(data["train_ann"], data["val_ann"])
    return dict(bbox_ap=heldout["coco/bbox_mAP"], segm_ap=heldout["coco/segm_mAP"],
                bbox_ap_train=train["coco/bbox_mAP"], segm_ap_train=train["coco/segm_mAP"],
                mean_box_bbox_ap=evaluate_segm(data["val_ann"], chance, iou_type="bbox")["AP"] / 100.0,
                mean_box_segm_ap=evaluate_segm(data["val_ann"], chance)["AP"] / 100.0, curve=loss_curve(work))


def zero_shot_stage(sam, data: Dict[str, str], out: str, bar, max_images: int = None) -> Dict:
    """The paper's zero-shot protocols with the finetuned model: box / 1 / 3-point mIoU, and instance AP from
    ground-truth boxes (COCOeval), beside the AP of the filled boxes themselves (``instance_ap_box_fill``)."""
    with open(data["val_ann"]) as f:
        coco = json.load(f)
    images = sorted(i["id"] for i in coco["images"])[:max_images]
    gt = [a for a in coco["annotations"] if a["image_id"] in images]
    miou = segment_eval(sam, data, ("box", "1pt", "3pt"), num_instances=len(gt))
    bar.update(1)
    dets = os.path.join(out, "gt_boxes_as_detections.json")
    with open(dets, "w") as f:
        json.dump([dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=1.0)
                   for a in gt], f)
    segment = predictor_segment_fn(EfficientSamPredictor(sam.eval()))
    ap = evaluate_instances(segment, data["val_ann"], data["val_img"], dets, img_ids=images,
                            out_file=os.path.join(out, "segm_results.json"), progress=False)["metrics"]
    filled = evaluate_instances(box_fill_segment_fn(), data["val_ann"], data["val_img"], dets, img_ids=images,
                                progress=False)["metrics"]
    bar.update(1)
    return {f"miou_{k}": v for k, v in miou.items()} | {"instance_ap": ap["AP"] / 100.0, "instance_ap50": ap["AP50"] / 100.0,
                                                        "instance_ap_box_fill": filled["AP"] / 100.0}
