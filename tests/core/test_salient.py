"""Salient instance segmentation (paper Figure 6): regions of a saliency map, 3 seeded clicks inside each, one mask
per region; and the CLI that writes records and an overlay."""
import json

import numpy as np
import pytest

from efficientsam_zoo import EfficientSamPredictor
from efficientsam_zoo.data.synthetic import make_scene
from efficientsam_zoo.salient import salient_regions, segment_salient
from efficientsam_zoo.utils.masks import decode_rle

pytestmark = pytest.mark.paper


@pytest.fixture(scope="module")
def scene():
    image, masks = make_scene(4, height=120, width=160, n_objects=3)
    return image, masks, np.any(masks, axis=0).astype(np.float32)  # a perfect saliency map: the objects


def test_regions_cover_the_salient_objects(scene):
    _, masks, saliency = scene
    regions = salient_regions(saliency, 0.5, min_area=1)
    assert 1 <= len(regions) <= len(masks)
    np.testing.assert_array_equal(np.any(regions, axis=0), saliency >= 0.5)
    for m in masks:  # each object lies inside exactly one region
        assert sum(bool((r & m).any()) for r in regions) == 1
        assert any((m & ~r).sum() == 0 for r in regions)
    assert [r.sum() for r in regions] == sorted((r.sum() for r in regions), reverse=True)
    assert salient_regions(saliency, 0.5, min_area=10 ** 6) == []


def test_three_seeded_clicks_per_region_and_one_mask_each(scene, tiny_model):
    image, _, saliency = scene
    p = EfficientSamPredictor(tiny_model)
    records = segment_salient(p, image, saliency, seed=7)
    regions = salient_regions(saliency)
    assert len(records) == len(regions)
    for rec, region in zip(records, regions):
        pts = np.asarray(rec["point_coords"])
        assert pts.shape == (3, 2) and region[pts[:, 1].astype(int), pts[:, 0].astype(int)].all()
        masks, scores, _ = p.predict(pts.astype(np.float32), np.ones(3, dtype=np.int64), multimask_output=False)
        np.testing.assert_array_equal(decode_rle(rec["segmentation"]), masks[0])
        assert rec["area"] == int(masks[0].sum()) and rec["predicted_iou"] == pytest.approx(float(scores[0]))
    assert segment_salient(p, image, saliency, seed=7) == records  # seeded
    assert segment_salient(p, image, saliency, seed=8) != records
    # a map at another resolution is resized to the image
    half = saliency[::2, ::2]
    assert len(segment_salient(p, image, half, seed=7)) == len(records)
    with pytest.raises(ValueError, match="no salient region.*lower --threshold"):
        segment_salient(p, image, saliency * 0.2)


@pytest.mark.slow
def test_cli_writes_records_and_overlay(scene, official_ti_checkpoint, tmp_path, capsys):
    from PIL import Image

    from efficientsam_zoo.cli import main

    image, _, saliency = scene
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray((saliency * 255).astype(np.uint8)).save(tmp_path / "sal.png")
    out, overlay = tmp_path / "salient.json", tmp_path / "overlay.png"
    rc = main(["segment-salient", str(tmp_path / "img.png"), "--saliency-map", str(tmp_path / "sal.png"),
               "--checkpoint", official_ti_checkpoint, "--out", str(out), "--overlay", str(overlay)])
    assert rc == 0 and overlay.exists()
    records = json.loads(out.read_text())
    assert len(records) == len(salient_regions(saliency)) and "salient instances" in capsys.readouterr().out
    rc = main(["segment-salient", str(tmp_path / "img.png"), "--saliency-model", "no-such/saliency-model",
               "--checkpoint", official_ti_checkpoint, "--out", str(tmp_path / "x.json")])
    assert rc == 2 and "saliency model 'no-such/saliency-model'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
