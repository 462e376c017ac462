"""SA-1B reading (tar shards, lazy masks), SAM-style prompt simulation and losses, and EfficientSAM finetuning
through mmengine's Runner on generated shards, with resume."""
import json
import os
import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from efficientsam_zoo.data.sa1b import SA1BSamples
from efficientsam_zoo.data.synthetic import make_sa1b_shards
from efficientsam_zoo.utils.masks import decode_rle
from efficientsam_zoo.training.sam_finetune import FOCAL_WEIGHT, error_points, initial_prompts, mask_losses



@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("sa1b")
    return make_sa1b_shards(str(root), n_shards=2, images_per_shard=3, size=(160, 120))


def test_tar_shards_are_read_without_unpacking_and_masks_lazily(shards, tmp_path):
    before = set(os.listdir(os.path.dirname(shards[0])))
    ds = SA1BSamples(shards, img_size=128, max_masks=2)
    assert len(ds) == 6 and ds.decoded == 0  # indexing reads tar headers only
    sample = ds[4]
    assert ds.decoded == int(sample["valid"].sum()) <= 2
    assert set(os.listdir(os.path.dirname(shards[0]))) == before
    assert sample["image"].shape == (3, 128, 128) and sample["masks"].shape == (2, 32, 32)
    # the same sample from an unpacked folder, and an independent decode + resize of its first mask
    folder = tmp_path / "unpacked"
    with tarfile.open(shards[1]) as tar:
        tar.extractall(folder)
    same = SA1BSamples([str(folder)], img_size=128, max_masks=2)[1]
    torch.testing.assert_close(same["image"], sample["image"])
    with tarfile.open(shards[1]) as tar:
        record = json.loads(tar.extractfile("sa_5.json").read())
    rng = np.random.default_rng([0, 4])
    j = rng.choice(len(record["annotations"]), size=2, replace=False)[0]
    m = torch.from_numpy(decode_rle(record["annotations"][j]["segmentation"]).astype(np.float32))
    expected = F.interpolate(m[None, None], (32, 32), mode="area")[0, 0] > 0.5
    torch.testing.assert_close(sample["masks"][0], expected)
    x, y, w, h = record["annotations"][j]["bbox"]
    torch.testing.assert_close(sample["boxes"][0], torch.tensor([x * 128 / 160, y * 128 / 120, (x + w) * 128 / 160,
                                                                 (y + h) * 128 / 120]))


def test_shard_index_is_cached_and_follows_the_shard(tmp_path):
    """One header pass per shard, cached under $ESZ_CACHE_DIR; a changed shard is indexed again; reads (also from
    a pickled copy, as DataLoader workers get) equal tarfile's own extraction."""
    import pickle

    from efficientsam_zoo.data import sa1b

    (shard,) = make_sa1b_shards(str(tmp_path / "a"), n_shards=1, images_per_shard=4, size=(64, 48))
    cache = sa1b._index_cache_path(shard)
    assert cache.startswith(os.environ["ESZ_CACHE_DIR"]) and not os.path.exists(cache)
    index = sa1b.SA1BIndex([shard])
    assert os.path.isfile(cache) and os.listdir(tmp_path / "a") == [os.path.basename(shard)]
    passes = []
    real_open = tarfile.open
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tarfile, "open", lambda *a, **k: passes.append(a) or real_open(*a, **k))
        again = sa1b.SA1BIndex([shard])
        assert passes == []  # served from the cache
        for i in range(len(again)):
            img, record = pickle.loads(pickle.dumps(again)).read(i)
            with real_open(shard) as tar:
                assert img == tar.extractfile(again.items[i][1]).read()
                assert record == json.loads(tar.extractfile(again.items[i][2]).read())
        make_sa1b_shards(str(tmp_path / "a"), n_shards=1, images_per_shard=2, size=(64, 48), seed=1)  # rewritten
        changed = sa1b.SA1BIndex([shard])
    assert [a[1] for a in passes] == ["w", "r:"] and len(changed) == 2 and len(index) == 4  # written, indexed


def test_prompt_simulation():
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(20, 16, 16, dtype=torch.bool)
    boxes = torch.zeros(20, 4)
    for i in range(20):
        masks[i, i % 8:i % 8 + 6, 2:10] = True
        boxes[i] = torch.tensor([2 * 4, (i % 8) * 4, 10 * 4, (i % 8 + 6) * 4], dtype=torch.float)
    points, labels = initial_prompts(masks, boxes, 64, g, box_prob=0.5)
    assert {tuple(r) for r in labels.tolist()} == {(2, 3), (1, -1)}
    for i in range(20):
        if labels[i, 0] == 1:
            x, y = (points[i, 0] / 4).long().tolist()
            assert masks[i, y, x]
        else:
            assert (points[i].reshape(4) - boxes[i]).abs().max() <= 0.1 * 40 + 1e-6
    pred = torch.zeros_like(masks)
    pred[:10] = masks[:10] | torch.roll(masks[:10], 3, dims=2)  # extra pixels: false positives
    pts, lbl = error_points(pred, masks, 64, g)
    for i in range(20):
        x, y = (pts[i, 0] / 4).long().tolist()
        if i < 10:
            assert lbl[i, 0] == 0 and pred[i, y, x] and not masks[i, y, x]
        else:
            assert lbl[i, 0] == 1 and masks[i, y, x] and not pred[i, y, x]
    exact_pts, exact_lbl = error_points(masks, masks, 64, g)
    assert (exact_lbl == -1).all()


def test_loss_equals_an_independent_computation():
    torch.manual_seed(0)
    logits = torch.randn(3, 3, 8, 8)
    iou_pred = torch.rand(3, 3)
    gt = torch.rand(3, 8, 8) > 0.5
    total, focal, dice, iou_mse = mask_losses(logits, iou_pred, gt)
    exp_total, exp_focal, exp_dice, exp_iou = [], [], [], []
    for k in range(3):
        best, best_val = None, None
        for m in range(3):
            p = torch.sigmoid(logits[k, m])
            t = gt[k].float()
            pt = p * t + (1 - p) * (1 - t)
            fl = (-(0.25 * t + 0.75 * (1 - t)) * (1 - pt) ** 2 * torch.log(pt.clamp(min=1e-12))).mean()
            dl = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
            val = FOCAL_WEIGHT * fl + dl
            if best_val is None or val < best_val:
                best, best_val, best_fl, best_dl = m, val, fl, dl
        binary = logits[k, best] > 0
        actual = (binary & gt[k]).sum() / (binary | gt[k]).sum()
        exp_total.append(best_val)
        exp_focal.append(best_fl)
        exp_dice.append(best_dl)
        exp_iou.append((iou_pred[k, best] - actual) ** 2)
    torch.testing.assert_close(focal, torch.stack(exp_focal).mean(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(dice, torch.stack(exp_dice).mean(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(iou_mse, torch.stack(exp_iou).mean(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(total, torch.stack(exp_total).mean() + iou_mse, atol=1e-5, rtol=1e-5)
