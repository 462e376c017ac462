"""The demo's backend (no Gradio): clicks segment the clicked object with the main job's model, the embedding is
computed once per image, downloads round-trip, segment everything reports progress, and bad or unusual input is
named or read as the CLI reads it."""
import json
import os

import numpy as np
import pytest
from demo_fixtures import interior_point, iou
from PIL import Image

from efficientsam_zoo.demo import DemoBackend, DemoInputError, parse_box, parse_points
from efficientsam_zoo.utils.image import load_image_rgb
from efficientsam_zoo.utils.masks import decode_rle


@pytest.fixture
def backend(demo_model, tmp_path):
    return DemoBackend(demo_model, work_dir=str(tmp_path))


def test_a_click_segments_the_clicked_object(backend, scenes):
    """One click at each object's interior point of three held-out scenes: mean IoU >= 0.7 with the main job's
    finetuned model, above a disk of the object's own area around the same click (a baseline that is told the size;
    measured 0.86 against 0.76 on CPU)."""
    ours, disks = [], []
    for path, _, masks in scenes:
        image = backend.read_image(path)
        for mask in masks:
            x, y = interior_point(mask)
            result = backend.segment(image, [(x, y, 1)])
            assert result.masks.shape[1:] == mask.shape and result.score == result.scores.max()
            ours.append(iou(result.mask, mask))
            yy, xx = np.mgrid[:mask.shape[0], :mask.shape[1]]
            disks.append(iou((xx - x) ** 2 + (yy - y) ** 2 <= mask.sum() / np.pi, mask))
    print(f"click IoU {np.mean(ours):.3f} (disk baseline {np.mean(disks):.3f}) over {len(ours)} objects")
    assert np.mean(ours) >= 0.7 and np.mean(ours) > np.mean(disks) + 0.05


def test_the_embedding_is_computed_once_per_image(backend, scenes):
    (path_a, _, masks_a), (path_b, _, _) = scenes[0], scenes[1]
    a, b = backend.read_image(path_a), backend.read_image(path_b)
    x, y = interior_point(masks_a[0])
    first = backend.segment(a, [(x, y, 1)])
    again = backend.segment(a, [(x, y, 1), (x + 2, y, 1)])
    assert backend.embeddings_computed == 1 and again.masks.shape == first.masks.shape
    backend.segment(b, [(10, 10, 1)])
    backend.segment(a, [(x, y, 1)])  # back to the first image: its embedding is still kept
    assert backend.embeddings_computed == 2
    box = backend.segment(a, box=(x - 15, y - 15, x + 15, y + 15))
    assert box.masks.shape[1:] == a.shape[:2] and backend.embeddings_computed == 2


def test_downloads_hold_the_mask(backend, scenes):
    path, _, masks = scenes[0]
    result = backend.segment(backend.read_image(path), [(*interior_point(masks[0]), 1)])
    png, rle = backend.mask_files(result)
    assert np.array_equal(np.array(Image.open(png)) > 0, result.mask)
    (record,) = json.load(open(rle))
    assert np.array_equal(decode_rle(record["segmentation"]).astype(bool), result.mask)
    assert record["area"] == int(result.mask.sum()) and record["predicted_iou"] == pytest.approx(result.score)


def test_segment_everything_reports_progress(backend, scenes):
    calls = []
    image = backend.read_image(scenes[0][0])
    records = backend.everything(image, grid=8, pred_iou_thresh=0.5, stability_score_thresh=0.5,
                                 progress=lambda done, total: calls.append((done, total)))
    assert records and [r["area"] for r in records] == sorted((r["area"] for r in records), reverse=True)
    assert calls[-1] == (1, 1) and all(total == 1 for _, total in calls)  # 64 points, one decoder call of 64
    assert json.load(open(backend.records_file(records)))[0]["area"] == records[0]["area"]
    overlay = backend.everything_overlay(image, records)
    assert overlay.shape == image.shape and overlay.dtype == np.uint8


def test_16_bit_and_cmyk_uploads_are_read_as_the_cli_reads_them(backend, scenes, tmp_path):
    _, rgb, masks = scenes[0]
    deep = tmp_path / "deep.png"
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(deep)  # 16-bit grey
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(cmyk)
    for path in (deep, cmyk):
        image = backend.read_image(str(path))
        assert np.array_equal(image, load_image_rgb(str(path)))
        assert backend.segment(image, [(*interior_point(masks[0]), 1)]).masks.shape[1:] == rgb.shape[:2]
    assert backend.read_image(str(deep)).dtype == np.uint16  # not cut to 8 bits


def test_bad_input_is_named(backend, scenes, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    small = DemoBackend(backend.model, max_pixels=100 * 100, work_dir=str(tmp_path))
    image = backend.read_image(scenes[0][0])
    cases = [
        (lambda: backend.read_image(str(text)), r"'notes\.png' is not an image this demo can read"),
        (lambda: backend.read_image(None), "no image: upload one"),
        (lambda: small.read_image(scenes[0][0]), r"128x128 = 0\.0164 megapixels, over the demo's limit of 0\.01 megapixels"),
        (lambda: backend.segment(image, [(500, 5, 1)]), r"the click \(500, 5\) lies outside the 128x128 image"),
        (lambda: backend.segment(image), "click on the object"),
        (lambda: backend.segment(image, box=(50, 50, 10, 10)), "x0 <= x1|x1 >= x0|reversed"),
        (lambda: backend.everything(image, grid=0), "grid must be 1..64"),
        (lambda: parse_points("[[1, 2]]"), r"points must be a JSON list of \[x, y, label\]"),
        (lambda: parse_points("[[1, 2, 5]]"), "labels must be 1 .object. or 0"),
        (lambda: parse_box("1,2,3"), "box must be 'x0,y0,x1,y1'"),
    ]
    if not backend.model.negative_points:
        cases.append((lambda: backend.segment(image, [(20, 20, 1), (60, 60, 0)]), "negative"))
    for call, message in cases:
        with pytest.raises(DemoInputError, match=message):
            call()
    assert parse_points("[[1, 2, 0]]") == [(1.0, 2.0, 0)] and parse_box(" ") is None


def test_old_output_folders_are_removed(tmp_path):
    """Only the newest ``keep`` folders of returned files stay on disk (a long-running server does not fill it)."""
    from efficientsam_zoo.demo.backend import OutputFolders

    folders = OutputFolders(str(tmp_path / "out"), keep=3)
    made = [folders.new() for _ in range(5)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(os.path.basename(m) for m in made[-3:])
