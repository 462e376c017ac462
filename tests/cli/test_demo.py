"""``efficientsam-zoo demo``'s choices before it serves: which model (the main job's by default), and the messages
when there is none, when --run has no model, or when Gradio is missing."""
import argparse

import pytest

from efficientsam_zoo.cli import build_parser, main
from efficientsam_zoo.cli.demo import QUICKSTART_MODEL, demo_model_source


def _args(*argv):
    return build_parser().parse_args(["demo", *argv])


def test_model_source_follows_the_options_then_the_main_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"no model to serve: run `efficientsam-zoo quickstart` first"):
        demo_model_source(_args())
    (tmp_path / QUICKSTART_MODEL).mkdir(parents=True)
    assert demo_model_source(_args()) == (QUICKSTART_MODEL, "")
    assert demo_model_source(_args("--checkpoint", "w.pt")) == ("w.pt", "")
    assert demo_model_source(_args("--model", "efficientsam-s")) == ("", "efficientsam-s")
    (tmp_path / "run" / "model").mkdir(parents=True)
    assert demo_model_source(_args("--run", "run")) == ("run/model", "")
    with pytest.raises(SystemExit, match=r"--run 'elsewhere' has no model/ folder"):
        demo_model_source(_args("--run", "elsewhere"))
    args = _args()
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, False)  # this machine only, no public link
    with pytest.raises(SystemExit):
        _args("--checkpoint", "a.pt", "--run", "b")  # one source


def test_without_gradio_the_command_names_the_extra(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    with pytest.raises(SystemExit, match=r"pip install 'efficientsam-zoo\[demo\]'"):
        main(["demo", "--checkpoint", "x.pt"])
    assert isinstance(_args(), argparse.Namespace)
