"""Zero-shot evaluation on generated COCO-format data: an oracle scores 1.0, a box-as-mask model scores
what an independent computation gives, sampling / RLE helpers behave, AP comes from pycocotools."""
import hashlib
import json
import os

import numpy as np
import pytest
from pycocotools.coco import COCO

from efficientsam_zoo.data.synthetic import make_coco_instances
from efficientsam_zoo.evaluation.common import sample_points_in_mask
from efficientsam_zoo.evaluation.instance_eval import evaluate_instances
from efficientsam_zoo.evaluation.point_eval import evaluate_points
from efficientsam_zoo.utils.image import load_image_rgb
from efficientsam_zoo.utils.masks import box_to_mask, decode_rle, encode_rle, mask_to_box


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    ann = make_coco_instances(str(root), {"val": 4}, size=(160, 120), n_objects=3, seed=1)["val"]
    return ann, str(root / "val2017")


def _gt_by_image(ann_file, img_dir):
    api = COCO(ann_file)
    table = {}
    for img in api.loadImgs(sorted(api.getImgIds())):
        image = load_image_rgb(os.path.join(img_dir, img["file_name"]))
        anns = api.loadAnns(api.getAnnIds(imgIds=[img["id"]], iscrowd=False))
        table[hashlib.sha1(image.tobytes()).hexdigest()] = [api.annToMask(a).astype(bool) for a in anns]
    return api, table


def _oracle(table):
    """Returns each instance's ground-truth mask (as the most confident of 3 outputs), in query order."""
    def segment(image, points, labels):
        gts = table[hashlib.sha1(image.tobytes()).hexdigest()]
        assert len(points) == len(gts)
        masks = np.zeros((len(gts), 3) + gts[0].shape, dtype=bool)
        masks[:, 1] = np.stack(gts)
        return masks, np.tile([0.1, 0.9, 0.2], (len(gts), 1))
    return segment


def test_oracle_scores_miou_1(coco):
    ann, img_dir = coco
    _, table = _gt_by_image(ann, img_dir)
    out = evaluate_points(_oracle(table), ann, img_dir, progress=False)
    n = sum(len(v) for v in table.values())  # every annotated instance
    assert n >= 10
    for prompt in ("box", "1pt", "3pt"):
        assert out["summary"][prompt]["all"] == pytest.approx(100.0)
        assert out["summary"][prompt]["n"] == n
    assert {r["size"] for r in out["records"]} <= {"small", "medium", "large"}


def test_box_as_mask_model_matches_an_independent_computation(coco):
    ann, img_dir = coco

    def box_model(image, points, labels):
        h, w = image.shape[:2]
        masks = np.stack([np.stack([box_to_mask(p.reshape(-1), h, w)] * 3) for p in points])
        return masks, np.ones(masks.shape[:2])

    out = evaluate_points(box_model, ann, img_dir, prompt_types=("box",), progress=False)
    api = COCO(ann)
    ious = []
    for a in api.loadAnns(api.getAnnIds()):
        m = api.annToMask(a).astype(bool)
        ys, xs = np.nonzero(m)
        box_area = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)  # the mask lies inside its tight box
        ious.append(m.sum() / box_area)
    assert out["summary"]["box"]["all"] == pytest.approx(100.0 * np.mean(ious), abs=1e-9)


def test_points_are_sampled_inside_and_seeded(coco):
    ann, img_dir = coco
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = rng.random((30, 40)) < rng.uniform(0.01, 0.5)
        if not mask.any():
            continue
        pts = sample_points_in_mask(mask, 3, rng)
        assert all(mask[int(y), int(x)] for x, y in pts)
    with pytest.raises(ValueError, match="empty mask"):
        sample_points_in_mask(np.zeros((4, 4), bool), 1, rng)
    _, table = _gt_by_image(ann, img_dir)
    a = evaluate_points(_oracle(table), ann, img_dir, prompt_types=("1pt",), seed=5, progress=False)
    b = evaluate_points(_oracle(table), ann, img_dir, prompt_types=("1pt",), seed=5, progress=False)
    assert a["records"] == b["records"]


def test_rle_roundtrip_and_boxes():
    rng = np.random.default_rng(1)
    for _ in range(10):
        m = rng.random((37, 53)) < 0.3
        rle = encode_rle(m)
        json.dumps(rle)
        np.testing.assert_array_equal(decode_rle(rle), m)
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    np.testing.assert_array_equal(mask_to_box(m), [3, 2, 8, 4])
    np.testing.assert_array_equal(box_to_mask([3, 2, 8, 4], 10, 12), m)
    uncompressed = {"size": [10, 12], "counts": [20, 3, 7, 3, 7, 3, 7, 3, 7, 3, 7, 3, 47]}
    assert decode_rle(uncompressed).sum() == 18


def test_instance_eval_oracle_gives_ap_1_and_writes_results(coco, tmp_path):
    ann, img_dir = coco
    api, table = _gt_by_image(ann, img_dir)
    dets = [dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=1.0)
            for a in api.loadAnns(api.getAnnIds())]
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps(dets))
    out = evaluate_instances(_oracle(table), ann, img_dir, str(det_file), out_file=str(tmp_path / "segm.json"),
                             rule="score", progress=False)
    assert out["num_results"] == len(dets)
    assert out["metrics"]["AP"] == pytest.approx(100.0)
    written = json.loads((tmp_path / "segm.json").read_text())
    assert len(written) == len(dets) and "counts" in written[0]["segmentation"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="COCO results list"):
        evaluate_instances(_oracle(table), ann, img_dir, str(bad))


def test_box_iou_rule_keeps_the_mask_closest_to_the_box(coco, tmp_path):
    ann, img_dir = coco
    api, table = _gt_by_image(ann, img_dir)

    def three_candidates(image, points, labels):
        h, w = image.shape[:2]
        gts = table[hashlib.sha1(image.tobytes()).hexdigest()]
        masks = np.zeros((len(points), 3, h, w), bool)
        masks[:, 0] = True  # whole image: most "confident" but far from the box
        masks[:, 2] = np.stack(gts)
        return masks, np.tile([0.9, 0.1, 0.5], (len(points), 1))

    dets = [dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=1.0)
            for a in api.loadAnns(api.getAnnIds())]
    (tmp_path / "d.json").write_text(json.dumps(dets))
    by_box = evaluate_instances(three_candidates, ann, img_dir, str(tmp_path / "d.json"), rule="box_iou",
                                progress=False)
    by_score = evaluate_instances(three_candidates, ann, img_dir, str(tmp_path / "d.json"), rule="score",
                                  progress=False)
    assert by_box["metrics"]["AP"] == pytest.approx(100.0) and by_score["metrics"]["AP"] < 50.0


def test_lvis_format_goes_through_lvis_api(coco, tmp_path):
    """The same instances as an LVIS v1 file: read with the lvis package, AP from LVISEval."""
    ann, img_dir = coco
    data = json.load(open(ann))
    for img in data["images"]:
        img.update(neg_category_ids=[], not_exhaustive_category_ids=[],
                   coco_url=f"http://images.cocodataset.org/val2017/{img['file_name']}")
        del img["file_name"]  # LVIS names images by their coco_url
    for c in data["categories"]:
        c.update(frequency="f", synset=c["name"].replace(" ", "_") + ".n.01", image_count=1, instance_count=1)
    lvis_file = tmp_path / "lvis_v1_val.json"
    lvis_file.write_text(json.dumps(data))
    _, table = _gt_by_image(ann, img_dir)
    points = evaluate_points(_oracle(table), str(lvis_file), img_dir, prompt_types=("box", "1pt"), progress=False)
    assert points["summary"]["box"]["all"] == pytest.approx(100.0) and points["summary"]["box"]["n"] == len(json.load(open(ann))["annotations"])
    dets = [dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=1.0)
            for a in data["annotations"]]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    out = evaluate_instances(_oracle(table), str(lvis_file), img_dir, str(tmp_path / "dets.json"), rule="score",
                             progress=False)
    assert out["metrics"]["AP"] == pytest.approx(100.0)
