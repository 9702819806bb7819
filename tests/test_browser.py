"""The app in a real browser: draw a face with the mouse, paint a hint, click Generate.

Drives Debian's chromium through Playwright (no `playwright install`). Outside CI the test
is skipped when chromium or the playwright package is missing; with $CI set it must run.
Writes test-artifacts/browser.png (the page after generating).
"""

from __future__ import annotations

import io
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import TINY_RESOLUTION
from tests.test_app import running_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 90_000


def need_browser():
    """playwright's sync API, or skip (outside CI) / fail (in CI) with the reason."""
    reasons = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        reasons.append("the playwright package is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        reasons.append(f"{CHROMIUM} is missing (apt-get install chromium)")
    if reasons:
        message = "Browser test needs a browser: " + "; ".join(reasons) + "."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


def stroke(page, points) -> None:
    """One mouse stroke through `points` (page coordinates).

    Headless chromium renders the WebGL canvas in software, and every mouse event waits
    for a frame, so strokes use few points (a busy 2-core machine manages ~2 per second).
    """
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point)
    page.mouse.up()


def ellipse(cx, cy, rx, ry, start=0.0, end=360.0, n=12):
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, end, n)]


def draw_face(page, box) -> None:
    """A rough face in the middle of the canvas: outline, eyes, pupils, nose, mouth, hair."""
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    r = min(box["width"], box["height"]) * 0.3
    stroke(page, ellipse(cx, cy + 0.1 * r, 0.8 * r, r, 0, 360, 14))  # outline
    for side in (-1, 1):
        ex = cx + side * 0.35 * r
        stroke(page, ellipse(ex, cy, 0.17 * r, 0.22 * r, 0, 360, 8))  # eye
        stroke(page, ellipse(ex, cy + 0.05 * r, 0.05 * r, 0.07 * r, 0, 360, 4))  # pupil
    stroke(page, [(cx, cy + 0.2 * r), (cx - 0.05 * r, cy + 0.35 * r)])  # nose
    stroke(page, ellipse(cx, cy + 0.45 * r, 0.25 * r, 0.12 * r, 20, 160, 5))  # mouth
    for x in (cx - 0.3 * r, cx + 0.2 * r):  # fringe
        stroke(page, [(x, cy - 0.85 * r), (x + 0.1 * r, cy - 0.5 * r),
                      (x + 0.05 * r, cy - 0.35 * r)])


def element_pixels(locator) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"))


def wait_for_faint_sketch(page, locator, timeout: float = 60.0) -> None:
    """Wait until the hint pad shows the sketch faintly: mid-grey lines in the middle of
    the canvas (the middle only: the pad's borders and tool icons are grey too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        grey = element_pixels(locator).mean(axis=2)
        h, w = grey.shape
        middle = grey[h // 5 : 4 * h // 5, w // 5 : 4 * w // 5]
        # Faint lines on white paper; a progress overlay greys the whole pad instead (and
        # swallows strokes), so most of the middle must still be near white.
        if ((middle > 150) & (middle < 215)).sum() > 200 and (middle > 240).mean() > 0.5:
            return
        page.wait_for_timeout(250)
    pytest.fail("The hint pad never showed the sketch underneath.")


@pytest.mark.slow
def test_draw_hint_generate_in_a_browser(tiny_weights):
    sync_playwright = need_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app(tiny_weights) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            sketch_canvas = page.locator("#sketch-pad canvas").first
            sketch_canvas.wait_for()
            page.wait_for_timeout(500)
            draw_face(page, sketch_canvas.bounding_box())  # the brush is ready: no clicks

            page.get_by_role("tab", name="2 · Colour hints").click()
            hint_canvas = page.locator("#hint-pad canvas").first
            hint_canvas.wait_for()
            wait_for_faint_sketch(page, hint_canvas)
            box = hint_canvas.bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            r = min(box["width"], box["height"]) * 0.3
            before = element_pixels(hint_canvas).astype(int)
            stroke(page, [(cx - 0.5 * r, cy - 0.7 * r), (cx, cy - 0.85 * r),
                          (cx + 0.5 * r, cy - 0.7 * r)])  # hair colour (the default swatch)
            page.wait_for_timeout(500)
            changed = np.abs(element_pixels(hint_canvas).astype(int) - before).sum(axis=2) > 60
            assert changed.sum() > 100, "the hint stroke did not show on the pad"

            face = page.locator("#face-output img")
            started = time.perf_counter()
            page.locator("#generate").click()
            face.wait_for(state="visible")
            page.wait_for_function(  # all outputs arrive together; the report says when
                "() => /followed|no colour hints/.test("
                "document.querySelector('#hint-report').textContent)"
            )
            seconds = time.perf_counter() - started
            print(f"\nbrowser: click Generate -> face shown in {seconds:.2f} s")

            src = face.get_attribute("src")
            response = page.request.get(src if src.startswith("http") else url + src.lstrip("/"))
            assert response.ok, src
            image = np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"))
            side = -(-384 // TINY_RESOLUTION) * TINY_RESOLUTION  # the upscaled face
            assert image.shape == (side, side, 3)
            assert image.std() > 0.5, "the generated face is a blank image"
            assert element_pixels(face).std() > 0.5, "the face is shown blank"
            # Exactly one hint colour reached the model: the painted layer, not the faint
            # sketch underneath it.
            report = page.locator("#hint-report").inner_text()
            assert "of 1 hint colours followed" in report, report
            page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
        finally:
            browser.close()
