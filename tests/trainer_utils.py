"""Helpers of the trainer tests (learning, resume, distributed): run a training command in a subprocess, kill it
with SIGKILL after its first checkpoint, read what it logged, compare state dicts."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Dict, List, Mapping, Optional

import torch
from conftest import REPO_ROOT

#: Every training subprocess: offline, one thread per process (the two-process runs share 2 cores).
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "PYTHONWARNINGS": "ignore"}


def run(args: List[str], timeout: int = 900, env: Optional[Dict] = None, cwd: str = REPO_ROOT) -> str:
    """Run ``python -m <args>`` (or a full command starting with an executable path); returns its output as a
    terminal would hold it ("\r" progress updates stay on their line)."""
    cmd = args if os.path.isabs(args[0]) else [sys.executable, "-m", *args]
    r = subprocess.run(cmd, capture_output=True, cwd=cwd, env=env or ENV, timeout=timeout)
    stdout, stderr = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    if r.returncode != 0:  # a crashed worker's message is on stderr, before the launcher's traceback: lines first
        key = [line for line in stderr.splitlines() if re.search(r"terminate|what\(\)|Error|Exception|Abort|Signal", line)]
        raise AssertionError(f"rc {r.returncode}\n--- stderr lines naming errors ---\n" + "\n".join(key[:30])
                             + f"\n--- stdout (end) ---\n{stdout[-1500:]}\n--- stderr (end) ---\n{stderr[-6000:]}")
    return stdout + stderr


def kill_after(args: List[str], pattern: str, timeout: int = 600, env: Optional[Dict] = None) -> List[str]:
    """Start ``python -m <args>``, wait until a file matching ``pattern`` exists, then SIGKILL the process group
    (every worker it started). Returns the files that matched at the kill."""
    cmd = args if os.path.isabs(args[0]) else [sys.executable, "-m", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO_ROOT, env=env or ENV,
                            start_new_session=True)
    deadline = time.time() + timeout
    try:
        while not glob.glob(pattern):
            if proc.poll() is not None:
                raise AssertionError(f"training ended (rc {proc.returncode}) before {pattern} appeared:\n"
                                     + proc.stderr.read().decode()[-4000:])
            if time.time() > deadline:
                raise AssertionError(f"no {pattern} after {timeout} s")
            time.sleep(0.05)
        found = glob.glob(pattern)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    return found


def mm_scalars(work_dir: str) -> List[Dict]:
    """The rows mmengine's LocalVisBackend wrote (one file per run; resumed runs write their own)."""
    rows = []
    for path in sorted(glob.glob(os.path.join(work_dir, "*", "vis_data", "scalars.json"))):
        rows += [json.loads(line) for line in open(path)]
    return rows


def max_abs_diff(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Largest elementwise difference of two state dicts with the same keys (floating tensors compared)."""
    assert set(a) == set(b), sorted(set(a) ^ set(b))[:10]
    worst = 0.0
    for k, v in a.items():
        if torch.is_tensor(v) and v.is_floating_point():
            worst = max(worst, float((v.float() - b[k].float()).abs().max()) if v.numel() else 0.0)
        elif torch.is_tensor(v):
            assert torch.equal(v, b[k]), k
    return worst


def nested_equal(a, b, path: str = "") -> None:
    """Assert two nested structures of dicts / lists / tensors / numbers are equal (tensors exactly)."""
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b), (path, sorted(set(a) ^ set(b))[:10])
        for k in a:
            nested_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            nested_equal(x, y, f"{path}[{i}]")
    elif torch.is_tensor(a):
        assert torch.is_tensor(b) and a.shape == b.shape and torch.equal(a.cpu(), b.cpu()), path
    else:
        assert a == b or (a != a and b != b), (path, a, b)


def mean_box_ap(train_ann: str, heldout_ann: str) -> float:
    """Box AP (0..1, pycocotools) of a detector that puts each class's mean training box -- as a fraction of the image
    -- into every held-out image with score 1: chance-level detection, the baseline of the detectors' learning tests
    (computed here, not by the package)."""
    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    train, heldout = COCO(train_ann), COCO(heldout_ann)
    boxes = {}
    for info in train.loadImgs(train.getImgIds()):
        size = [info["width"], info["height"], info["width"], info["height"]]
        for a in train.loadAnns(train.getAnnIds(imgIds=[info["id"]])):
            boxes.setdefault(a["category_id"], []).append(np.array(a["bbox"]) / size)
    dets = [dict(image_id=info["id"], category_id=c, score=1.0,
                 bbox=(np.mean(b, 0) * [info["width"], info["height"], info["width"], info["height"]]).tolist())
            for info in heldout.loadImgs(heldout.getImgIds()) for c, b in boxes.items()]
    ev = COCOeval(heldout, heldout.loadRes(dets), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return float(ev.stats[0])
