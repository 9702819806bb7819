"""Retake docs/app.png: start app.py with the bundled weights, load an example, generate.

    python -m docs.screenshot [--out docs/app.png]     # from the repository root

Needs Debian's chromium (/usr/bin/chromium) and the playwright package (requirements-dev).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tools.server import Server

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "app.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as logs, Server(None, Path(logs)) as server:
        server.wait_ready(180.0)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(90_000)
            page.goto(server.url)
            page.locator("#examples img").first.click()  # loads and generates
            page.wait_for_function(
                "() => /followed|no colour hints/.test("
                "document.querySelector('#hint-report').textContent)")
            page.locator("#face-output img").wait_for(state="visible")
            page.wait_for_timeout(8000)  # overlays fade, the software-rendered canvas redraws
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    print(f"Saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
