"""``efficientsam-zoo finetune`` from the shipped configs, as a user runs it, starting from the EfficientSAM that the
main job trained (the session's quickstart run, ``conftest.quickstart``).

The learning tests finetune once (``efficientsam_ti_finetune_tiny-shapes``: the decoder recipe, 150 iterations) on
generated scenes whose objects come in touching pairs of one colour, so that a positive click leaks into the
neighbour, and score held-out scenes of the same kind. Each figure stands beside its own control, measured in the same
run: the model before finetuning (negative clicks and mask prompts switched on, untrained) and, for the negative
click, the same prompt without it. The bars are written here."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from efficientsam_zoo import EfficientSamPredictor, build_efficient_sam
from efficientsam_zoo.data.instances import open_source
from efficientsam_zoo.data.synthetic import make_mask_folder
from efficientsam_zoo.evaluation.interactive import next_click

#: The bars. Measured on this CPU (the closing note of issue 25): mIoU after 5 clicks 0.58 -> 0.77, NoC@85 17.9 ->
#: 12.8; the neighbour's share inside the mask with a negative click on it 0.13 -> 0.09 finetuned (untrained: 0.17 ->
#: 0.26); the mask prompt 0.709 -> 0.709 -> 0.709 finetuned (untrained: 0.684 -> 0.676).
CLICKS_GAIN = 0.10  # mIoU after 5 clicks >= the model before finetuning + 0.10
NOC85_RATIO = 0.85  # NoC@85 <= 0.85 x the model before finetuning
LEAK_RATIO = 0.8  # the neighbour's share inside the mask with a negative click on it <= 0.8 x without it
MASK_ROUND_TOLERANCE = 0.002  # untrained (the control): round 2 < round 1 - 0.002 (measured -0.008)
# finetuned: round k+1 >= round k - 0.005. Two finetunes of the same config gave rounds 0.709 / 0.709 / 0.709 and
# 0.7089 / 0.7062 / 0.7057 (run-to-run differences of the trained model): the mask prompt is neutral within 0.003,
# so 0.002 was tighter than the runs' own spread.
TRAINED_ROUND_TOLERANCE = 0.005
SCENES = dict(size=(128, 128), n_objects=4, touching=True, radius=(0.18, 0.3))


def _cli(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "efficientsam_zoo.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("touching")
    train = make_mask_folder(str(root / "train"), n_images=48, seed=1, **SCENES)
    val = make_mask_folder(str(root / "val"), n_images=24, seed=2, **SCENES)
    return train, val


@pytest.fixture(scope="module")
def finetuned(quickstart, scenes, tmp_path_factory):
    (images, masks), (val_images, val_masks) = scenes
    out = tmp_path_factory.mktemp("finetune") / "run"
    console = _cli("finetune", "--images", images, "--masks", masks, "--val-images", val_images, "--val-masks",
                   val_masks, "--checkpoint", quickstart[0] / "model", "--config", "efficientsam_ti_finetune_tiny-shapes",
                   "--out-dir", out)
    return out, console, json.load(open(out / "metrics.json"))


def _pairs(source):
    """``(image, object, neighbour)`` for both members of every touching pair."""
    for i in range(len(source)):
        item = source.load(i)
        for j in range(0, len(item.masks) - 1, 2):
            a, b = item.masks[j], item.masks[j + 1]
            yield item.image, a, b
            yield item.image, b, a


def _deepest(mask):
    x, y, _ = next_click(np.zeros_like(mask), mask)
    return [x, y]


@pytest.mark.learning
def test_negative_clicks_become_useful(finetuned, scenes, quickstart):
    out, console, metrics = finetuned
    before, after = metrics["before"], metrics["after"]
    # control: untrained, the corrections hurt (a negative click is noise); finetuned, they help
    assert before["miou_at_clicks"][4] < before["miou_at_clicks"][0]
    assert after["miou_at_clicks"][4] >= before["miou_at_clicks"][4] + CLICKS_GAIN, (before, after)
    assert after["miou_at_clicks"][4] > after["miou_at_clicks"][0]
    assert after["noc85"] <= NOC85_RATIO * before["noc85"], (before["noc85"], after["noc85"])
    assert after["instances"] >= 40

    # one positive click on the object, with and without a negative click on its neighbour: finetuned, and (the
    # control) the starting model with its negative click switched on but untrained
    val = open_source(scenes[1][0], masks=scenes[1][1])
    leak, leak_neg, iou, iou_neg = _neighbour_probe(_finetuned_model(finetuned), val)
    leak0, leak_neg0, _, _ = _neighbour_probe(_starting_model(quickstart), val)
    assert leak > 0.05 and leak0 > 0.05  # the scenes do what they are for: one click alone leaks into the neighbour
    assert leak_neg0 >= leak0  # untrained, the negative click does not cut the neighbour away
    assert leak_neg <= LEAK_RATIO * leak, (leak, leak_neg)
    assert iou_neg >= iou - 0.02  # cutting the neighbour does not cut the object


def _finetuned_model(finetuned):
    return build_efficient_sam("efficientsam-ti", checkpoint=str(finetuned[0] / "model")).eval()


def _starting_model(quickstart):
    """The main job's model with both switches on, as the finetune starts it (its new prompts untrained)."""
    torch.manual_seed(0)
    return build_efficient_sam("efficientsam-ti", checkpoint=str(quickstart[0] / "model"), negative_points=True,
                               mask_prompts=True).eval()


def _neighbour_probe(sam, source):
    """Mean share of the neighbour inside the mask, and mean IoU with the object: one positive click at the object's
    deepest pixel, without and with a negative click at the neighbour's."""
    predictor, last_image = EfficientSamPredictor(sam), None
    leak, leak_neg, iou, iou_neg = [], [], [], []
    for image, obj, neighbour in _pairs(source):
        if image is not last_image:
            predictor.set_image(image)
            last_image = image
        for points, labels, leaks, ious in (([_deepest(obj)], [1], leak, iou),
                                            ([_deepest(obj), _deepest(neighbour)], [1, 0], leak_neg, iou_neg)):
            masks, scores, _ = predictor.predict(np.array(points, np.float32), np.array(labels))
            m = masks[int(np.argmax(scores))]
            leaks.append((m & neighbour).sum() / neighbour.sum())
            ious.append((m & obj).sum() / (m | obj).sum())
    return tuple(float(np.mean(v)) for v in (leak, leak_neg, iou, iou_neg))


def _mask_rounds(sam, source, rounds=3):
    """mIoU of rounds 1..3: one click at the object's deepest pixel, from round 2 on with the previous round's
    low-resolution logits (of its most confident mask) as the mask prompt."""
    predictor, ious = EfficientSamPredictor(sam), [[] for _ in range(rounds)]
    for i in range(len(source)):
        item = source.load(i)
        predictor.set_image(item.image)
        for gt in item.masks:
            logits = None
            for k in range(rounds):
                masks, scores, low = predictor.predict(np.array([_deepest(gt)], np.float32), np.array([1]),
                                                       mask_input=logits)
                best = int(np.argmax(scores))
                ious[k].append((masks[best] & gt).sum() / (masks[best] | gt).sum())
                logits = low[best:best + 1]
    return [float(np.mean(r)) for r in ious]


@pytest.mark.learning
def test_feeding_back_the_previous_mask_is_learned(finetuned, scenes, quickstart):
    """SAM's mask prompt, round k+1 = the same click plus round k's logits: untrained (the control), feeding the mask
    back costs accuracy; finetuned, each round is at least as good as the one before (within 0.005)."""
    val = open_source(scenes[1][0], masks=scenes[1][1])
    untrained = _mask_rounds(_starting_model(quickstart), val)
    assert untrained[1] < untrained[0] - MASK_ROUND_TOLERANCE, untrained
    trained = _mask_rounds(_finetuned_model(finetuned), val)
    assert trained[1] >= trained[0] - TRAINED_ROUND_TOLERANCE and trained[2] >= trained[1] - TRAINED_ROUND_TOLERANCE, \
        trained


def test_run_directory_holds_the_metrics_report_and_a_model_that_loads_both_ways(finetuned):
    out, console, metrics = finetuned
    for when in ("before", "after"):
        assert set(metrics[when]) >= {"box_miou", "point_miou", "miou_at_clicks", "noc85", "noc90"}
    report = (out / "report.md").read_text()
    assert "| NoC@85" in report and all((out / p).is_file() for p in
                                          [line.split("(")[1].rstrip(")") for line in report.splitlines()
                                           if line.startswith("![")])
    # model/ loads both ways, with its switches on, and both compute the same masks
    from efficientsam_zoo.integrations.hf import EfficientSamModel

    native = build_efficient_sam("efficientsam-ti", checkpoint=str(out / "model")).eval()
    hf = EfficientSamModel.from_pretrained(str(out / "model")).eval()
    assert native.negative_points and native.mask_prompts and hf.config.negative_points and hf.config.mask_prompts
    torch.testing.assert_close(hf.efficientsam.state_dict(), native.state_dict(), rtol=0, atol=0)
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no half-written leftovers


def _quick(quickstart, scenes, out, *extra):
    """A few iterations of the command on the touching scenes (few val instances, a 3-click budget)."""
    (images, masks), (val_images, val_masks) = scenes
    return _cli("finetune", "--images", images, "--masks", masks, "--val-images", val_images, "--val-masks", val_masks,
                "--checkpoint", quickstart[0] / "model", "--out-dir", out, "--eval-instances", 4, "--max-clicks", 3,
                *extra)


def test_lora_changes_only_its_adapters_merges_exactly_and_resumes(quickstart, scenes, tmp_path):
    """The lora recipe from the shipped mask-folder config: the encoder's own weights stay as they were, the adapters
    and the decoder train; the exported model/ (merged) computes what the unmerged adapters compute and loads with
    peft made unimportable. Then a kill after iteration 5 is simulated and ``--resume`` finishes the run."""
    from efficientsam_zoo.integrations.openmmlab.lora import add_lora

    out = tmp_path / "lora"
    _quick(quickstart, scenes, out, "--recipe", "lora", "--max-iters", 6)
    start = build_efficient_sam("efficientsam-ti", checkpoint=str(quickstart[0] / "model")).state_dict()
    state = {k[len("sam."):]: v for k, v in torch.load(out / "work" / "iter_6.pth", map_location="cpu",
                                                        weights_only=False)["state_dict"].items()}
    adapters = [k for k in state if ".lora_" in k]
    assert adapters and all(".attn." in k for k in adapters)
    assert any(state[k].abs().sum() > 0 for k in adapters if ".lora_B." in k)  # B starts at zero: it trained
    for name, value in start.items():
        if name.startswith("image_encoder."):  # frozen, under peft's base_layer where an adapter sits
            key = name if name in state else name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
            torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=name)
    assert any(not torch.equal(state[k], start[k]) for k in start if k.startswith("mask_decoder."))

    # merged (model/) == unmerged (the Runner's checkpoint with the adapters): image embeddings within 1e-5, logits
    # within float32 rounding of their size, on clicks of a val image
    merged = build_efficient_sam("efficientsam-ti", checkpoint=str(out / "model")).eval()
    unmerged = build_efficient_sam(merged.spec)
    add_lora(unmerged.image_encoder, rank=8, alpha=16.0)
    unmerged.load_state_dict(state, strict=True)
    image = open_source(scenes[1][0], masks=scenes[1][1]).load(0).image
    features, logits = [], []
    for sam in (merged, unmerged.eval()):
        predictor = EfficientSamPredictor(sam)
        predictor.set_image(image)
        features.append(predictor.features)
        logits.append(predictor.predict(np.array([[40.0, 50.0], [90.0, 70.0]]), np.array([1, 0]), return_logits=True)[0])
    assert (features[0] - features[1]).abs().max() <= 1e-5 and features[0].abs().max() > 0.1
    np.testing.assert_allclose(logits[0], logits[1], rtol=1e-5, atol=1e-5)
    probe = ("import sys; sys.modules['peft'] = None\n"  # `import peft` now fails, as if it were not installed
             "from efficientsam_zoo import build_efficient_sam\n"
             "from efficientsam_zoo.integrations.hf import EfficientSamModel\n"
             f"m = build_efficient_sam('efficientsam-ti', checkpoint={str(out / 'model')!r})\n"
             f"h = EfficientSamModel.from_pretrained({str(out / 'model')!r})\n"
             "assert m.negative_points and h.config.mask_prompts\nprint('loaded without peft')")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0 and "loaded without peft" in r.stdout, r.stderr[-3000:]

    # killed after iteration 5: the last checkpoint is iter_5's, the exports are gone; --resume finishes the run
    work = out / "work"
    (work / "last_checkpoint").write_text(str(work / "iter_5.pth"))
    for p in ("metrics.json", "report.md"):
        os.remove(out / p)
    shutil.rmtree(out / "model")
    before = json.load(open(out / "metrics_before.json"))
    _quick(quickstart, scenes, out, "--recipe", "lora", "--max-iters", 6, "--resume")
    assert f"resuming from {work / 'iter_5.pth'}" in (out / "logs" / "finetune.log").read_text()
    metrics = json.load(open(out / "metrics.json"))
    assert metrics["before"] == before  # measured once, by the first run
    assert build_efficient_sam("efficientsam-ti", checkpoint=str(out / "model")).negative_points


def test_coco_json_with_the_full_recipe_from_the_shipped_config(quickstart, tmp_path):
    """The coco-format config (polygons and RLE, through pycocotools) with the full recipe: two iterations, a model
    that loads, and a val split made from a seeded fraction."""
    from efficientsam_zoo.data.synthetic import make_coco_instances

    ann = make_coco_instances(str(tmp_path / "coco"), splits={"train": 10}, size=(128, 128), n_objects=4, touching=True)
    coco = json.load(open(ann["train"]))  # on every image: a zero-area annotation and a polygon outside the image
    for image in coco["images"]:
        coco["annotations"] += [
            dict(id=10_000 + 2 * image["id"], image_id=image["id"], category_id=1, iscrowd=0, area=0.0,
                 bbox=[5, 5, 0, 0], segmentation=[[5, 5, 5, 5, 5, 5]]),
            dict(id=10_001 + 2 * image["id"], image_id=image["id"], category_id=1, iscrowd=0, area=25.0,
                 bbox=[300, 300, 5, 5], segmentation=[[300, 300, 305, 300, 305, 305]])]
    json.dump(coco, open(ann["train"], "w"))
    out = tmp_path / "full"
    console = _cli("finetune", "--images", tmp_path / "coco" / "train2017", "--annotations", ann["train"],
                   "--val-fraction", 0.2, "--checkpoint", quickstart[0] / "model", "--recipe", "full", "--max-iters",
                   2, "--out-dir", out, "--eval-instances", 4, "--max-clicks", 3)
    assert "noc85" in console
    metrics = json.load(open(out / "metrics.json"))
    assert metrics["after"]["instances"] == 4
    # the 2 val images' bad annotations, counted by reason (the data workers count the training images' own)
    assert metrics["skipped"]["val"] == {"zero area": 2, "mask outside its image (or empty)": 2}
    assert "skipping" in (out / "logs" / "finetune.log").read_text()
    sam = build_efficient_sam("efficientsam-ti", checkpoint=str(out / "model"))
    assert sam.negative_points and sam.mask_prompts and sam.img_size == 128
