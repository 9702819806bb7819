"""A short load test and an overload test against a real `python app.py` (tiny weights).

The full run is `python -m tools.loadtest` (16 clients, 400 requests, bundled weights).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import app
from s2a import serving
from tools import loadtest

ROOT = Path(__file__).resolve().parent.parent


def run_loadtest(*args: str, timeout: float = 200) -> tuple[int, dict]:
    """`python -m tools.loadtest ... --json` as a user runs it; its exit status and report."""
    done = subprocess.run([sys.executable, "-m", "tools.loadtest", *args, "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.stdout.strip(), f"no report; stderr:\n{done.stderr[-3000:]}"
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_short_load_run_has_no_failures(tiny_weights):
    code, report = run_loadtest("--clients", "4", "--requests", "24", "--weights", tiny_weights,
                                "--timeout", "150")
    assert report["mode"] == "load" and report["failed"] == 0, report["errors"]
    assert report["completed"] == 24 and not report["timed_out"]
    assert report["passed"] and code == 0
    assert 0 < report["p50_s"] <= report["p95_s"] <= report["max_s"]
    assert report["throughput_rps"] > 0
    if sys.platform.startswith("linux"):  # VmRSS comes from /proc
        assert report["rss_early_mib"] > 0 and report["rss_end_mib"] > 0
        assert report["rss_growth_pct"] is not None


@pytest.mark.slow
def test_overload_is_rejected_clearly_and_the_server_recovers(tiny_weights):
    code, report = run_loadtest("--overload", "--clients", "12", "--max-queue", "2",
                                "--weights", tiny_weights, "--timeout", "150")
    assert report["mode"] == "overload"
    # Every request got an answer: a face or "Queue is full! Please try again.", no hang.
    assert report["unfinished"] == 0 and report["other_errors"] == 0, report["errors"]
    assert report["rejected_busy"] > 0 and report["succeeded"] > 0
    assert report["succeeded"] + report["rejected_busy"] == 12
    assert "try again" in report["busy_message"].lower()
    assert report["burst_wall_s"] < 150
    assert report["recovered"] and report["passed"] and code == 0


def test_bad_arguments_fail_before_starting_anything(capsys):
    with pytest.raises(SystemExit):
        loadtest.parse_args(["--clients", "0"])
    with pytest.raises(SystemExit):
        loadtest.parse_args(["--overload", "--clients", "3", "--max-queue", "2"])
    assert "overflow the queue" in capsys.readouterr().err


def test_requests_alternate_hints_over_the_examples(tmp_path):
    inputs = loadtest.example_inputs(tmp_path)
    assert inputs and all(Path(p).is_file() for pair in inputs for p in pair)
    with_hints = [loadtest.request_args(inputs, i)[1] is not None for i in range(8)]
    assert with_hints.count(True) == 4


def test_app_rejects_bad_queue_settings(monkeypatch):
    monkeypatch.setenv("S2A_MAX_QUEUE", "0")
    with pytest.raises(SystemExit, match="S2A_MAX_QUEUE"):
        app.main()
    monkeypatch.setenv("S2A_MAX_QUEUE", "5")
    assert serving.env_int("S2A_MAX_QUEUE", 32) == 5
    monkeypatch.delenv("S2A_MAX_QUEUE")
    assert serving.env_int("S2A_MAX_QUEUE", 32) == 32


def test_cached_images_are_never_rewritten_in_place(tmp_path):
    """Two requests making the same image must not truncate a file being downloaded."""
    image = Image.new("RGB", (8, 8), (200, 30, 30))
    first = serving.save_pil_to_cache_atomically(image, str(tmp_path), format="png")
    with open(first, "rb") as reader:  # a download in progress
        inode = os.stat(first).st_ino
        second = serving.save_pil_to_cache_atomically(image, str(tmp_path), format="png")
        assert second == first and os.stat(second).st_ino == inode
        assert reader.read() == Path(first).read_bytes() != b""
    assert [p.name for p in Path(first).parent.iterdir()] == [Path(first).name]


def test_download_cleanup_tolerates_files_deleted_meanwhile(tmp_path):
    assert serving.modified_time(tmp_path / "deleted by another request.png") == 0.0
