"""Instance datasets in the layouts people have (COCO JSON, LVIS JSON, mask folders): the same scenes give the same
samples whatever the layout (a round trip through pycocotools' RLE), and bad data gets one clear error or a counted
skip."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from efficientsam_zoo.data.instances import (CocoInstances, InstanceSamples, LvisInstances, MaskFolder, open_source,
                                             split)
from efficientsam_zoo.data.synthetic import make_mask_folder


def _folder_to_coco(images, masks, path, lvis=False, extra=()):
    """The mask folder as a COCO (or LVIS) JSON: every instance RLE-encoded with pycocotools, plus ``extra``
    annotations."""
    imgs, anns = [], []
    for i, f in enumerate(sorted(os.listdir(images))):
        ids = np.asarray(Image.open(os.path.join(masks, f)))
        imgs.append(dict(id=i, file_name=f, height=ids.shape[0], width=ids.shape[1]))
        for v in [v for v in np.unique(ids) if v]:
            rle = mask_utils.encode(np.asfortranarray((ids == v).astype(np.uint8)))
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=1, iscrowd=0, area=float((ids == v).sum()),
                             bbox=mask_utils.toBbox(rle).tolist(), segmentation={**rle, "counts": rle["counts"].decode()}))
    anns += [dict(a, id=len(anns) + 1 + k) for k, a in enumerate(extra)]
    cat = dict(id=1, name="shape", **({"frequency": "f", "synset": "shape.n.01"} if lvis else {}))
    with open(path, "w") as f:
        json.dump(dict(images=imgs, annotations=anns, categories=[cat]), f)
    return str(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    return make_mask_folder(str(root), n_images=4, size=(96, 72), n_objects=3, seed=1)


def _samples_equal(a, b):
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a[i], b[i]
        for k in ("image", "masks", "boxes", "valid"):
            torch.testing.assert_close(x[k], y[k], rtol=0, atol=0, msg=k)


def test_coco_lvis_and_mask_folder_give_the_same_samples(folder, tmp_path):
    images, masks = folder
    ref = MaskFolder(images, masks)
    n_instances = sum(len(ref.load(i).masks) for i in range(len(ref)))
    assert len(ref) == 4 and n_instances >= 8
    coco = CocoInstances(_folder_to_coco(images, masks, tmp_path / "coco.json"), images)
    lvis = LvisInstances(_folder_to_coco(images, masks, tmp_path / "lvis.json", lvis=True), images)
    for other in (coco, lvis):
        for i in range(len(ref)):
            a, b = ref.load(i), other.load(i)
            np.testing.assert_array_equal(a.image, b.image)
            assert len(a.masks) == len(b.masks) and all(np.array_equal(m, n) for m, n in zip(a.masks, b.masks))
        _samples_equal(InstanceSamples(ref, img_size=64, max_masks=4), InstanceSamples(other, img_size=64, max_masks=4))
    binary = MaskFolder(*make_mask_folder(str(tmp_path / "bin"), n_images=4, size=(96, 72), n_objects=3, seed=1,
                                          layout="binary"))
    _samples_equal(InstanceSamples(ref, img_size=64), InstanceSamples(binary, img_size=64))
    assert isinstance(open_source(images, annotations=str(tmp_path / "lvis.json")), LvisInstances)
    assert isinstance(open_source(images, masks=masks), MaskFolder)


def test_samples_hold_the_masks_boxes_and_image(folder):
    source = MaskFolder(*folder)
    sample = InstanceSamples(source, img_size=64, max_masks=8)[0]
    item = source.load(0)
    n = len(item.masks)
    assert sample["valid"].sum() == n and sample["masks"].shape == (8, 16, 16) and sample["image"].shape == (3, 64, 64)
    for k in range(n):  # each drawn mask is one of the instances, its box in the 64-px frame is that instance's
        m = torch.from_numpy(item.masks[k].astype(np.float32))
        assert any(torch.equal(sample["masks"][j], torch.nn.functional.interpolate(m[None, None], (16, 16),
                                                                                   mode="area")[0, 0] > 0.5)
                   for j in range(n))
    ys, xs = np.nonzero(item.masks[0])
    assert sample["boxes"][:n].min(0).values[0] <= xs.min() * 64 / 96 + 1e-5


def test_bad_data_is_named_or_skipped_and_counted(folder, tmp_path):
    images, masks = folder
    extra = [dict(image_id=0, category_id=1, iscrowd=1, area=5.0, bbox=[0, 0, 2, 2], segmentation=[[0, 0, 2, 0, 2, 2]]),
             dict(image_id=0, category_id=1, iscrowd=0, area=0.0, bbox=[0, 0, 0, 0], segmentation=[[1, 1, 1, 1, 1, 1]]),
             dict(image_id=1, category_id=1, iscrowd=0, area=40.0, bbox=[500, 500, 5, 8],
                  segmentation=[[500, 500, 505, 500, 505, 508]])]
    coco = CocoInstances(_folder_to_coco(images, masks, tmp_path / "bad.json", extra=extra), images)
    clean = MaskFolder(images, masks)
    assert [len(coco.load(i).masks) for i in range(4)] == [len(clean.load(i).masks) for i in range(4)]  # crowd too
    assert coco.skipped == {"zero area": 1, "mask outside its image (or empty)": 1}
    with pytest.raises(ValueError, match=r"category filter \['dog'\] matches no category of .*bad\.json"):
        CocoInstances(str(tmp_path / "bad.json"), images, categories=["dog"])
    assert len(CocoInstances(str(tmp_path / "bad.json"), images, categories=["shape"])) == 4
    missing = CocoInstances(str(tmp_path / "bad.json"), str(tmp_path))  # a folder without the images
    with pytest.raises(FileNotFoundError, match=r"image '.*scene_0000\.png' of bad\.json \(image id 0\) does not exist"):
        missing.load(0)
    # mask folder: an RGB mask, a mask of another size, a missing mask
    rgb_root = tmp_path / "rgb"
    (rgb_root / "images").mkdir(parents=True)
    (rgb_root / "masks").mkdir()
    Image.new("RGB", (20, 10)).save(rgb_root / "images" / "a.png")
    Image.new("RGB", (20, 10)).save(rgb_root / "masks" / "a.png")
    with pytest.raises(ValueError, match=r"mask '.*a\.png' is a RGB image; an instance-id mask is one channel"):
        MaskFolder(str(rgb_root / "images"), str(rgb_root / "masks")).load(0)
    Image.new("L", (21, 10)).save(rgb_root / "masks" / "a.png")
    with pytest.raises(ValueError, match=r"the mask of '.*a\.png' is 21x10 but the image is 20x10"):
        MaskFolder(str(rgb_root / "images"), str(rgb_root / "masks")).load(0)
    os.remove(rgb_root / "masks" / "a.png")
    with pytest.raises(FileNotFoundError, match=r"no mask for image 'a': expected '.*a\.png' or a folder"):
        MaskFolder(str(rgb_root / "images"), str(rgb_root / "masks")).load(0)
    with pytest.raises(ValueError, match="the split holds no images"):
        InstanceSamples(clean, indices=[])


def test_split_is_seeded_and_disjoint():
    train, val = split(10, 0.3, seed=4)
    assert sorted(train + val) == list(range(10)) and len(val) == 3 and (train, val) == split(10, 0.3, seed=4)
    assert split(10, 0.3, seed=5) != (train, val)
    with pytest.raises(ValueError, match="cannot hold out"):
        split(1, 0.5)
