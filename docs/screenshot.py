"""Retake docs/app.png: start app.py with the bundled weights, load an example, generate.

    python docs/screenshot.py [--out docs/app.png]

Needs Debian's chromium (/usr/bin/chromium) and the playwright package (requirements-dev).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"app.py exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "config", timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"app.py did not answer on {url} within {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "app.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url, process)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(90_000)
            page.goto(url)
            page.locator("#examples img").first.click()  # loads and generates
            page.wait_for_function(
                "() => /followed|no colour hints/.test("
                "document.querySelector('#hint-report').textContent)")
            page.locator("#face-output img").wait_for(state="visible")
            page.wait_for_timeout(8000)  # overlays fade, the software-rendered canvas redraws
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=20)
    print(f"Saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
