"""The interactive protocol (mIoU after k clicks, NoC@85 / @90) against hand computations: where the clicker clicks,
and what it counts for a scripted predictor whose masks are known in advance."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from efficientsam_zoo.data.instances import Annotated, InstanceSource
from efficientsam_zoo.evaluation.interactive import evaluate_clicks, next_click


def _square(x0, y0, x1, y1, shape=(40, 40)):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_the_first_click_is_positive_at_the_deepest_object_pixel():
    gt = _square(10, 4, 21, 15)  # 11 x 11: one centre pixel, 6 px from every edge
    assert next_click(np.zeros_like(gt), gt) == (15, 9, True)


def test_a_deeper_false_alarm_gets_a_negative_click_at_its_centre():
    gt = _square(0, 0, 6, 6)
    pred = gt | _square(20, 20, 35, 35)  # a 15-px false alarm, deeper than any miss (there is none)
    assert next_click(pred, gt) == (27, 27, False)
    missed = gt & ~_square(0, 0, 6, 3)  # now a 6 x 3 miss beside a 2-px-deep false alarm: the miss is deeper
    pred = missed.copy()
    pred[:, 6:8] |= _square(6, 0, 8, 40)[:, 6:8]
    x, y, positive = next_click(missed | (pred & ~gt), gt)
    assert positive and (y < 3 and x < 6)
    clicked = np.zeros_like(gt)
    clicked[y, x] = True  # a clicked pixel is never clicked again
    assert next_click(missed | (pred & ~gt), gt, clicked)[:2] != (x, y)


class _Scripted(InstanceSource):
    name = "scripted"

    def __init__(self, gts):
        super().__init__()
        self.gts = gts

    def __len__(self):
        return 1

    def load(self, i):
        return Annotated(image_id=0, image=np.zeros((40, 40, 3), np.uint8), masks=self.gts, ids=list(range(len(self.gts))))


class _ScriptedPredictor:
    """Answers click k with ``script[k]`` (a mask); records the labels it was given."""

    def __init__(self, script, negative_points=True):
        self.script, self.calls, self.labels = script, 0, []
        self.model = SimpleNamespace(negative_points=negative_points, mask_prompts=False,
                                     decoder_max_num_input_points=6, mask_threshold=0.0)

    def set_image(self, image):
        self.calls = 0

    def check_prompts(self, points, labels, boxes):
        self.labels.append(labels[0].tolist())
        return torch.as_tensor(points), torch.as_tensor(labels)

    def decode(self, points, labels, multimask_output=True, mask_input=None):
        mask = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        logits = torch.from_numpy(np.where(mask, 10.0, -10.0)).float()[None, None].repeat(1, 3, 1, 1)
        return logits, torch.tensor([[0.9, 0.1, 0.1]])

    def upscale(self, low):
        return low


def test_noc_and_miou_after_k_clicks_follow_the_definitions():
    gt = _square(10, 10, 30, 30)  # 400 px
    half = _square(10, 10, 20, 30)  # IoU 0.5
    most = _square(10, 10, 28, 30)  # 360 px: IoU 0.9
    leaky = gt | _square(30, 10, 40, 30)  # 600 px: IoU 400 / 600
    script = [half, leaky, most, gt]
    predictor = _ScriptedPredictor(script)
    out = evaluate_clicks(predictor, _Scripted([gt]), max_clicks=20, report_clicks=5, progress=False)
    assert out["n"] == 1 and out["max_clicks"] == 20
    np.testing.assert_allclose(out["miou_at_clicks"], [0.5, 400 / 600, 0.9, 1.0, 1.0])
    assert out["noc"] == {"85": 3.0, "90": 3.0}
    # the second click answers "half": positive (a miss); the third answers "leaky": negative (a false alarm)
    assert predictor.labels[1] == [1, 1] and predictor.labels[2] == [1, 1, 0]
    never = _ScriptedPredictor([half])
    out = evaluate_clicks(never, _Scripted([gt]), max_clicks=7, report_clicks=5, progress=False)
    assert out["noc"] == {"85": 7.0, "90": 7.0} and never.calls == 7  # capped at the budget


def test_models_without_negative_clicks_are_refused():
    with pytest.raises(ValueError, match="the interactive protocol places negative clicks: label 0 is a negative"):
        evaluate_clicks(_ScriptedPredictor([np.zeros((40, 40), bool)], negative_points=False),
                        _Scripted([_square(1, 1, 5, 5)]), progress=False)
