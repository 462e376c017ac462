"""The interactive demo: ``backend`` and ``video`` (what the page computes, no Gradio) and ``app`` (the Gradio page
and its API). Served by ``efficientsam-zoo demo``; ``hf/space/app.py`` runs the same app as a Hugging Face Space."""
from .backend import MAX_PIXELS, DemoBackend, DemoInputError, Segmentation, parse_box, parse_points
from .video import MAX_VIDEO_FRAMES, VideoDemoBackend


def build_demo(*args, **kwargs):
    """``app.build_demo`` (imports Gradio)."""
    from .app import build_demo as build

    return build(*args, **kwargs)


__all__ = ["DemoBackend", "DemoInputError", "Segmentation", "MAX_PIXELS", "parse_points", "parse_box", "build_demo",
           "VideoDemoBackend", "MAX_VIDEO_FRAMES"]
