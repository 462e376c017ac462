"""Images read the way a viewer shows them, at every entry point: 16-bit files scaled by their bit depth (PIL's
``convert("RGB")`` clips them to white), EXIF orientation applied (phone photos); reduced precision models."""
import importlib.util
import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from efficientsam_zoo import EfficientSamPredictor
from efficientsam_zoo.data.synthetic import make_scene
from efficientsam_zoo.utils.image import image_to_tensor, load_image_rgb

ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def scene():
    image, _ = make_scene(0, height=40, width=56)
    return image


def _save_16bit_gray(path, gray8: np.ndarray) -> np.ndarray:
    """A 16-bit grayscale PNG whose values use the full 0..65535 range (8-bit value * 257)."""
    gray16 = gray8.astype(np.uint16) * 257
    Image.fromarray(gray16).save(path)  # mode I;16
    return gray16


def test_16bit_png_is_scaled_not_clipped(scene, tmp_path, tiny_model):
    gray8 = np.asarray(Image.fromarray(scene).convert("L"))
    _save_16bit_gray(tmp_path / "g16.png", gray8)
    Image.fromarray(gray8).save(tmp_path / "g8.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    clipped = np.asarray(Image.open(tmp_path / "g16.png").convert("RGB"))
    assert (clipped == 255).mean() > 0.9  # what PIL's convert does: white

    a16, a8 = load_image_rgb(str(tmp_path / "g16.png")), load_image_rgb(str(tmp_path / "g8.png"))
    assert a16.dtype == np.uint16 and a16.shape == (40, 56, 3)
    t16, t8 = image_to_tensor(a16), image_to_tensor(a8)
    torch.testing.assert_close(t16, t8, atol=1e-6, rtol=0)  # v*257/65535 == v/255
    torch.testing.assert_close(image_to_tensor(Image.open(tmp_path / "g16.png")), t8, atol=1e-6, rtol=0)
    torch.testing.assert_close(image_to_tensor(torch.from_numpy(a16).permute(2, 0, 1)), t8, atol=1e-6, rtol=0)

    p = EfficientSamPredictor(tiny_model)
    masks = []
    for arr in (a16, a8):
        p.set_image(arr)
        masks.append(p.predict(np.array([[20.0, 20.0]]), np.array([1]))[0])
    np.testing.assert_array_equal(masks[0], masks[1])


def _exif_jpeg(path, image: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    Image.fromarray(image).save(path, quality=100, subsampling=0, exif=exif.tobytes())


def test_exif_orientation_applied_everywhere(scene, tmp_path):
    """Orientation 6 = the stored pixels are shown rotated 90 degrees clockwise."""
    _exif_jpeg(tmp_path / "phone.jpg", scene, 6)
    stored = np.asarray(Image.open(tmp_path / "phone.jpg").convert("RGB"))
    shown = np.rot90(stored, k=-1)  # clockwise
    assert stored.shape == (40, 56, 3) and shown.shape == (56, 40, 3)

    np.testing.assert_array_equal(load_image_rgb(str(tmp_path / "phone.jpg")), shown)
    np.testing.assert_array_equal(load_image_rgb((tmp_path / "phone.jpg").read_bytes()), shown)
    torch.testing.assert_close(image_to_tensor(Image.open(tmp_path / "phone.jpg")),
                               torch.from_numpy(shown.copy()).permute(2, 0, 1).float() / 255)

    # mmengine pipelines (CI's torch-2.11 stage has no OpenMMLab)
    if importlib.util.find_spec("mmengine") is not None:
        from efficientsam_zoo.integrations.openmmlab.data import LoadImageRGB

        np.testing.assert_array_equal(LoadImageRGB()(dict(img_path=str(tmp_path / "phone.jpg")))["img"], shown)
    # the HF Trainer's image folders
    from efficientsam_zoo.tools.train_cls import _FolderDataset

    (tmp_path / "cls" / "a").mkdir(parents=True)
    _exif_jpeg(tmp_path / "cls" / "a" / "x.jpg", scene, 6)
    ds = _FolderDataset(str(tmp_path / "cls"), transform=np.asarray)
    np.testing.assert_array_equal(ds[0]["pixel_values"], shown)
    # SA-1B shards
    from efficientsam_zoo.data.sa1b import SA1BSamples

    record = {"image": {"image_id": 1, "width": 40, "height": 56}, "annotations": []}
    with tarfile.open(tmp_path / "sa_000000.tar", "w") as tar:
        for name, data in (("sa_1.jpg", (tmp_path / "phone.jpg").read_bytes()),
                           ("sa_1.json", __import__("json").dumps(record).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    x = SA1BSamples([str(tmp_path / "sa_000000.tar")], img_size=56)[0]["image"]
    ref = torch.nn.functional.interpolate(torch.from_numpy(shown.copy()).permute(2, 0, 1).float()[None] / 255,
                                          (56, 56), mode="bilinear")[0]
    torch.testing.assert_close(x, ref)


#: How a viewer shows the stored pixels of each EXIF orientation (EXIF 2.3, tag 0x0112), written by hand with numpy.
SHOWN = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # rotated 180 degrees
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, k=-1),  # rotated 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # mirrored along the anti-diagonal
    8: lambda a: np.rot90(a, k=1),  # rotated 90 degrees counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(SHOWN))
def test_every_exif_orientation(scene, tmp_path, orientation):
    """Orientations 2-8 against the spec's transforms written out above (not PIL's own transpose table)."""
    _exif_jpeg(tmp_path / "phone.jpg", scene, orientation)
    stored = np.asarray(Image.open(tmp_path / "phone.jpg").convert("RGB"))  # PIL does not orient on open
    shown = SHOWN[orientation](stored)
    np.testing.assert_array_equal(load_image_rgb(str(tmp_path / "phone.jpg")), shown)
    torch.testing.assert_close(image_to_tensor(Image.open(tmp_path / "phone.jpg")),
                               torch.from_numpy(shown.copy()).permute(2, 0, 1).float() / 255)
    assert shown.shape != stored.shape or not np.array_equal(shown, stored)  # each orientation changes the picture


def test_annotated_frame_wins_over_exif(scene, tmp_path):
    """Annotations (COCO, SA-1B) are in the frame they were drawn in: a file whose stored pixels match the
    annotation's height / width is not rotated, one whose oriented pixels match is."""
    from efficientsam_zoo.utils.image import annotated_frame

    _exif_jpeg(tmp_path / "phone.jpg", scene, 6)
    stored = np.asarray(Image.open(tmp_path / "phone.jpg").convert("RGB"))
    path = str(tmp_path / "phone.jpg")
    np.testing.assert_array_equal(load_image_rgb(path, frame=annotated_frame({"height": 40, "width": 56})), stored)
    np.testing.assert_array_equal(load_image_rgb(path, frame=(56, 40)), np.rot90(stored, k=-1))
    assert annotated_frame({"id": 1}) is None


def test_reduced_precision_model_takes_float32_images(tiny_model):
    img = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))  # seeded: bf16 error varies by image
    pts, lbl = torch.tensor([[[[10.0, 12.0]]]]), torch.ones(1, 1, 1, dtype=torch.long)
    with torch.no_grad():
        ref = tiny_model(img, pts, lbl)[1]
        low = tiny_model.to(torch.bfloat16)(img, pts, lbl)[1]
    assert low.dtype == torch.bfloat16
    # bf16 keeps 8 bits of mantissa: over 12 random images the IoU predictions (spread 0.05..1.25) moved by
    # 0.019..0.071 from float32
    torch.testing.assert_close(low.float(), ref, atol=0.08, rtol=0)
