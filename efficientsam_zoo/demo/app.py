"""The demo page (Gradio): an image tab (clicks, a box from two corner clicks, undo / reset, the mask, its score, the
other candidates, PNG and COCO RLE downloads), a segment-everything tab, and two named API endpoints a script can
call with ``gradio_client``:

* ``/segment(image, points, box)`` -> ``(mask PNG at the image's size, score)``; ``points`` is a JSON list of
  ``[x, y, label]`` in image pixels, ``box`` ``"x0,y0,x1,y1"`` or empty;
* ``/everything(image, grid[, pred_iou_thresh, stability_score_thresh])`` -> ``(overlay, count, COCO RLE JSON
  file)``; the thresholds default to segment-anything's (0.88, 0.95).

Uploads go through a file component, so the backend reads the original file the way the CLI does (16-bit and CMYK
images included). Bad input raises ``gradio.Error`` with the backend's message, on the page and through the API;
other visitors' requests are unaffected.
"""
import copy
import functools
from typing import Dict, Optional, Sequence

import numpy as np

from ..automatic_mask_generator import PRED_IOU_THRESH, STABILITY_SCORE_THRESH
from .backend import DemoBackend, DemoInputError, parse_box, parse_points
from .video import MAX_OBJECT_ID, VideoDemoBackend

__all__ = ["build_demo", "CLICK_MODES"]

CLICK_MODES = ("object (positive click)", "background (negative click)", "box (click two corners)")
_EMPTY = dict(points=[], box=None, corner=None)


def _path(upload) -> Optional[str]:
    """A file component's value (a path, or a FileData-like object with ``.path``) -> its path."""
    if upload is None:
        return None
    return upload if isinstance(upload, str) else getattr(upload, "path", None) or getattr(upload, "name", None)


def build_demo(backend: DemoBackend, examples: Sequence[str] = (), title: str = "EfficientSAM",
               video: Optional[VideoDemoBackend] = None, video_examples: Sequence[str] = ()):
    """The Gradio ``Blocks`` of the demo around ``backend``; with ``video`` (an EfficientTAM behind a
    :class:`VideoDemoBackend`) a video tab as well."""
    import gradio as gr

    def fail(exc: Exception):
        raise gr.Error(str(exc), print_exception=False)

    def render(path: Optional[str], prompts: Dict):
        """Everything the image tab shows for ``prompts`` on the image at ``path``."""
        if path is None:
            return None, None, None, [], None, None
        image = backend.read_image(path)
        points, box = prompts["points"], prompts["box"]
        marks = points + ([(*prompts["corner"], 1)] if prompts["corner"] else [])
        if not points and box is None:
            return backend.overlay(image, points=marks), None, None, [], None, None
        result = backend.segment(image, points, box)
        others = [(m.astype(np.uint8) * 255, f"score {s:.3f}") for i, (m, s) in
                  enumerate(zip(result.masks, result.scores)) if i != result.best]
        png, rle = backend.mask_files(result)
        return (backend.overlay(image, [result.mask], marks, box), round(result.score, 4),
                result.mask.astype(np.uint8) * 255, others, png, rle)

    def on_upload(upload, state):
        try:
            path, fresh = _path(upload), dict(copy.deepcopy(_EMPTY), history=[])
            return (*render(path, fresh), dict(fresh, path=path))
        except DemoInputError as exc:
            fail(exc)

    def on_click(mode: str, state: Dict, evt: gr.SelectData):  # Gradio finds the event by this annotation, so the
        # module keeps real (not postponed, ``from __future__ import annotations``) annotations
        if not state or state.get("path") is None:
            fail(DemoInputError("upload an image (or pick an example) first"))
        x, y = (float(v) for v in evt.index)
        new = copy.deepcopy({k: state[k] for k in _EMPTY})
        if mode == CLICK_MODES[2]:
            if new["corner"] is None:
                new["corner"] = (x, y)
            else:
                (x0, y0), new["corner"] = new["corner"], None
                new["box"] = (min(x0, x), min(y0, y), max(x0, x), max(y0, y))
        else:
            new["points"].append((x, y, 1 if mode == CLICK_MODES[0] else 0))
        try:
            shown = render(state["path"], new)
        except DemoInputError as exc:  # the state stays as it was: the click is not kept
            fail(exc)
        history = state["history"] + [{k: state[k] for k in _EMPTY}]
        return (*shown, dict(new, path=state["path"], history=history))

    def on_undo(state: Dict):
        if not state or not state.get("history"):
            return (*render(state.get("path") if state else None, _EMPTY), state)
        previous, history = state["history"][-1], state["history"][:-1]
        return (*render(state["path"], previous), dict(previous, path=state["path"], history=history))

    def on_reset(state: Dict):
        path = state.get("path") if state else None
        return (*render(path, _EMPTY), dict(copy.deepcopy(_EMPTY), path=path, history=[]))

    def on_everything(upload, grid, iou, stability, progress=gr.Progress()):
        try:
            image = backend.read_image(_path(upload))
            progress(0, desc="image embedding")
            records = backend.everything(image, int(grid), float(iou), float(stability),
                                         progress=lambda done, total: progress((done, total), desc="point grid"))
        except DemoInputError as exc:
            fail(exc)
        return backend.everything_overlay(image, records), len(records), backend.records_file(records)

    def api_segment(upload, points: str, box: str):
        try:
            image = backend.read_image(_path(upload))
            result = backend.segment(image, parse_points(points), parse_box(box))
        except DemoInputError as exc:
            fail(exc)
        return backend.mask_files(result)[0], result.score

    def api_everything(upload, grid, iou, stability):
        return on_everything(upload, grid, iou, stability, progress=lambda *a, **k: None)

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}\nUpload an image, then click on an object. Each further click costs only the mask "
                    "decoder: the image embedding is computed once per image.")
        with gr.Tab("Image"):
            state = gr.State(dict(copy.deepcopy(_EMPTY), path=None, history=[]))
            with gr.Row():
                with gr.Column():
                    upload = gr.File(label="Image", file_types=["image"], elem_id="image-upload")
                    mode = gr.Radio(list(CLICK_MODES), value=CLICK_MODES[0], label="A click adds",
                                    elem_id="click-mode")
                    with gr.Row():
                        undo = gr.Button("Undo", elem_id="undo")
                        reset = gr.Button("Reset", elem_id="reset")
                    if examples:
                        gr.Examples(list(examples), inputs=[upload], label="Examples")
                with gr.Column():
                    canvas = gr.Image(label="Click on the image", interactive=False, type="numpy", format="png",
                                      height=420, elem_id="canvas")
                    score = gr.Number(label="Predicted IoU of the mask", elem_id="score")
                    mask_view = gr.Image(label="Mask", interactive=False, type="numpy", format="png",
                                         image_mode="L", elem_id="mask")
                    candidates = gr.Gallery(label="Other candidate masks", columns=3, elem_id="candidates")
                    with gr.Row():
                        mask_png = gr.File(label="Mask (PNG)", elem_id="mask-png")
                        mask_rle = gr.File(label="Mask (COCO RLE JSON)", elem_id="mask-rle")
            shown = [canvas, score, mask_view, candidates, mask_png, mask_rle, state]
            upload.change(on_upload, [upload, state], shown, api_visibility="private")
            canvas.select(on_click, [mode, state], shown, api_visibility="private")
            undo.click(on_undo, [state], shown, api_visibility="private")
            reset.click(on_reset, [state], shown, api_visibility="private")
        with gr.Tab("Segment everything"):
            with gr.Row():
                with gr.Column():
                    ev_upload = gr.File(label="Image", file_types=["image"], elem_id="everything-upload")
                    grid = gr.Slider(4, 64, value=16, step=1, label="Points per side", elem_id="grid")
                    iou = gr.Slider(0.0, 1.0, value=PRED_IOU_THRESH, step=0.01, label="Predicted IoU threshold",
                                    elem_id="iou-threshold")
                    stability = gr.Slider(0.0, 1.0, value=STABILITY_SCORE_THRESH, step=0.01,
                                          label="Stability score threshold", elem_id="stability")
                    run = gr.Button("Segment everything", variant="primary", elem_id="run-everything")
                    if examples:
                        gr.Examples(list(examples), inputs=[ev_upload], label="Examples")
                with gr.Column():
                    ev_overlay = gr.Image(label="Masks", interactive=False, type="numpy", format="png",
                                          elem_id="everything-overlay")
                    ev_count = gr.Number(label="Number of masks", elem_id="everything-count")
                    ev_json = gr.File(label="Masks (COCO RLE JSON)", elem_id="everything-json")
            run.click(on_everything, [ev_upload, grid, iou, stability], [ev_overlay, ev_count, ev_json],
                      api_visibility="private")
        if video is not None:
            _video_tab(gr, video, video_examples, fail)
        with gr.Column(visible=False):  # the scriptable API: gradio_client.Client(url).predict(..., api_name=...)
            a_image, a_points, a_box = gr.File(), gr.Textbox(), gr.Textbox()
            a_mask, a_score = gr.File(), gr.Number()
            gr.Button().click(api_segment, [a_image, a_points, a_box], [a_mask, a_score], api_name="segment")
            e_image, e_grid = gr.File(), gr.Number(value=16)
            e_iou, e_stability = gr.Number(value=PRED_IOU_THRESH), gr.Number(value=STABILITY_SCORE_THRESH)
            e_overlay, e_count, e_json = gr.Image(type="numpy", format="png"), gr.Number(), gr.File()
            gr.Button().click(api_everything, [e_image, e_grid, e_iou, e_stability], [e_overlay, e_count, e_json],
                              api_name="everything")
    return demo


def _video_tab(gr, video: VideoDemoBackend, examples: Sequence[str], fail) -> None:
    """Upload a video, click on objects on any frame, track them through it, play the overlay, download the masks."""

    def guarded(fn):
        @functools.wraps(fn)  # Gradio reads the handler's signature (event data, progress) through __wrapped__
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except DemoInputError as exc:
                fail(exc)
        return run

    @guarded
    def on_upload(upload):
        if upload is None:
            return None, None, gr.update(maximum=1, value=0), None, None
        token = video.open(_path(upload))
        return token, video.frame(token, 0), gr.update(maximum=max(video.num_frames(token) - 1, 1), value=0), None, \
            None

    @guarded
    def on_click(token, frame_idx, mode, obj_id, evt: gr.SelectData):
        x, y = (float(v) for v in evt.index)
        return video.click(token, int(frame_idx), x, y, 1 if mode == CLICK_MODES[0] else 0, int(obj_id or 1))

    @guarded
    def on_frame(token, frame_idx):
        return video.frame(token, int(frame_idx)) if token else None

    @guarded
    def on_track(token, frame_idx, progress=gr.Progress()):
        overlay, masks = video.propagate(token, lambda done, total: progress((done, total), desc="tracking"))
        return overlay, masks, video.frame(token, int(frame_idx))

    @guarded
    def on_reset(token, frame_idx):
        video.reset(token)
        return video.frame(token, int(frame_idx)), None, None

    with gr.Tab("Video"):
        token = gr.State(None)
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Video (mp4, ...)", file_types=["video"], elem_id="video-upload")
                mode = gr.Radio(list(CLICK_MODES[:2]), value=CLICK_MODES[0], label="A click adds",
                                elem_id="video-click-mode")
                obj = gr.Number(value=1, precision=0, minimum=1, maximum=MAX_OBJECT_ID,
                                label="Object id (a new id starts a new object)",
                                elem_id="video-object")
                with gr.Row():
                    track = gr.Button("Track through the video", variant="primary", elem_id="video-track")
                    reset = gr.Button("Reset", elem_id="video-reset")
                if examples:
                    gr.Examples(list(examples), inputs=[upload], label="Examples")
            with gr.Column():
                canvas = gr.Image(label="Click on an object, on any frame", interactive=False, type="numpy",
                                  format="png", height=420, elem_id="video-canvas")
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="video-frame")
                played = gr.Video(label="Tracked (overlay)", format="webm", elem_id="video-out")
                masks = gr.File(label="Masks (COCO RLE JSON per frame and object)", elem_id="video-json")
        upload.change(on_upload, [upload], [token, canvas, frame, played, masks], api_visibility="private")
        canvas.select(on_click, [token, frame, mode, obj], [canvas], api_visibility="private")
        frame.change(on_frame, [token, frame], [canvas], api_visibility="private")
        track.click(on_track, [token, frame], [played, masks, canvas], api_visibility="private")
        reset.click(on_reset, [token, frame], [canvas, played, masks], api_visibility="private")
