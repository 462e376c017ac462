"""SAM-style prompt simulation and finetuning losses (``training.sam_finetune``), against hand computations."""
import torch

from efficientsam_zoo.training.sam_finetune import error_points, initial_prompts, mask_losses

#: SAM's mask loss: focal and dice in the ratio 20 : 1 (SAM paper, section 3 / appendix A; EfficientSAM finetunes with
#: SAM's losses). Written here from the paper, not imported, so a changed weight in the code fails this file.
FOCAL_WEIGHT = 20.0


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
