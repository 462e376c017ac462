"""What ``tools/train.py`` sets up around mmengine's Runner: crash-safe checkpoints, a scoped trust for the
trainer's own checkpoint files, resuming from the latest complete checkpoint, and multi-process CPU runs.

* Checkpoints are written to a temporary file and renamed (mmengine's local file backend, replaced here), so a
  kill during a save never leaves a half-written ``iter_N.pth``; ``latest_checkpoint`` also ignores any file that
  is not a complete torch archive.
* torch >= 2.6 loads with ``weights_only=True``; an mmengine checkpoint also holds the run's message hub
  (``HistoryBuffer``, numpy arrays), which that refuses. Only files inside the run's work dir (written by this
  trainer) and files passed with ``--trust-checkpoint`` are unpickled in full; anything else (``load_from`` of a
  downloaded file) stays ``weights_only=True`` and fails with a message that says how to opt in.
* Exact resume: checkpoints also carry torch's RNG state, restored right before the first iteration after a resume
  (after mmengine has replayed the data pipeline up to the checkpoint), so sampled RoIs, masks and points continue
  as in an uninterrupted run. The pipeline's numpy / Python RNGs need nothing: the replay reproduces them.
* ``--launcher pytorch`` without CUDA: mmengine's ``init_dist`` calls ``torch.cuda.set_device``; here the gloo
  process group is initialised first (torchrun's ``env://`` variables) and DDP is built without device ids. With
  CUDA nothing changes (NCCL, one device per process).
"""
from __future__ import annotations

import os
from typing import Iterable, Optional

import torch
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.runner.checkpoint import CheckpointLoader

from ...utils.io import atomic_path, latest_complete_file, record_samples

__all__ = ["AtomicLocalBackend", "install_checkpoint_io", "latest_checkpoint", "setup_cpu_distributed",
           "UntrustedCheckpointError", "rng_state_hook", "sample_recorder_hook", "batch_sample_ids"]


class UntrustedCheckpointError(RuntimeError):
    """A checkpoint outside the work dir needs a full unpickle; the user did not vouch for it."""


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend with atomic writes: bytes go to a temporary file beside the target, then rename."""

    def put(self, obj: bytes, filepath) -> None:

        with atomic_path(os.fspath(filepath)) as tmp, open(tmp, "wb") as f:
            f.write(obj)
            f.flush()
            os.fsync(f.fileno())

    def put_text(self, obj: str, filepath, encoding: str = "utf-8") -> None:
        self.put(obj.encode(encoding), filepath)


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint of a run (``utils.io.latest_complete_file``), or ``None``."""

    return latest_complete_file(work_dir)


def install_checkpoint_io(work_dir: str, trusted: Iterable[str] = ()) -> None:
    """Atomic checkpoint writes, and ``weights_only=False`` for files under ``work_dir`` or in ``trusted`` only."""
    from mmengine.fileio import io as mm_io

    register_backend("local", AtomicLocalBackend, force=True, prefixes="")
    mm_io.backend_instances.clear()  # drop cached plain LocalBackend instances
    roots = [os.path.realpath(work_dir)]
    files = {os.path.realpath(p) for p in trusted}

    def load_local(filename: str, map_location=None):
        path = os.path.realpath(os.path.expanduser(filename))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{filename} can not be found.")
        own = path in files or any(os.path.commonpath([path, r]) == r for r in roots)
        if own:  # written by this trainer (or vouched for): holds the message hub's Python objects
            return torch.load(path, map_location=map_location, weights_only=False)
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - UnpicklingError and friends
            first = str(exc).split("WeightsUnpickler error:")[-1].strip().splitlines()[0][:200]
            raise UntrustedCheckpointError(
                f"{filename} is outside this run's work dir ({work_dir}) and holds Python objects that torch.load("
                f"weights_only=True) refuses ({first}). If you trust the file, pass --trust-checkpoint {filename}; "
                "or load its weights only (save {'state_dict': model_state_dict} and point load_from at that).") from exc

    CheckpointLoader.register_scheme(prefixes="", loader=load_local, force=True)


def setup_cpu_distributed(cfg) -> bool:
    """For ``launcher == "pytorch"`` without CUDA: initialise gloo from torchrun's environment and configure DDP
    for CPU. Returns whether it did; with CUDA (or another launcher) the config is left to mmengine."""
    import torch.distributed as dist

    if cfg.get("launcher", "none") != "pytorch" or torch.cuda.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")  # env:// (MASTER_ADDR / PORT, RANK, WORLD_SIZE from torchrun)
    wrapper = dict(cfg.get("model_wrapper_cfg") or {})
    wrapper.setdefault("type", "MMDistributedDataParallel")
    wrapper.setdefault("broadcast_buffers", False)
    wrapper.setdefault("find_unused_parameters", cfg.get("find_unused_parameters", False))
    wrapper["device_ids"] = None  # a CPU module: DDP must not be given device ids
    cfg.model_wrapper_cfg = wrapper
    cfg.setdefault("env_cfg", {}).setdefault("dist_cfg", {})["backend"] = "gloo"
    return True


def rng_state_hook():
    """The mmengine hook behind exact resume (module docstring): saves torch's CPU (and CUDA) RNG state with each
    checkpoint and restores it before the first training iteration after ``--resume``."""
    from mmengine.hooks import Hook

    class RngStateHook(Hook):
        priority = "VERY_LOW"

        def __init__(self) -> None:
            self._pending = None

        def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
            states = {"torch": torch.get_rng_state()}
            if torch.cuda.is_available():
                states["cuda"] = torch.cuda.get_rng_state_all()
            checkpoint.setdefault("meta", {})["rng_states"] = states

        def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
            if getattr(runner, "_resume", False):
                self._pending = checkpoint.get("meta", {}).get("rng_states")

        def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
            if self._pending is None:
                return
            torch.set_rng_state(self._pending["torch"].cpu())
            if "cuda" in self._pending and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(self._pending["cuda"])
            self._pending = None

    return RngStateHook()


def batch_sample_ids(data_batch) -> list:
    """Identifiers of a training batch's samples: dataset indices (``sample_idx`` / ``index``) of the package's own
    datasets, image paths of MMDetection / MMSegmentation data samples."""
    if isinstance(data_batch, dict):
        for key in ("index", "sample_idx"):
            if key in data_batch:
                return torch.as_tensor(data_batch[key]).reshape(-1).tolist()
        samples = data_batch.get("data_samples")
        if isinstance(samples, dict):
            return batch_sample_ids(samples)
        if isinstance(samples, (list, tuple)):
            return [s.metainfo.get("img_path", s.metainfo.get("img_id")) for s in samples]
    return []


def sample_recorder_hook(directory: str):
    """An mmengine hook writing each rank's training samples to ``directory`` (``utils.io.record_samples``)."""
    from mmengine.dist import get_rank
    from mmengine.hooks import Hook

    class SampleRecorderHook(Hook):
        priority = "VERY_LOW"

        def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
            record_samples(directory, get_rank(), runner.iter, batch_sample_ids(data_batch))

    return SampleRecorderHook()
