"""The demo page's scriptable API through ``gradio_client`` (the calls a script makes): ``/segment`` and
``/everything`` give what the backend computes, bad input comes back as the page's message while the server keeps
serving, and two clients at once on different images each get their own image's masks. Also the Space folder."""
import json
import os
import threading

import numpy as np
import pytest
from demo_fixtures import TINY_MODEL_THRESHOLDS, interior_point, iou
from PIL import Image

from efficientsam_zoo.utils.masks import decode_rle

REPO = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False)


def _segment(client, path, points, box=""):
    from gradio_client import handle_file

    png, score = client.predict(handle_file(path), json.dumps(points), box, api_name="/segment")
    return np.array(Image.open(png)) > 0, score


def test_segment_endpoint_returns_the_backends_mask(client, server, scenes):
    _, backend = server
    path, _, masks = scenes[1]
    x, y = interior_point(masks[0])
    mask, score = _segment(client, path, [[x, y, 1]])
    expected = backend.segment(backend.read_image(path), [(x, y, 1)])
    assert mask.shape == masks[0].shape and np.array_equal(mask, expected.mask)
    assert score == pytest.approx(expected.score, abs=1e-6) and iou(mask, masks[0]) >= 0.5
    boxed, _ = _segment(client, path, [], "{},{},{},{}".format(*np.argwhere(masks[0])[:, ::-1].min(0),
                                                                 *np.argwhere(masks[0])[:, ::-1].max(0)))
    assert iou(boxed, masks[0]) >= 0.5


def test_everything_endpoint(client, scenes):
    from gradio_client import handle_file

    path, image, objects = scenes[0]
    _, count, rle_file = client.predict(handle_file(path), 8, api_name="/everything")  # segment-anything's thresholds
    assert count == len(json.load(open(rle_file)))
    # the tiny model's masks are less stable than SAM's (measured <= 0.89): the thresholds a user would lower
    overlay, count, rle_file = client.predict(handle_file(path), 8, *TINY_MODEL_THRESHOLDS, api_name="/everything")
    records = json.load(open(rle_file))
    masks = [decode_rle(r["segmentation"]) for r in records]
    assert count == len(records) >= 1 and all(m.shape == image.shape[:2] for m in masks)
    assert all(max(iou(m, obj) for m in masks) >= 0.7 for obj in objects)  # every object is among the masks
    assert np.array(Image.open(overlay)).shape[:2] == image.shape[:2]


def test_bad_input_gets_the_pages_message_and_the_server_keeps_serving(client, scenes, tmp_path):
    from gradio_client import handle_file

    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x00not a picture")
    path, _, masks = scenes[0]
    for args, message in [((handle_file(str(junk)), "[[5, 5, 1]]", ""), "is not an image this demo can read"),
                          ((handle_file(path), "[[900, 5, 1]]", ""), r"lies outside the 128x128 image"),
                          ((handle_file(path), "[[5, 5]]", ""), r"JSON list of \[x, y, label\]"),
                          ((handle_file(path), "", "9,9,1"), "box must be 'x0,y0,x1,y1'")]:
        with pytest.raises(Exception, match=message):
            client.predict(*args, api_name="/segment")
    mask, _ = _segment(client, path, [[*interior_point(masks[0]), 1]])  # still serving
    assert mask.any()


def test_two_clients_at_once_get_their_own_images_masks(server, scenes):
    from gradio_client import Client

    url, backend = server
    results, errors = {}, []

    def work(k):
        try:
            client = Client(url, verbose=False)
            path, _, masks = scenes[k]
            x, y = interior_point(masks[0])
            for _ in range(2):  # interleaved with the other client's calls on its own image
                results.setdefault(k, []).append((_segment(client, path, [[x, y, 1]])[0], (x, y)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for k, runs in results.items():
        path = scenes[k][0]
        expected = backend.segment(backend.read_image(path), [(*runs[0][1], 1)]).mask
        assert all(np.array_equal(mask, expected) for mask, _ in runs), k


def test_the_space_folder_runs_the_same_app(demo_model, quickstart, monkeypatch):
    """``hf/space``: README front matter for a Gradio Space, requirements naming this package's [demo] extra, and an
    ``app.py`` that builds the demo on the model its environment names."""
    import importlib.util

    space = os.path.join(REPO, "hf", "space")
    front = open(os.path.join(space, "README.md")).read().split("---")[1]
    assert "sdk: gradio" in front and "app_file: app.py" in front
    assert "efficientsam-zoo[demo]" in open(os.path.join(space, "requirements.txt")).read()
    monkeypatch.setenv("EFFICIENTSAM_CHECKPOINT", str(quickstart[0] / "model"))
    spec = importlib.util.spec_from_file_location("space_app", os.path.join(space, "app.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert type(module.demo).__name__ == "Blocks"
    assert {d.api_name for d in module.demo.fns.values()} >= {"segment", "everything"}
