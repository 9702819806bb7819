"""The Dockerfile and .dockerignore, read as text (no Docker engine is needed to run this)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), " ".join(rest.split())))
    return result


def position(predicate) -> int:
    found = [i for i, item in enumerate(instructions()) if predicate(*item)]
    assert found, "instruction not found"
    return found[0]


def env_vars() -> dict[str, str]:
    values = {}
    for word, rest in instructions():
        if word == "ENV":
            values.update(item.split("=", 1) for item in shlex.split(rest))
    return values


def test_base_image_and_entry_point():
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert steps[-1][0] == "CMD"
    assert json.loads(steps[-1][1]) == ["python", "app.py"]  # exec form: signals reach python
    assert ("EXPOSE", "7860") in steps
    env = env_vars()
    assert env["GRADIO_SERVER_NAME"] == "0.0.0.0" and env["GRADIO_SERVER_PORT"] == "7860"


def test_runs_as_uid_1000():
    steps = instructions()
    useradd = position(lambda w, r: w == "RUN" and "useradd" in r)
    assert re.search(r"useradd -m -u 1000 user\b", steps[useradd][1])
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1] == "user"
    assert position(lambda w, r: w == "USER") > position(lambda w, r: w == "RUN" and "pip" in r)
    assert ("WORKDIR", "/home/user/app") in steps


def test_dependencies_are_a_layer_before_the_code():
    cpu_torch = position(lambda w, r: w == "RUN" and "download.pytorch.org/whl/cpu" in r)
    copy_requirements = position(
        lambda w, r: w == "COPY" and r.split()[-2:] == ["requirements.txt", "."])
    install = position(lambda w, r: w == "RUN" and "-r requirements.txt" in r)
    copy_code = position(lambda w, r: w == "COPY" and r.split()[-2:] == [".", "."])
    assert cpu_torch < install, "the CPU torch wheel must be installed before requirements.txt"
    assert copy_requirements < install < copy_code
    assert "--chown=user:user" in instructions()[copy_code][1]
    for word, rest in instructions():
        if word == "RUN" and "pip install" in rest:
            assert "--no-cache-dir" in rest


def test_no_unneeded_system_packages():
    for word, rest in instructions():
        if word == "RUN":
            assert "libgl" not in rest.lower(), "opencv-python-headless needs no libGL"


def _pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as a regex: rooted at the context, `*` stops at `/`."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(name: str, patterns: list[str]) -> bool:
    """Docker's rule: a path is left out when it or a parent folder matches; last match wins."""
    parts = name.split("/")
    paths = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(path) for path in paths):
            result = not negate
    return result


@pytest.fixture(scope="module")
def dockerignore() -> list[str]:
    text = (ROOT / ".dockerignore").read_text()
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("name", [".venv/bin/python", "data/meta.json", "runs/x/checkpoint.pt",
                                  ".git/HEAD", "test-artifacts/out.png", ".pytest_cache/v",
                                  "s2a/__pycache__/pipeline.cpython-311.pyc",
                                  "weights/old/optimizer.pt"])
def test_dockerignore_leaves_out_local_state(dockerignore, name):
    assert ignored(name, dockerignore)


@pytest.mark.parametrize("name", ["requirements.txt", "app.py", "s2a/pipeline.py",
                                  "weights/generator/model.safetensors", "weights/bank/bank.json"])
def test_dockerignore_keeps_what_the_app_needs(dockerignore, name):
    assert not ignored(name, dockerignore)


def test_requirements_exist():
    assert (ROOT / "requirements.txt").is_file()
    assert "torch" in (ROOT / "requirements.txt").read_text()
