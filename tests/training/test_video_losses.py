"""SAM 2's simulated interaction and losses (training.video) against hand computations."""
import math

import pytest
import torch

from efficientsam_zoo.training.video import (LOSS_WEIGHTS, clip_loss, correction_points, first_prompts, plan_clip,
                                             step_losses)


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_step_losses_by_hand():
    """One object, one candidate, two pixels: logits (2, -2) against target (1, 0), predicted IoU 0.5."""
    logits = torch.tensor([[[[2.0, -2.0]]]])
    gt = torch.tensor([[[True, False]]])
    out = step_losses(logits, torch.tensor([[0.5]]), torch.tensor([[3.0]]), gt)
    p = 1 / (1 + math.exp(-2))  # both pixels are right with probability p
    focal_pixel = 0.25 * (1 - p) ** 2 * -math.log(p)  # the positive pixel (alpha 0.25)
    focal_pixel_neg = 0.75 * (1 - p) ** 2 * -math.log(p)  # the negative one (1 - alpha)
    assert float(out["loss_mask"]) == pytest.approx((focal_pixel + focal_pixel_neg) / 2, rel=1e-5)
    dice = 1 - (2 * p + 1) / ((p + (1 - p)) + 1 + 1)
    assert float(out["loss_dice"]) == pytest.approx(dice, rel=1e-5)
    assert float(out["loss_iou"]) == pytest.approx(0.5)  # the binarised mask is exact: IoU 1, |0.5 - 1|
    assert float(out["loss_class"]) == pytest.approx(math.log(1 + math.exp(-3)), rel=1e-5)


def test_best_candidate_supervised_iou_averaged_and_absent_objects():
    gt = torch.tensor([[[True, False]]])
    good, bad = torch.tensor([4.0, -4.0]), torch.tensor([-4.0, 4.0])
    logits = torch.stack([bad, good])[None, :, None]  # [1, 2, 1, 2]: the second candidate is right
    iou = torch.tensor([[0.0, 1.0]])
    out = step_losses(logits, iou, torch.tensor([[5.0]]), gt)
    alone = step_losses(logits[:, 1:], iou[:, 1:], torch.tensor([[5.0]]), gt)
    assert torch.allclose(out["loss_mask"], alone["loss_mask"]) and torch.allclose(out["loss_dice"], alone["loss_dice"])
    assert float(out["loss_iou"]) == pytest.approx(0.0)  # |0 - IoU 0| and |1 - IoU 1|, averaged
    absent = step_losses(logits, iou, torch.tensor([[5.0]]), torch.zeros_like(gt))
    assert float(absent["loss_mask"]) == float(absent["loss_dice"]) == float(absent["loss_iou"]) == 0.0
    assert float(absent["loss_class"]) == pytest.approx(5 + math.log(1 + math.exp(-5)), rel=1e-5)


def test_clip_loss_sums_steps_and_frames_per_object():
    gt = torch.tensor([[[[True, False]], [[False, True]]]])  # [T=1, K=2, 1, 2]
    step = (torch.tensor([[[[2.0, -2.0]]], [[[2.0, -2.0]]]]), torch.tensor([[0.5], [0.5]]), torch.tensor([[1.0], [1.0]]))
    one = step_losses(*step, gt[0])
    out = clip_loss([[step, step]], gt)  # two steps on the one frame, two objects
    for name, weight in LOSS_WEIGHTS.items():
        assert float(out[name]) == pytest.approx(float(one[name].sum()) * 2 / 2, rel=1e-6)
    assert float(out["loss"]) == pytest.approx(sum(w * float(out[n]) for n, w in LOSS_WEIGHTS.items()), rel=1e-6)


def test_plan_clip():
    assert plan_clip(1, _g()).use_points and plan_clip(1, _g()).correct_frames == [0]
    seen_mask = seen_points = False
    for seed in range(40):
        plan = plan_clip(8, _g(seed))
        assert plan.init_frames[0] == 0 and 1 <= len(plan.init_frames) <= 2
        assert plan.order(8)[:len(plan.init_frames)] == plan.init_frames and sorted(plan.order(8)) == list(range(8))
        if plan.use_points:
            seen_points = True
            assert set(plan.init_frames) <= set(plan.correct_frames) and len(plan.correct_frames) <= 2
        else:
            seen_mask = True
            assert plan.correct_frames == []
    assert seen_mask and seen_points  # prob_point 0.5 draws both kinds


def test_first_prompts_clicks_and_boxes():
    masks = torch.zeros(2, 20, 30, dtype=torch.bool)
    masks[0, 5:10, 5:15] = True
    masks[1, 12:18, 20:28] = True
    points, labels = first_prompts(masks, _g(), prob_box=0.0)
    assert points.shape == (2, 1, 2) and labels.tolist() == [[1], [1]]
    for k in range(2):
        x, y = points[k, 0].long().tolist()
        assert masks[k, y, x]
    points, labels = first_prompts(masks, _g(), prob_box=1.0)
    assert labels.tolist() == [[2, 3], [2, 3]]
    x0, y0, x1, y1 = points[0].reshape(-1).tolist()
    assert abs(x0 - 5) <= 1.0 + 1e-6 and abs(x1 - 14) <= 1.0 + 1e-6  # jitter at most 0.1 of the 9-px side
    assert abs(y0 - 5) <= 0.4 + 1e-6 and abs(y1 - 9) <= 0.4 + 1e-6


def test_correction_points_come_from_the_errors():
    gt = torch.zeros(1, 10, 10, dtype=torch.bool)
    gt[0, 2:6, 2:6] = True
    pred = torch.zeros_like(gt)
    pred[0, 2:6, 2:4] = True  # misses columns 4-5: a positive click there
    for seed in range(10):
        points, labels = correction_points(pred, gt, _g(seed), prob_from_gt=0.0)
        x, y = points[0, 0].long().tolist()
        assert labels.item() == 1 and gt[0, y, x] and not pred[0, y, x]
    extra = gt.clone()
    extra[0, 8, 8] = True  # one false positive and nothing missed: a negative click on it
    points, labels = correction_points(extra, gt, _g(), prob_from_gt=0.0)
    assert labels.item() == 0 and points[0, 0].tolist() == [8.0, 8.0]
    points, labels = correction_points(gt, gt, _g(), prob_from_gt=0.0)  # exact: a negative click in the background
    x, y = points[0, 0].long().tolist()
    assert labels.item() == 0 and not gt[0, y, x]
