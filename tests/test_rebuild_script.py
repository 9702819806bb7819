"""training/rebuild_on_gpu.sh: syntax, the v1 chain's order and flags, budget checks.

A real run takes minutes even on tiny data (see the rehearsal in the script's header), so
these tests read the script instead: every `python -m training.<stage>` it calls, with the
flags it passes, checked against the flags that stage's parser defines. The Python program
of its collect() step runs on its own, on a tiny run folder.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "training" / "rebuild_on_gpu.sh"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
ADD_ARGUMENT = re.compile(r"add_argument\(\s*\"(--[a-z][a-z0-9-]*)\"")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _lines(script: Path = SCRIPT) -> list[str]:
    """The script's logical lines: comments dropped, continuations joined."""
    text = script.read_text()
    text = re.sub(r"^\s*#.*$", "", text, flags=re.M).replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _arrays(script: Path = SCRIPT) -> dict[str, str]:
    """Bash arrays defined as NAME=(...) on one or more lines."""
    text = re.sub(r"^\s*#.*$", "", script.read_text(), flags=re.M)
    return {m[1]: m[2] for m in re.finditer(r"^([A-Z0-9_]+)=\((.*?)\)", text, flags=re.M | re.S)}


def _calls(script: Path = SCRIPT) -> list[tuple[str, str]]:
    """(stage, its command line with the arrays it uses expanded), in script order."""
    arrays = _arrays(script)
    calls = []
    for line in _lines(script):
        match = re.search(r"-m training\.(\w+)", line)
        if match:
            expanded = re.sub(r"\"\$\{(\w+)\[@\]\}\"", lambda m: arrays.get(m[1], ""), line)
            calls.append((match[1], expanded))
    return calls


def _defined_flags(stage: str) -> set[str]:
    source = (ROOT / "training" / f"{stage}.py").read_text()
    flags = set(ADD_ARGUMENT.findall(source))
    if "add_common_args(" in source or "add_gan_args(" in source:
        flags |= set(ADD_ARGUMENT.findall((ROOT / "training" / "common.py").read_text()))
    if "add_gan_args(" in source:
        flags |= set(ADD_ARGUMENT.findall((ROOT / "training" / "gan.py").read_text()))
    return flags


def test_syntax():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_stages_run_in_dependency_order():
    order = [(stage, re.search(r"--out \"\$RUNS/(\w+)\"", line)) for stage, line in _calls()]
    names = [(stage, out[1] if out else None) for stage, out in order]
    assert names == [
        ("pack_data", None),
        ("train_baseline", "baseline_plain"),
        ("train_autoencoder", "autoencoder"),
        ("train_baseline", "baseline"),
        ("train_parts", "parts_clean"),
        ("train_parts", "parts"),
        ("build_bank", "bank"),
        ("train_completing_encoder", "completing"),
        ("build_part_banks", "parts_model"),
        ("build_part_keys", None),
        ("train_generator", "generator"),
        ("export", None),
    ]


def test_every_flag_exists_in_its_stage():
    for stage, line in _calls():
        unknown = set(FLAG.findall(line.split(f"training.{stage}", 1)[1])) - _defined_flags(stage)
        assert not unknown, f"{stage} has no {sorted(unknown)}"


def test_the_v1_recipe():
    calls = {}
    for stage, line in _calls():
        out = re.search(r"--out \"\$RUNS/(\w+)\"", line)
        calls[out[1] if out else stage] = line
    v1_gan = ("--l1-weight 10 --d-scales 2 --fm-weight 10 --diffaugment colour translation "
              "--degraded-share 0.5 --ema 0.998")
    assert "--init \"$RUNS/baseline_plain/baseline\"" in calls["baseline"]
    assert v1_gan in " ".join(calls["baseline"].split())
    assert "--l1-weight" not in calls["baseline_plain"]  # the plain recipe: defaults
    # The bank is encoded with the stage-1 (teacher) autoencoder, not the completing one.
    assert "--autoencoder \"$RUNS/autoencoder/autoencoder\"" in calls["bank"]
    completing = " ".join(calls["completing"].split())
    for part in ("--teacher \"$RUNS/autoencoder/autoencoder\"", "--degraded-share 0.75",
                 "--styles rough width soft smooth xdog strays heavy partial frame",
                 "--mse-weight 0.1", "--lr 3e-4", "--batch-size 256"):
        assert part in completing
    generator = " ".join(calls["generator"].split())
    for part in ("--architecture spatial", "--residual-blocks 2",
                 "--autoencoder \"$RUNS/completing/autoencoder\"",
                 "--init-baseline \"$RUNS/baseline_plain/baseline\"", v1_gan, "--batch-size 128"):
        assert part in generator
    assert any("training.train_generator" in line and "\"${PROJECTED[@]}\"" in line
               for line in _lines())
    assert "PROJECTED=(--bank \"$RUNS/bank\" --trace-sketch)" in SCRIPT.read_text()


def test_the_part_stages():
    calls = {}
    for stage, line in _calls():
        out = re.search(r"--out \"\$RUNS/(\w+)\"", line)
        calls[out[1] if out else stage] = " ".join(line.split())
    # The part autoencoders train on the clock beside the completing encoder: clean
    # autoencoders first, then completing students against them.
    assert "--degraded-share 0" in calls["parts_clean"]
    assert "--time-budget \"$PARTS_CLEAN_MIN\"" in calls["parts_clean"]
    assert "--teacher \"$RUNS/parts_clean\"" in calls["parts"]
    assert "--time-budget \"$PARTS_MIN\"" in calls["parts"]
    # The part model as shipped: the whole sketch as the rest, on the whole-face bank, and
    # the part keys read from the decoder of the exported autoencoder.
    for part in ("--parts \"$RUNS/parts_clean\"", "--students \"$RUNS/parts\"",
                 "--autoencoder \"$RUNS/autoencoder/autoencoder\"", "--device \"$DEVICE\"",
                 "--rest whole", "--bank \"$RUNS/bank\""):
        assert part in calls["parts_model"]
    for part in ("--parts \"$RUNS/parts_model\"", "--bank \"$RUNS/bank\"",
                 "--autoencoder \"$RUNS/completing/autoencoder\""):
        assert part in calls["build_part_keys"]
    # The export check takes the part model when there is one.
    assert "${PART_MODEL:+--parts \"$PART_MODEL\"}" in calls["export"]
    assert "PART_MODEL=\"$RUNS/parts_model\"" in SCRIPT.read_text()
    # The run's part autoencoders are sent back, and a stale parts.tar removed first.
    assert any(line.startswith("collect ") and " parts" in line for line in _lines())
    assert "generator,parts,bank}.tar" in SCRIPT.read_text()


@pytest.mark.parametrize("budgets", [["0"], ["1", "-2"], ["1", "2", "x"]])
def test_bad_budgets_fail_before_any_work(tmp_path, budgets):
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "pack"), str(tmp_path / "out"),
                             *budgets], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable,
                                 "S2A_RUNS": str(tmp_path / "runs")})
    assert result.returncode == 2
    assert "usage: rebuild_on_gpu.sh" in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_good_budgets_pass_the_check(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "no-pack"), str(tmp_path / "out"),
                             "0.1", "0.05", "0.1"], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable,
                                           "S2A_RUNS": str(tmp_path / "runs"),
                                           "S2A_DATA": str(tmp_path / "data")})
    assert result.returncode == 1  # got as far as unpacking, which finds no pack
    assert "usage: rebuild_on_gpu.sh" not in result.stderr
    assert "unpack" in result.stdout and "is not a pack" in result.stdout


def _collect_program() -> str:
    """The Python program the script's collect() runs (its heredoc)."""
    return re.search(r"<<'EOF'.*?\n(.*?)\nEOF\n", SCRIPT.read_text(), flags=re.S)[1]


def test_collect_sends_back_the_part_autoencoders(tiny_part_weights, tmp_path):
    import tarfile

    from safetensors.torch import load

    runs, out = tmp_path / "runs", tmp_path / "out"
    out.mkdir()
    names = ("left_eye", "right_eye", "nose", "mouth")
    runs_sent = ("parts_clean", "parts")  # the teachers (their latents fill the banks), students
    for run in runs_sent:
        for name in names:
            shutil.copytree(Path(tiny_part_weights) / "parts" / name / "autoencoder",
                            runs / run / name / "autoencoder")
    program = tmp_path / "collect.py"
    program.write_text(_collect_program())
    command = [sys.executable, str(program), str(runs), str(out), "parts"]
    # The script feeds it to `$PYTHON -` from the repository root, where `training` imports.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Without the run's config.json (the windows) there is nothing to send.
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1 and "parts: no model" in result.stdout
    windows = {name: {"top": 0, "left": 0, "size": 10} for name in names}
    (runs / "parts" / "config.json").write_text(json.dumps({"windows": windows}))
    # Nor without the teachers' run: the part banks could not be rebuilt from the students.
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1 and "parts: no model" in result.stdout
    (runs / "parts_clean" / "config.json").write_text(json.dumps({"windows": windows}))
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    with tarfile.open(out / "parts.tar") as archive:
        members = sorted(archive.getnames())
        tensors = load(archive.extractfile("parts/nose/autoencoder/model.safetensors").read())
    assert members == sorted([*(f"{run}/config.json" for run in runs_sent), *(
        f"{run}/{name}/autoencoder/{file}" for run in runs_sent for name in names
        for file in ("config.json", "model.safetensors"))])
    assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
