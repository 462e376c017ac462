"""A console a person can read: one progress bar per stage, the frameworks' own output in per-stage log files."""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Callable, Optional

__all__ = ["Stage", "progress_hook", "callback_hook", "quiet_known_warnings"]


def quiet_known_warnings() -> None:
    """Silence third-party warnings a user cannot act on (they still reach the log files with ``--verbose``)."""
    for message in (r"pkg_resources is deprecated", r"`broadcast_buffers` is deprecated", r"Importing from timm\.",
                    r"Setting (OMP|MKL)_NUM_THREADS", r"The `use_return_dict`", r"torch\.meshgrid"):
        warnings.filterwarnings("ignore", message=message)


class Stage(contextlib.AbstractContextManager):
    """``with Stage("SAMI pretraining", log_path, total=60) as bar:`` -- a tqdm bar on the console while everything
    the stage prints (Runner logs, config dumps, COCOeval tables, warnings) goes to ``log_path``; ``verbose`` keeps
    it on the console too."""

    def __init__(self, name: str, log_path: str, total: Optional[int] = None, verbose: bool = False,
                 unit: str = "it") -> None:
        self.name, self.log_path, self.total, self.verbose, self.unit = name, log_path, total, verbose, unit
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        from tqdm import tqdm

        console = sys.stderr
        os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
        if not self.verbose:
            log = self._stack.enter_context(open(self.log_path, "w", buffering=1))
            self._stack.enter_context(contextlib.redirect_stdout(log))
            self._stack.enter_context(contextlib.redirect_stderr(log))
        self.bar = tqdm(total=self.total, desc=f"{self.name:<24}", unit=self.unit, file=console, ncols=100,
                        mininterval=1.0, leave=True)
        return self.bar

    def __exit__(self, *exc) -> bool:
        self.bar.close()
        self._stack.close()
        return False


def progress_hook(bar, loss_key: str = "loss"):
    """An mmengine hook that advances ``bar`` after every training iteration and shows the loss."""
    from mmengine.hooks import Hook

    class ProgressHook(Hook):
        priority = "VERY_LOW"

        def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
            if outputs and loss_key in outputs:
                value = outputs[loss_key]
                value = value.detach() if hasattr(value, "detach") else value
                bar.set_postfix({loss_key: f"{float(value):.3f}"}, refresh=False)
            bar.update(1)

    return ProgressHook()


def callback_hook(before_train: Optional[Callable] = None, after_train: Optional[Callable] = None):
    """An mmengine hook calling ``before_train(runner)`` once the weights are initialised and ``after_train(runner)``
    at the end (the quickstart's before / after evaluations)."""
    from mmengine.hooks import Hook

    class CallbackHook(Hook):
        priority = "LOWEST"

        def before_train(self, runner) -> None:
            if before_train is not None:
                before_train(runner)

        def after_train(self, runner) -> None:
            if after_train is not None:
                after_train(runner)

    return CallbackHook()
