"""The demo page in a real browser (Debian's chromium, driven by selenium through chromium-driver): upload a
generated scene, click on an object and read the mask back from the page and from the download (IoU >= 0.7 with the
main job's model), draw a box from two corner clicks, undo, and segment everything. Skipped, with the reason, where no
browser is installed (scripts/setup_env.sh installs one when it runs as root, as CI does)."""
import io
import json
import os
import shutil
import time
import urllib.request

import numpy as np
import pytest
from demo_fixtures import TINY_MODEL_THRESHOLDS, VIDEO_FRAMES, interior_point, iou
from PIL import Image

from efficientsam_zoo.utils.masks import decode_rle

pytestmark = pytest.mark.browser
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not (CHROMEDRIVER and CHROMIUM):
    pytest.skip("no browser: install Debian's chromium and chromium-driver (scripts/setup_env.sh does so as root)",
                allow_module_level=True)

#: Where the README's screenshot comes from: ESZ_DEMO_SCREENSHOT=docs/demo.png pytest tests/demo/test_browser.py
SCREENSHOT = os.environ.get("ESZ_DEMO_SCREENSHOT")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1200"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _wait(condition, timeout=60.0, what="the page"):
    """``condition()``'s first true value; an element Gradio re-rendered meanwhile (stale) counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException

    end = time.time() + timeout
    while time.time() < end:
        try:
            value = condition()
        except StaleElementReferenceException:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _find(driver, css):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found else None


def _image_src(driver, css):
    img = _find(driver, f"{css} img")
    return img.get_attribute("src") if img is not None and img.get_attribute("src") else None


def _fetch(url) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def _click_at(driver, css, x, y):
    """Click on the image in ``css`` at pixel (x, y) of its natural size."""
    from selenium.webdriver.common.action_chains import ActionChains

    img = _find(driver, f"{css} img")
    natural = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight];", img)
    w, h = img.size["width"], img.size["height"]
    fit = driver.execute_script("return getComputedStyle(arguments[0]).objectFit;", img)
    scale = min(w / natural[0], h / natural[1])  # the picture is fitted into the element, centred ...
    if fit == "scale-down":  # ... and never enlarged (Gradio's images)
        scale = min(scale, 1.0)
    dx = ((x + 0.5) - natural[0] / 2) * scale
    dy = ((y + 0.5) - natural[1] / 2) * scale
    ActionChains(driver).move_to_element_with_offset(img, int(round(dx)), int(round(dy))).click().perform()


def _mask_from_page(driver, previous=None):
    src = _wait(lambda: (s := _image_src(driver, "#mask")) and s != previous and s, what="the mask")
    return src, np.array(Image.open(io.BytesIO(_fetch(src))).convert("L")) > 127


def test_click_box_undo_and_everything_in_a_browser(browser, server, scenes):
    url, _ = server
    path, _, masks = scenes[2]
    target = max(masks, key=lambda m: m.sum())
    browser.get(url)
    upload = _wait(lambda: _find(browser, "#image-upload input[type=file]"), what="the upload field")
    upload.send_keys(os.path.abspath(path))
    _wait(lambda: _image_src(browser, "#canvas"), what="the uploaded image")
    x, y = interior_point(target)
    _click_at(browser, "#canvas", x, y)
    src, mask = _mask_from_page(browser)
    assert mask.shape == target.shape and iou(mask, target) >= 0.7, iou(mask, target)
    link = _wait(lambda: _find(browser, "#mask-png a[href]"), what="the PNG download")
    downloaded = np.array(Image.open(io.BytesIO(_fetch(link.get_attribute("href"))))) > 0
    assert np.array_equal(downloaded, mask)
    score = float(_find(browser, "#score input").get_attribute("value"))
    assert 0 < score <= 1.5
    if SCREENSHOT:
        browser.save_screenshot(SCREENSHOT)

    # a box from two corner clicks (after a reset), then undo back to the pending corner
    _find(browser, "#reset").click()
    _wait(lambda: _image_src(browser, "#mask") is None, what="the reset")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.find_element(By.XPATH, "//label[contains(., 'box (click two corners)')]").click()
    ys, xs = np.nonzero(target)
    _click_at(browser, "#canvas", xs.min() - 2, ys.min() - 2)
    time.sleep(1.0)
    _click_at(browser, "#canvas", xs.max() + 2, ys.max() + 2)
    _, boxed = _mask_from_page(browser)
    assert iou(boxed, target) >= 0.7, iou(boxed, target)
    _find(browser, "#undo").click()
    _wait(lambda: _image_src(browser, "#mask") is None, what="undo to remove the box's mask")

    # segment everything
    browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Segment everything')]").click()
    ev = _wait(lambda: _find(browser, "#everything-upload input[type=file]"), what="the second upload field")
    ev.send_keys(os.path.abspath(path))
    for css, value in zip(("#grid", "#iou-threshold", "#stability"), (8, *TINY_MODEL_THRESHOLDS)):
        box = _find(browser, f"{css} input[type=number]")
        box.clear()
        box.send_keys(str(value), Keys.TAB)
    time.sleep(1.0)
    _find(browser, "#run-everything").click()
    count = _wait(lambda: (v := _find(browser, "#everything-count input")) and v.get_attribute("value") not in
                  ("", "0", None) and v.get_attribute("value"), what="segment everything")
    assert int(float(count)) >= 1
    records = json.loads(_fetch(_wait(lambda: _find(browser, "#everything-json a[href]"),
                                      what="the JSON download").get_attribute("href")))
    assert len(records) == int(float(count))
    assert max(iou(decode_rle(r["segmentation"]), target) for r in records) >= 0.7
    assert _wait(lambda: _image_src(browser, "#everything-overlay"), what="the overlay")


def test_video_tab_click_track_and_download_in_a_browser(browser, server):
    """Upload the generated example video, click on an object on frame 0, track it, step the frame slider, play the
    overlay and download the masks: one object id, every frame it is visible on, the video's size."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, _ = server
    browser.get(url)
    _wait(lambda: browser.find_elements(By.XPATH, "//button[@role='tab' and contains(., 'Video')]"),
          what="the video tab")[0].click()
    example = _wait(lambda: _find(browser, "#video-upload input[type=file]"), what="the video upload field")
    path = os.path.join(os.path.dirname(server[1].work_dir), "video_examples", "example_0.mp4")
    example.send_keys(path)
    first = _wait(lambda: _image_src(browser, "#video-canvas"), what="the video's first frame")
    _click_at(browser, "#video-canvas", 64, 64)
    _wait(lambda: (s := _image_src(browser, "#video-canvas")) and s != first and s, what="the clicked mask")
    _find(browser, "#video-track").click()
    link = _wait(lambda: _find(browser, "#video-json a[href]"), what="the masks download")
    records = json.loads(_fetch(link.get_attribute("href")))
    assert records["frames"] == VIDEO_FRAMES and {a["obj_id"] for a in records["annotations"]} == {1}
    assert {a["frame"] for a in records["annotations"]} <= set(range(VIDEO_FRAMES))
    played = _wait(lambda: (v := _find(browser, "#video-out video")) and v.get_attribute("src"), what="the overlay")
    assert len(_fetch(played)) > 0
    before = _image_src(browser, "#video-canvas")
    box = _find(browser, "#video-frame input[type=number]")
    box.clear()
    box.send_keys(str(VIDEO_FRAMES - 1), Keys.TAB)
    _wait(lambda: (s := _image_src(browser, "#video-canvas")) and s != before and s, what="the last frame")
