"""Bad input, one case per row of README's "Bad input" table: each gets one error that names the problem (and the
fix where there is one), and writes no output file.

Cases run through the CLI (in-process ``main``), the predictor, the model, the HF processor, the training datasets
and checkpoint loading. Inputs are built in ``tmp_path``; outputs would go to ``tmp_path / "out"``, which must stay
empty.
"""
import contextlib
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from efficientsam_zoo import CheckpointError, build_efficient_sam
from efficientsam_zoo.cli import main as cli_main

try:  # the untrusted-pickle case needs OpenMMLab (absent from CI's torch-2.11 stage, where that case skips)
    from efficientsam_zoo.integrations.openmmlab.runtime import UntrustedCheckpointError
except ImportError:
    UntrustedCheckpointError = None


@dataclass
class Case:
    name: str
    run: Callable  # (ctx) -> None; raises, or returns a CLI exit code with stderr in ctx.stderr
    error: type  # the exception's exact type (CLI cases: SystemExit, carrying what the user saw on stderr)
    message: str  # regex the error must match: it names the problem and, where there is one, the fix
    needs: str = ""  # an optional framework the case runs through (skipped, with the reason, where it is absent)


class Ctx:
    def __init__(self, tmp_path, tiny_model, monkeypatch):
        self.tmp, self.model = tmp_path, tiny_model
        self.out = tmp_path / "out"
        self.out.mkdir()
        monkeypatch.setenv("ESZ_CACHE_DIR", str(self.out / "cache"))  # caches (SA-1B indexes ...) count as writes
        self.image = str(tmp_path / "scene.png")
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(self.image)

    def cli(self, *argv: str) -> None:
        """Run the CLI; an error exit is raised as SystemExit(stderr) so every case is checked the same way."""
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                rc = cli_main([str(a) for a in argv])
            except SystemExit as exc:
                rc, msg = 2, str(exc.code)
                err.write(msg)
        if rc:
            raise SystemExit(err.getvalue())

    def segment(self, *extra: str) -> None:
        self.cli("segment", self.image, "--out", self.out / "mask.png", "--overlay", self.out / "overlay.png",
                 *extra)

    def file(self, name: str, data: bytes) -> str:
        path = self.tmp / name
        path.write_bytes(data)
        return str(path)

    def predictor(self):
        from efficientsam_zoo import EfficientSamPredictor

        p = EfficientSamPredictor(self.model)
        p.set_image(np.zeros((40, 56, 3), np.uint8))
        return p

    def processor(self, **prompts):
        from efficientsam_zoo.integrations.hf import EfficientSamImageProcessor

        return EfficientSamImageProcessor(size=64)(np.zeros((40, 56, 3), np.uint8), **prompts)

    def coco(self) -> str:
        ann = {"images": [{"id": 1, "file_name": "a.png", "height": 40, "width": 56}],
               "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100,
                                "iscrowd": 0, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]}],
               "categories": [{"id": 1, "name": "thing"}]}
        return self.file("ann.json", json.dumps(ann).encode())

    def tar(self, members) -> str:
        path = self.tmp / "sa_000000.tar"
        with tarfile.open(path, "w") as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return str(path)


def _png_bytes(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _truncated_png(c: Ctx) -> str:
    return c.file("cut.png", _png_bytes(np.full((64, 64, 3), 7, np.uint8))[:60])


def _segment_everything(c: Ctx, image: str) -> None:
    c.cli("segment-everything", image, "--out", c.out / "masks.json", "--overlay", c.out / "o.png",
          "--checkpoint", c.file("x.pt", b"unused"))


def _eval_points(c: Ctx, *extra: str) -> None:
    c.cli("eval-points", "--ann-file", c.coco(), "--img-dir", c.tmp, "--out", c.out / "points.json",
          "--checkpoint", c.file("x.pt", b"unused"), *extra)


def _eval_points_released(c: Ctx, *extra: str) -> None:
    """eval-points with a release-layout checkpoint (the model loads; it has no negative clicks)."""
    path = c.tmp / "efficient_sam_vitt.pt"
    torch.save({"model": build_efficient_sam("efficientsam-ti").state_dict()}, path)
    c.cli("eval-points", "--ann-file", c.coco(), "--img-dir", c.tmp, "--out", c.out / "points.json",
          "--checkpoint", path, *extra)


def _sa1b(paths) -> None:
    from efficientsam_zoo.data.sa1b import SA1BSamples

    SA1BSamples(paths, img_size=64)[0]


def _truncated_shard(c: Ctx) -> str:
    path = c.tar([("sa_1.jpg", b"x" * 3000), ("sa_1.json", b"{}")])
    data = open(path, "rb").read()
    return c.file("sa_000001.tar", data[:2048])  # the header of sa_1.jpg, half its data


def _folder_with_corrupt_image(c: Ctx) -> None:
    from efficientsam_zoo.tools.train_cls import _FolderDataset

    (c.tmp / "imgs" / "cat").mkdir(parents=True)
    (c.tmp / "imgs" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    _FolderDataset(str(c.tmp / "imgs"), transform=None)[0]


def _untrusted_pickle(c: Ctx) -> None:
    from mmengine.runner import CheckpointLoader

    from efficientsam_zoo.integrations.openmmlab.runtime import install_checkpoint_io

    path = c.tmp / "third_party.pth"
    torch.save({"state_dict": {}, "meta": {"note": Ctx}}, path)  # a pickled class: weights_only refuses it
    saved = dict(CheckpointLoader._schemes)
    try:
        install_checkpoint_io(str(c.tmp / "work_dir"))
        CheckpointLoader.load_checkpoint(str(path))
    finally:
        CheckpointLoader._schemes.clear()
        CheckpointLoader._schemes.update(saved)


def _checkpoint(c: Ctx, data) -> None:
    from efficientsam_zoo import build_efficient_sam

    path = c.tmp / "model.pt"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        torch.save(data, path)
    build_efficient_sam(c.model.spec, checkpoint=str(path))


NAN = float("nan")
_UNREADABLE = r"could not read checkpoint '.*{}' \(.*\)\. The file is truncated, corrupt or not a PyTorch checkpoint: " \
              r"download it again"
CASES = [
    # -- CLI ------------------------------------------------------------------------------------------------
    Case("cli: image file missing", lambda c: c.cli("segment", c.tmp / "nope.png", "--point", 1, 1), SystemExit,
         r"error: image '.*nope\.png' does not exist"),
    Case("cli: truncated image file", lambda c: c.cli("segment", _truncated_png(c), "--point", 1, 1), SystemExit,
         r"error: could not read image '.*cut\.png' \(.*\); is it a complete image file\?"),
    Case("cli: NaN point", lambda c: c.segment("--point", "nan", 3), SystemExit,
         r"error: point_coords holds a non-finite value \(nan\) at index \[0, 0, 0\]; prompts must be finite pixel "
         r"coordinates"),
    Case("cli: point outside the image", lambda c: c.segment("--point", 60, 3), SystemExit,
         r"error: prompt point \(60, 3\) of query 0 lies outside the 56x40 \(WxH\) image; coordinates are \(x, y\) "
         r"pixels"),
    Case("cli: reversed box", lambda c: c.segment("--box", 30, 20, 10, 5), SystemExit,
         r"error: boxes must be \(x0, y0, x1, y1\) with x1 >= x0 and y1 >= y0"),
    Case("cli: infinite box corner", lambda c: c.segment("--box", 0, 0, "inf", 5), SystemExit,
         r"error: boxes holds a non-finite value \(inf\) at index \[0, 2\]; prompts must be finite"),
    Case("cli: no prompt", lambda c: c.segment(), SystemExit, r"error: give at least one --point X Y or a --box X0 Y0 X1 Y1"),
    Case("cli: labels do not match points", lambda c: c.segment("--point", 1, 1, "--point", 2, 2, "--label", 1),
         SystemExit, r"error: 2 --point but 1 --label; give one label per point or none"),
    Case("cli: checkpoint missing", lambda c: c.segment("--point", 1, 1, "--checkpoint", c.tmp / "none.pt"), SystemExit,
         r"error: checkpoint '.*none\.pt' does not exist"),
    Case("cli: checkpoint not a torch file",
         lambda c: c.segment("--point", 1, 1, "--checkpoint", c.file("junk.pt", b"not a checkpoint" * 10)), SystemExit,
         r"error: " + _UNREADABLE.format(r"junk\.pt")),
    Case("cli: segment-everything on a truncated image", lambda c: _segment_everything(c, _truncated_png(c)),
         SystemExit, r"error: could not read image '.*cut\.png' \(.*\); is it a complete image file\?"),
    Case("cli: eval-points --iterative beyond the decoder", lambda c: _eval_points(c, "--iterative", 7), SystemExit,
         r"error: --iterative 7: .* at most 6 points; use --iterative 6 or fewer"),
    Case("cli: eval-points --noc with the released weights",
         lambda c: _eval_points_released(c, "--noc", 20), SystemExit,
         r"error: --noc places negative clicks: label 0 is a negative click, and this model has none: .* Finetune "
         r"with negative clicks \(efficientsam-zoo finetune"),
    Case("cli: eval-points --iterative with the released weights",
         lambda c: _eval_points_released(c, "--iterative", 3), SystemExit,
         r"error: --iterative places negative clicks: label 0 is a negative click"),
    Case("cli: eval-points annotation file missing",
         lambda c: c.cli("eval-points", "--ann-file", c.tmp / "missing.json", "--img-dir", c.tmp, "--out",
                         c.out / "p.json", "--checkpoint", c.file("x.pt", b"")), SystemExit,
         r"error: --ann-file '.*missing\.json' does not exist"),
    Case("cli: eval-instances detections missing",
         lambda c: c.cli("eval-instances", "--ann-file", c.coco(), "--img-dir", c.tmp, "--detections",
                         c.tmp / "dets.json", "--out", c.out / "i.json", "--checkpoint", c.file("x.pt", b"")),
         SystemExit, r"error: --detections '.*dets\.json' does not exist"),
    # -- predictor ------------------------------------------------------------------------------------------
    Case("predictor: NaN pixels", lambda c: c.predictor().set_image(np.full((8, 8, 3), NAN, np.float32)), ValueError,
         r"the image holds 192 non-finite pixel values \(NaN\); replace them \(e\.g\. numpy\.nan_to_num\)"),
    Case("predictor: float pixels on a 0..255 scale",
         lambda c: c.predictor().set_image(np.full((8, 8, 3), 200.0, np.float32)), ValueError,
         r"float images must be on a 0\.\.1 scale \(got values in 200\.\.200\); pass uint8 / uint16 pixels or "
         r"divide by 255"),
    Case("predictor: int32 pixels", lambda c: c.predictor().set_image(np.zeros((8, 8, 3), np.int32)), ValueError,
         r"unsupported pixel type int32; use uint8 \(0\.\.255\), uint16 \(0\.\.65535\) or float \(0\.\.1\)"),
    Case("predictor: gray + alpha", lambda c: c.predictor().set_image(np.zeros((8, 8, 2), np.uint8)), ValueError,
         r"got a 2-channel image \(gray \+ alpha\?\); convert it to RGB first"),
    Case("predictor: predict before set_image",
         lambda c: __import__("efficientsam_zoo").EfficientSamPredictor(c.model).predict(np.ones((1, 2)), [1]),
         RuntimeError, r"no image set: call predictor\.set_image\(image\) before predicting"),
    Case("predictor: NaN point", lambda c: c.predictor().predict(np.array([[NAN, 3.0]]), np.array([1])), ValueError,
         r"point_coords holds a non-finite value \(nan\) at index \[0, 0, 0\]; prompts must be finite pixel "
         r"coordinates"),
    Case("predictor: infinite box", lambda c: c.predictor().predict(box=np.array([0, 0, np.inf, 3])), ValueError,
         r"boxes holds a non-finite value \(inf\) at index \[0, 2\]; prompts must be finite pixel coordinates"),
    Case("predictor: fractional label", lambda c: c.predictor().predict(np.array([[3.0, 3.0]]), np.array([1.7])),
         ValueError, r"point labels must be whole numbers \(1 = foreground, 0 = background\), got \[1\.7"),
    Case("predictor: unknown label", lambda c: c.predictor().predict(np.array([[3.0, 3.0]]), np.array([5])),
         ValueError, r"point labels must be 1 \(point\), 0 \(negative click\), 2 / 3 \(box corners\); got \[5\]"),
    Case("predictor: negative click for the released weights",
         lambda c: c.predictor().predict(np.array([[3.0, 3.0], [9.0, 9.0]]), np.array([1, 0])), ValueError,
         r"label 0 is a negative click, and this model has none: the released EfficientSAM weights .* Finetune with "
         r"negative clicks \(efficientsam-zoo finetune"),
    Case("predictor: mask prompt for the released weights",
         lambda c: c.predictor().predict(np.array([[3.0, 3.0]]), np.array([1]), mask_input=np.zeros((1, 16, 16))),
         ValueError, r"this model takes no mask prompts \(mask_input\): the released EfficientSAM weights have no dense "
         r"prompt encoder\. Finetune with mask prompts"),
    Case("predictor: more points than the decoder takes",
         lambda c: c.predictor().predict(np.ones((7, 2)), np.ones(7)), ValueError,
         r"7 prompt points per query \(a box counts as 2\), but the model takes at most 6; pass fewer points"),
    Case("predictor: points and boxes for different queries",
         lambda c: c.predictor().predict_torch(torch.ones(2, 1, 2), torch.ones(2, 1), torch.tensor([[0, 0, 5, 5.]])),
         ValueError, r"2 point queries but 1 boxes; they must match"),
    # -- model ----------------------------------------------------------------------------------------------
    Case("model: uint8 images", lambda c: c.model(torch.zeros(1, 3, 40, 56, dtype=torch.uint8),
                                                  torch.ones(1, 1, 1, 2), torch.ones(1, 1, 1)), TypeError,
         r"images must be float on a 0\.\.1 scale, got torch\.uint8 pixels; divide uint8 images by 255"),
    Case("model: NaN images", lambda c: c.model(torch.full((1, 3, 40, 56), NAN), torch.ones(1, 1, 1, 2),
                                                torch.ones(1, 1, 1)), ValueError,
         r"images hold 6720 non-finite values \(NaN or inf\); replace them \(torch\.nan_to_num\) first"),
    Case("model: NaN points", lambda c: c.model(torch.rand(1, 3, 40, 56), torch.full((1, 1, 1, 2), NAN),
                                                torch.ones(1, 1, 1)), ValueError,
         r"batched_points hold NaN or inf; prompts must be finite pixel coordinates \(use -1 with label -1 for "
         r"padding\)"),
    # -- Hugging Face processor (the predictor's checks, one function) ---------------------------------------
    Case("HF processor: NaN point", lambda c: c.processor(input_points=[[[[NAN, 1.0]]]], input_labels=[[[1]]]),
         ValueError, r"point_coords holds a non-finite value \(nan\) at index \[0, 0, 0\]; prompts must be finite"),
    Case("HF processor: point outside the image",
         lambda c: c.processor(input_points=[[[[99.0, 1.0]]]], input_labels=[[[1]]]), ValueError,
         r"prompt point \(99, 1\) of query 0 lies outside the 56x40 \(WxH\) image"),
    Case("HF processor: fractional label",
         lambda c: c.processor(input_points=[[[[9.0, 1.0]]]], input_labels=[[[0.5]]]), ValueError,
         r"point labels must be whole numbers \(1 = foreground, 0 = background\), got \[0\.5\]"),
    # -- training and evaluation data -----------------------------------------------------------------------
    Case("data: corrupt image in an image folder", _folder_with_corrupt_image, ValueError,
         r"could not read image '.*broken\.jpg' \(.*\); is it a complete image file\?"),
    Case("data: annotation file missing",
         lambda c: __import__("efficientsam_zoo.evaluation.common", fromlist=["x"]).load_coco_like(
             str(c.tmp / "instances_val.json")), FileNotFoundError,
         r"annotation file '.*instances_val\.json' does not exist \(a COCO / LVIS instances JSON\)"),
    Case("data: annotation file not JSON",
         lambda c: __import__("efficientsam_zoo.evaluation.common", fromlist=["x"]).load_coco_like(
             c.file("bad.json", b'{"images": [')), ValueError, r"annotation file '.*bad\.json' is not valid JSON \(.*\)"),
    Case("data: empty SA-1B shard (no members)", lambda c: _sa1b([c.tar([])]), ValueError,
         r"no sa_\*\.jpg / sa_\*\.json pairs found in \['.*sa_000000\.tar'\]"),
    Case("data: 0-byte SA-1B shard", lambda c: _sa1b([c.file("sa_000002.tar", b"")]), ValueError,
         r"SA-1B shard '.*sa_000002\.tar' is empty \(0 bytes\); download it again"),
    Case("data: truncated SA-1B shard", lambda c: _sa1b([_truncated_shard(c)]), ValueError,
         r"SA-1B shard '.*sa_000001\.tar' is truncated.*; download it again"),
    Case("data: SA-1B source missing", lambda c: _sa1b([str(c.tmp / "nowhere.tar")]), FileNotFoundError,
         r"SA-1B source '.*nowhere\.tar' does not exist \(give tar shards or folders of sa_\*\.jpg \+ sa_\*\.json\)"),
    # -- checkpoints ----------------------------------------------------------------------------------------
    Case("checkpoint: not a torch file", lambda c: _checkpoint(c, b"\x00garbage" * 64), CheckpointError,
         _UNREADABLE.format(r"model\.pt")),
    Case("checkpoint: another model's weights", lambda c: _checkpoint(c, {"model": {"foo.weight": torch.ones(2)}}),
         CheckpointError, r"checkpoint '.*model\.pt' does not fit EfficientSam:\n  missing \(\d+\): .*\n  unexpected \(1\): "
         r"foo\.weight\n  it holds no EfficientSAM image encoder .*: is it an official EfficientSAM checkpoint\?"),
    Case("checkpoint: untrusted pickle as load_from", _untrusted_pickle, UntrustedCheckpointError,
         r"third_party\.pth is outside this run's work dir .*weights_only=True\) refuses .*If you trust the file, "
         r"pass --trust-checkpoint .*third_party\.pth", needs="mmengine"),  # CI's torch-2.11 stage has no OpenMMLab
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_clear_error(case, tmp_path, tiny_model, monkeypatch):
    if case.needs:
        pytest.importorskip(case.needs)
    ctx = Ctx(tmp_path, tiny_model, monkeypatch)
    with pytest.raises(BaseException) as info:
        case.run(ctx)
    assert type(info.value) is case.error, (type(info.value), info.value)  # not a stray torch / library error
    message = str(info.value)
    assert re.search(case.message, message), message
    assert "Traceback" not in message
    written = [os.path.relpath(os.path.join(d, f), ctx.out) for d, _, fs in os.walk(ctx.out) for f in fs]
    assert not written, written  # nothing written (outputs, caches), not even a partial file


def test_table_in_readme_lists_every_case():
    from conftest import REPO_ROOT

    readme = open(os.path.join(REPO_ROOT, "README.md")).read()
    table = readme.split("### Bad input", 1)[1].split("\n#", 1)[0]
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ") and "---" not in line}
    assert {c.name for c in CASES} <= rows, sorted({c.name for c in CASES} - rows)
