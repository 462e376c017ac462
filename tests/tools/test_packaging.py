"""``pip install`` outside a checkout works the way OpenMMLab users expect: the wheel carries mm_configs/,
d2_configs/ and hf/recipes/ (OpenMMLab's ``.mim`` layout), and a shipped config loads by name, ``_base_`` included."""
import shutil
import subprocess
import sys
import zipfile

from conftest import REPO_ROOT
from trainer_utils import ENV, run


def test_wheel_ships_configs_that_load_by_name_outside_the_checkout(tmp_path):
    source = tmp_path / "src"  # build from a copy of the tracked files: the checkout itself stays untouched
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    for rel in tracked.split():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f"{REPO_ROOT}/{rel}", source / rel)
    run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist")])
    (wheel,) = (tmp_path / "dist").glob("efficientsam_zoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("configs/vitdet_sami_s.py", "configs/_base_/vitdet_sami_mask-rcnn_lsj-100e_coco.py",
                    "d2_configs/COCO/mask_rcnn_vitdet_sami_s_100ep.py", "d2_configs/common/coco_loader_lsj.py",
                    "recipes/vit-s_in1k.yaml"):
        assert f"efficientsam_zoo/.mim/{shipped}" in names, shipped
    site = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)])
    probe = f"""
import efficientsam_zoo, os
assert efficientsam_zoo.__file__.startswith({str(site)!r}), efficientsam_zoo.__file__
from mmengine.config import Config
from efficientsam_zoo.tools.configs import resolve_config
from efficientsam_zoo.tools.train_cls import load_recipe
path = resolve_config("vitdet_sami_s")
assert path.startswith({str(site)!r}) and "/.mim/configs/" in path, path
cfg = Config.fromfile(path)  # _base_: the package's own base and mmdet's
assert cfg.model.backbone.type == "SamiViT" and cfg.model.backbone.arch == "vit-s" and cfg.model.rpn_head
assert resolve_config("COCO/mask_rcnn_vitdet_sami_s_100ep", kind="d2").startswith({str(site)!r})
assert load_recipe("vit-s_in1k")["layer_decay"] == 0.75
print("shipped configs OK")
"""
    out = run([sys.executable, "-c", probe], cwd=str(tmp_path), env={**ENV, "PYTHONPATH": str(site)})
    assert "shipped configs OK" in out
