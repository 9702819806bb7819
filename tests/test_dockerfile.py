"""What the Docker image does, read from the Dockerfile and .dockerignore (no Docker engine
is needed): who it runs as, what the build context ships, the layer order and the command."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

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


PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".joblib", ".npy")


def build_context(patterns: list[str]) -> list[str]:
    """The files `docker build .` sends: every file under ROOT that .dockerignore keeps.

    Ignored folders are pruned, as Docker does when no `!` exception reaches into them.
    """
    assert not any(p.startswith("!") for p in patterns), "pruning assumes no exceptions"
    kept = []
    for folder, dirs, files in os.walk(ROOT):
        relative = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if relative == "." else relative + "/"
        dirs[:] = [d for d in dirs if not ignored(prefix + d, patterns)]
        kept += [prefix + f for f in files if not ignored(prefix + f, patterns)]
    return kept


def copied_code() -> int:
    """The position of the COPY that sends the whole build context."""
    return position(lambda w, r: w == "COPY" and shlex.split(r)[-2:] == [".", "."])


def pip_installs() -> list[tuple[int, list[str]]]:
    """(position, arguments after `pip install`) of every RUN that installs packages."""
    found = []
    for i, (word, rest) in enumerate(instructions()):
        if word != "RUN":
            continue
        for command in re.split(r"&&|;", rest):
            args = shlex.split(command)
            if "pip" in args and args[args.index("pip") + 1:args.index("pip") + 2] == ["install"]:
                found.append((i, args[args.index("pip") + 2:]))
    return found


def runtime_imports() -> set[str]:
    """Top-level modules that app.py and the s2a package import."""
    names = set()
    for path in [ROOT / "app.py", *sorted((ROOT / "s2a").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_runs_as_the_non_root_user_spaces_expect():
    """Hugging Face Spaces run the container as uid 1000; the app must not need root."""
    steps = instructions()
    users = [(i, rest) for i, (word, rest) in enumerate(steps) if word == "USER"]
    assert users, "the image would run as root"
    user = users[-1][1]
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    created = {}
    for word, rest in steps:
        if word == "RUN":
            for command in re.split(r"&&|;", rest):
                args = shlex.split(command)
                if args[:1] == ["useradd"]:
                    created[args[-1]] = args[args.index("-u") + 1] if "-u" in args else None
    assert created.get(user) == "1000", f"USER {user} is not a uid 1000 user made in the image"
    env = env_vars()
    assert env.get("HOME") == f"/home/{user}", "the Hub cache under ~ must be writable"
    workdir = [rest for word, rest in steps[:copied_code()] if word == "WORKDIR"][-1]
    assert workdir.startswith(env["HOME"] + "/"), "the app folder must be the user's"
    assert "--chown=" + user in instructions()[copied_code()][1]


def test_dependencies_are_installed_before_the_code_is_copied():
    """Editing the code must not reinstall the dependencies (a layer of its own)."""
    steps = instructions()
    installs = pip_installs()
    assert installs and all(i < copied_code() for i, _ in installs)
    from_requirements = [i for i, args in installs if "requirements.txt" in args]
    assert from_requirements, "requirements.txt is never installed"
    copy_requirements = [i for i, (word, rest) in enumerate(steps)
                         if word == "COPY" and shlex.split(rest)[0] == "requirements.txt"]
    assert copy_requirements and copy_requirements[0] < from_requirements[0]
    for _, args in installs:
        assert "--no-cache-dir" in args, "pip's cache would stay in the image"


def test_torch_comes_from_the_cpu_index_first():
    """A plain PyPI torch pulls several GB of CUDA wheels: the CPU wheel must already be
    there when requirements.txt (which names torch) is installed."""
    installs = pip_installs()
    requirements_at = next(i for i, args in installs if "requirements.txt" in args)
    torch_installs = [(i, args) for i, args in installs if "torch" in args]
    assert torch_installs and torch_installs[0][0] < requirements_at
    index = torch_installs[0][1][torch_installs[0][1].index("--index-url") + 1]
    assert index.rstrip("/").endswith("/cpu")


def test_base_python_satisfies_the_project():
    base = instructions()[0]
    assert base[0] == "FROM"
    match = re.fullmatch(r"python:(\d+\.\d+)[\w.-]*", base[1])
    assert match, f"not an official python image: {base[1]}"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    requires = re.search(r'^requires-python\s*=\s*"([^"]+)"', pyproject, re.M).group(1)
    assert match.group(1) in SpecifierSet(requires)


def test_command_starts_the_app_on_the_exposed_port():
    steps = instructions()
    assert steps[-1][0] == "CMD"
    command = json.loads(steps[-1][1])  # exec form: signals reach python, not a shell
    assert command[0] == "python" and len(command) == 2
    script = ROOT / command[1]
    tree = ast.parse(script.read_text(encoding="utf-8"))
    guards = [node for node in tree.body if isinstance(node, ast.If)
              and "__main__" in ast.unparse(node.test)]
    assert guards, f"{command[1]} does nothing when run as a script"
    env = env_vars()
    assert env.get("GRADIO_SERVER_NAME") == "0.0.0.0", "reachable from outside the container"
    exposed = [rest for word, rest in steps if word == "EXPOSE"]
    assert env.get("GRADIO_SERVER_PORT") in exposed


def test_image_has_no_gui_opencv():
    """The slim image has no libGL: a GUI opencv-python would fail on `import cv2`."""
    names = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.split("#")[0].strip():
            requirement = Requirement(line.split("#")[0].strip())
            names[normalised(requirement.name)] = requirement
    assert "opencv-python" not in names and "opencv-contrib-python" not in names


def test_requirements_cover_what_the_app_imports():
    """Every third-party module app.py and s2a import is installed in the image."""
    installed = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.split("#")[0].strip():
            installed.add(normalised(Requirement(line.split("#")[0].strip()).name))
    for _, args in pip_installs():
        installed |= {normalised(a) for a in args if re.fullmatch(r"[A-Za-z][\w.-]*", a)}
    local = {path.stem for path in ROOT.iterdir() if path.suffix == ".py"
             or (path / "__init__.py").is_file()}
    distributions = importlib.metadata.packages_distributions()
    for name in sorted(runtime_imports() - set(sys.stdlib_module_names) - local):
        provided = {normalised(d) for d in distributions.get(name, [name])}
        assert provided & installed, f"{name} is imported but not installed in the image"


@pytest.fixture(scope="module")
def context(dockerignore) -> list[str]:
    return build_context(dockerignore)


def test_build_context_ships_no_pickles_data_or_runs(context):
    """Nothing in this checkout that would be sent to `docker build` is a pickle, a data
    file or a training run (on a developer's machine data/ and runs/ are full)."""
    for name in context:
        assert not name.lower().endswith(PICKLE_SUFFIXES), name
        assert name.split("/")[0] not in ("data", "runs", ".git", ".venv"), name


def test_build_context_has_what_the_app_needs(context, dockerignore):
    shipped = set(context)
    command = json.loads(instructions()[-1][1])
    assert command[1] in shipped
    assert "requirements.txt" in shipped
    local = runtime_imports() & {p.name for p in ROOT.iterdir() if p.is_dir()}
    for package in local:  # the local packages the app imports, every module of them
        for path in (ROOT / package).rglob("*.py"):
            assert path.relative_to(ROOT).as_posix() in shipped, path
    weights = [p.relative_to(ROOT).as_posix() for p in (ROOT / "weights").rglob("*")
               if p.is_file()]
    assert weights, "the bundled weights are missing"
    assert all(name in shipped for name in weights)


@pytest.mark.parametrize("name", [".venv/bin/python", "data/meta.json", "runs/x/checkpoint.pt",
                                  "data/anime-faces/00001.png", "runs/ae/samples/0001.png",
                                  ".git/HEAD", "test-artifacts/out.png", ".pytest_cache/v",
                                  "s2a/__pycache__/pipeline.cpython-311.pyc",
                                  "weights/old/optimizer.pt", "weights/generator/state.pkl",
                                  "checkpoint.pth", "weights/x/model.ckpt"])
def test_dockerignore_leaves_out_local_state(dockerignore, name):
    assert ignored(name, dockerignore)


@pytest.mark.parametrize("name", ["requirements.txt", "app.py", "s2a/pipeline.py",
                                  "weights/generator/model.safetensors", "weights/bank/bank.json"])
def test_dockerignore_keeps_what_the_app_needs(dockerignore, name):
    assert not ignored(name, dockerignore)



def test_debian_packages_of_the_space_are_installed_by_the_image_and_ci():
    """packages.txt (what a Space apt-installs) is what the image and .ci/run install."""
    packages = (ROOT / "packages.txt").read_text().split()
    assert "libgomp1" in packages  # the upscaler's ncnn build needs GNU OpenMP
    runs = [args for kind, args in instructions() if kind == "RUN"]
    assert any("apt-get install" in args and "packages.txt" in args for args in runs)
    assert position(lambda k, a: k == "RUN" and "packages.txt" in a) < position(
        lambda k, a: k == "USER")  # installed as root, before the switch
    assert "done < packages.txt" in (ROOT / ".ci" / "run").read_text()
