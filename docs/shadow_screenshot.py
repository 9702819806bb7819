"""Retake docs/shadow_*.png: the sketch pad with the shadow while a face is being drawn.

    python -m docs.shadow_screenshot          # from the repository root, bundled weights

Starts app.py, draws a face in chromium a few strokes at a time and, after each batch,
saves the pad once its shadow has caught up. Needs Debian's chromium and playwright.
"""

from __future__ import annotations

import io
import math
import tempfile
import time
from pathlib import Path

from PIL import Image

from tools.server import Server

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
OVERLAY_SRC = "() => window.s2aOverlay.src('sketch-pad')"  # the shadow shown, or null


def ring(cx, cy, rx, ry, start, end, n):
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in [start + (end - start) * i / (n - 1) for i in range(n)]]


def face_batches(box) -> list[list[list[tuple[float, float]]]]:
    """A rough face in three batches: outline; eyes; nose, mouth and fringe."""
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 20
    r = 150
    outline = [ring(cx, cy, 0.8 * r, r, 200, 340 + 200, 16)]
    eyes = [ring(cx + s * 0.35 * r, cy, 0.16 * r, 0.2 * r, 0, 360, 10) for s in (-1, 1)]
    rest = [[(cx, cy + 0.25 * r), (cx - 0.04 * r, cy + 0.38 * r)],
            ring(cx, cy + 0.5 * r, 0.22 * r, 0.1 * r, 20, 160, 6),
            [(cx - 0.5 * r, cy - 0.9 * r), (cx - 0.3 * r, cy - 0.45 * r)],
            [(cx + 0.1 * r, cy - 0.95 * r), (cx + 0.25 * r, cy - 0.5 * r)]]
    return [outline, eyes, rest]


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as logs, Server(None, Path(logs)) as server:
        server.wait_ready(180.0)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(90_000)
            page.goto(server.url)
            pad = page.locator("#sketch-pad")
            page.locator("#sketch-pad canvas").first.wait_for()
            page.wait_for_timeout(4000)
            box = page.locator("#sketch-pad canvas").first.bounding_box()
            for number, batch in enumerate(face_batches(box), start=1):
                old = page.evaluate(OVERLAY_SRC)
                for points in batch:
                    page.mouse.move(*points[0])
                    page.mouse.down()
                    for point in points[1:]:
                        page.mouse.move(*point)
                    page.mouse.up()
                deadline = time.monotonic() + 60
                while page.evaluate(OVERLAY_SRC) in (None, old) and time.monotonic() < deadline:
                    page.wait_for_timeout(200)
                page.wait_for_timeout(1500)  # later strokes' shadows arrive too
                image = Image.open(io.BytesIO(pad.screenshot())).convert("RGB")
                out = ROOT / "docs" / f"shadow_{number}.png"
                image.quantize(64).save(out, optimize=True)
                print(f"Saved {out} ({out.stat().st_size // 1024} KB)")
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
