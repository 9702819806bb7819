"""Weights on the Hugging Face Hub, tested offline.

Loading: a real Hub cache layout (models--user--repo/{blobs, snapshots/<commit>, refs/main})
is built in tmp_path from the tiny weights, and the pipeline must read it through
huggingface_hub with HF_HUB_OFFLINE=1. Pushing: `training.push_to_hub` against a fake HfApi.
Nothing here contacts the network: every Hub call that could is made to fail loudly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import numpy as np
import pytest
from huggingface_hub import constants, scan_cache_dir, snapshot_download
from huggingface_hub.hf_api import HfApi
from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
from PIL import Image

from s2a import Sketch2Anime
from s2a.hub import HUB_ALLOW_PATTERNS, resolve_weights
from s2a.projection import LatentBank
from tests.helpers import TINY_LATENT, face_sketch
from training import push_to_hub

REPO = "user/repo"
ROOT = Path(__file__).resolve().parent.parent


def commit_hash(label: str) -> str:
    """A 40-hex commit hash, like the Hub's."""
    return hashlib.sha1(label.encode()).hexdigest()


def add_to_hub_cache(cache: Path, repo_id: str, weights: Path, commit: str,
                     refs: tuple[str, ...] = ("main",)) -> Path:
    """Write `weights` into `cache` exactly as huggingface_hub's downloads leave them.

    Files go to blobs/<sha256> (the LFS etag), the snapshot holds relative symlinks to
    them, and each ref file holds the commit hash (no newline). Returns the snapshot.
    """
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for file in sorted(p for p in Path(weights).rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / file.relative_to(weights)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():  # the same commit added again under another ref
            link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


def _no_network(*args, **kwargs):
    raise AssertionError("the Hub was contacted in an offline test")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, tiny_weights) -> Path:
    """An offline HF cache holding REPO at one commit (refs/main), weights = tiny_weights."""
    cache = tmp_path / "hf-cache"
    add_to_hub_cache(cache, REPO, Path(tiny_weights), commit_hash("v1"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for var in ("S2A_WEIGHTS", "S2A_REVISION"):
        monkeypatch.delenv(var, raising=False)
    # Belt and braces: any listing or lookup on the Hub fails the test.
    for name in ("repo_info", "model_info", "list_repo_tree", "list_repo_files"):
        monkeypatch.setattr(HfApi, name, _no_network)
    return cache


@pytest.fixture(scope="module")
def sketch() -> Image.Image:
    return face_sketch(96)


def _pixels(pipe: Sketch2Anime, sketch: Image.Image) -> np.ndarray:
    return np.asarray(pipe(sketch).image)


# ---------------------------------------------------------------- the cache layout


def test_huggingface_hub_reads_the_handmade_cache(hub_cache):
    folder = Path(snapshot_download(REPO, cache_dir=hub_cache, local_files_only=True))
    assert folder == (hub_cache / "models--user--repo" / "snapshots" / commit_hash("v1")).resolve()
    assert (folder / "generator" / "model.safetensors").is_file()
    report = scan_cache_dir(hub_cache)
    assert report.warnings == []
    (repo,) = report.repos
    assert repo.repo_id == REPO and repo.repo_type == "model"
    (revision,) = repo.revisions
    assert revision.commit_hash == commit_hash("v1") and revision.refs == {"main"}


# ---------------------------------------------------------------- loading from the Hub


def test_repo_id_loads_from_the_offline_cache(hub_cache, tiny_weights, sketch):
    folder = resolve_weights(REPO)
    assert folder.resolve().is_relative_to(hub_cache.resolve())
    pipe = Sketch2Anime.from_pretrained(REPO)
    reference = Sketch2Anime.from_pretrained(tiny_weights)
    assert np.array_equal(_pixels(pipe, sketch), _pixels(reference, sketch))


def test_revision_pins_a_commit(hub_cache, tiny_weights, tmp_path, sketch):
    # A second commit with other weights becomes main; the first stays loadable by hash.
    other = tmp_path / "other"
    shutil.copytree(tiny_weights, other)
    data = (other / "bank" / "bank_latents.safetensors").read_bytes()
    shutil.rmtree(other / "bank")
    latents = np.random.default_rng(1).standard_normal((40, TINY_LATENT)).astype(np.float32)
    LatentBank(latents).save(other / "bank")
    assert (other / "bank" / "bank_latents.safetensors").read_bytes() != data
    add_to_hub_cache(hub_cache, REPO, other, commit_hash("v2"), refs=("main",))

    old = resolve_weights(REPO, revision=commit_hash("v1"))
    new = resolve_weights(REPO)
    assert old.name == commit_hash("v1") and new.name == commit_hash("v2")
    assert (old / "bank" / "bank_latents.safetensors").read_bytes() == data
    pipe = Sketch2Anime.from_pretrained(REPO, revision=commit_hash("v1"))
    assert np.array_equal(_pixels(pipe, sketch),
                          _pixels(Sketch2Anime.from_pretrained(tiny_weights), sketch))


def test_a_cached_tag_loads(hub_cache, tiny_weights):
    add_to_hub_cache(hub_cache, REPO, Path(tiny_weights), commit_hash("v1"), refs=("v1.0",))
    assert resolve_weights(REPO, revision="v1.0").name == commit_hash("v1")


def test_environment_chooses_the_weights(hub_cache, monkeypatch):
    monkeypatch.setenv("S2A_WEIGHTS", REPO)
    assert Sketch2Anime.from_pretrained().resolution == 32
    monkeypatch.setenv("S2A_REVISION", commit_hash("v1"))
    assert resolve_weights(None).name == commit_hash("v1")
    monkeypatch.setenv("S2A_REVISION", "not-cached")
    with pytest.raises(ValueError, match="not in the local Hugging Face cache"):
        Sketch2Anime.from_pretrained()


def test_explicit_source_wins_over_the_environment(hub_cache, monkeypatch, tiny_weights):
    monkeypatch.setenv("S2A_WEIGHTS", "user/not-there")
    monkeypatch.setenv("S2A_REVISION", "not-cached")
    assert resolve_weights(tiny_weights) == Path(tiny_weights)
    assert resolve_weights(REPO).name == commit_hash("v1")


def test_unknown_repo_is_a_value_error(hub_cache):
    with pytest.raises(ValueError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE"):
        Sketch2Anime.from_pretrained("user/unknown")


@pytest.mark.parametrize("revision", ["v2", commit_hash("never pushed")])
def test_revision_not_in_the_cache_is_a_value_error(hub_cache, revision):
    with pytest.raises(ValueError, match=f"revision {revision}.*not in the local"):
        Sketch2Anime.from_pretrained(REPO, revision=revision)


def test_cached_repo_without_the_bank_is_a_value_error(hub_cache, tiny_weights, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(tiny_weights, partial)
    shutil.rmtree(partial / "bank")
    add_to_hub_cache(hub_cache, "user/partial", partial, commit_hash("p"))
    with pytest.raises(ValueError, match="missing bank/bank_latents.safetensors"):
        Sketch2Anime.from_pretrained("user/partial")


def test_download_asks_only_for_the_pipeline_files(monkeypatch, tiny_weights):
    calls = []

    def fake_snapshot_download(**kwargs):
        calls.append(kwargs)
        return tiny_weights

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert resolve_weights(REPO, revision="abc") == Path(tiny_weights)
    (call,) = calls
    assert call["repo_id"] == REPO and call["revision"] == "abc"
    assert call["local_files_only"] is False
    assert set(call["allow_patterns"]) == set(HUB_ALLOW_PATTERNS)
    assert not any(p.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt")) or p == "*"
                   for p in call["allow_patterns"])


@pytest.mark.parametrize("error, message", [
    (RevisionNotFoundError, "exists but has no such revision"),
    (RepositoryNotFoundError, "was not found on the Hub.*HF_TOKEN"),
    (GatedRepoError, "is gated"),
])
def test_online_hub_errors_become_value_errors(monkeypatch, error, message):
    # What snapshot_download raises online; a stand-in response, as the Hub is unreachable.
    response = SimpleNamespace(headers={}, request=None, status_code=404)

    def fail(**kwargs):
        raise error("404 Client Error", response=response)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    with pytest.raises(ValueError, match=message):
        resolve_weights(REPO, revision="nope")


def test_other_failures_become_value_errors(monkeypatch):
    def crash(**kwargs):
        raise ConnectionError("network is unreachable\nsecond line")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", crash)
    with pytest.raises(ValueError, match=r"ConnectionError: network is unreachable\)"):
        resolve_weights(REPO)


@pytest.mark.slow
def test_environment_variables_in_a_fresh_process(hub_cache):
    """As a user runs it: env set before huggingface_hub is imported, no network."""
    env = {**os.environ, "S2A_WEIGHTS": REPO, "S2A_REVISION": commit_hash("v1"),
           "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    code = ("from s2a import Sketch2Anime; from s2a.pipeline import resolve_weights; "
            "print(Sketch2Anime.from_pretrained().resolution, resolve_weights(None))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    size, folder = result.stdout.split()
    assert size == "32" and Path(folder).name == commit_hash("v1")
    assert Path(folder).resolve().is_relative_to(hub_cache.resolve())


# ---------------------------------------------------------------- push_to_hub


class FakeApi:
    """Records the HfApi calls push_to_hub makes; `upload_folder` fills a Hub cache."""

    def __init__(self, cache: Path | None = None):
        self.calls: list[tuple[str, tuple, dict]] = []
        self.cache = cache

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))

    def create_branch(self, *args, **kwargs):
        self.calls.append(("create_branch", args, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", (), kwargs))
        if self.cache is not None:  # what a later download at that revision would see
            staged = self.cache.parent / "staged"
            for name in kwargs["allow_patterns"]:
                (staged / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(Path(kwargs["folder_path"]) / name, staged / name)
            add_to_hub_cache(self.cache, kwargs["repo_id"], staged, commit_hash("pushed"),
                             refs=(kwargs["revision"],))

        class Commit:
            commit_url = f"https://huggingface.co/{kwargs['repo_id']}/commit/0"

        return Commit()


@pytest.fixture
def no_hub(monkeypatch):
    """Any HfApi or token use by push_to_hub fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("push_to_hub contacted the Hub")

    monkeypatch.setattr(push_to_hub, "HfApi", refuse)
    monkeypatch.setattr(push_to_hub, "get_token", refuse)


@pytest.fixture
def weights_copy(tiny_weights, tmp_path) -> Path:
    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# Sketch2Anime weights\n")
    return folder


def test_dry_run_lists_files_and_contacts_nothing(weights_copy, no_hub, capsys):
    (weights_copy / "notes.txt").write_text("not part of the weights")
    (weights_copy / "runs").mkdir()
    (weights_copy / "runs" / "metrics.jsonl").write_text("{}\n")
    assert push_to_hub.main(["--repo", REPO, "--weights", str(weights_copy), "--dry-run"]) == 0
    out = capsys.readouterr().out
    expected = ["README.md", "autoencoder/config.json", "autoencoder/model.safetensors",
                "generator/config.json", "generator/model.safetensors",
                "baseline/config.json", "baseline/model.safetensors",
                "bank/bank_latents.safetensors", "bank/bank.json", "manifest.json"]
    for name in expected:
        assert name in out
    assert "notes.txt" not in out and "metrics.jsonl" not in out
    total = sum((weights_copy / name).stat().st_size for name in expected)
    assert f"({total} bytes)" in out
    assert "Dry run" in out
    assert sorted(push_to_hub.upload_files(weights_copy)) == sorted(expected)


@pytest.mark.parametrize("name", ["generator/pytorch_model.bin", "extra/opt.PT", "state.pkl",
                                  "ckpt/last.ckpt", "model.pth"])
def test_pickle_files_are_refused(weights_copy, no_hub, capsys, name):
    (weights_copy / name).parent.mkdir(parents=True, exist_ok=True)
    (weights_copy / name).write_bytes(b"\x80\x04pickle")
    assert push_to_hub.main(["--repo", REPO, "--weights", str(weights_copy)]) == 2
    err = capsys.readouterr().err
    assert "pickle" in err and name in err and "Traceback" not in err


@pytest.mark.parametrize("broken", ["bank", "generator", "autoencoder/model.safetensors"])
def test_incomplete_folder_is_refused(weights_copy, no_hub, capsys, broken):
    target = weights_copy / broken
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert push_to_hub.main(["--repo", REPO, "--weights", str(weights_copy), "--dry-run"]) == 2
    assert "missing" in capsys.readouterr().err


def test_folder_that_does_not_load_is_refused(weights_copy, no_hub, capsys):
    (weights_copy / "generator" / "model.safetensors").write_bytes(b"not safetensors")
    assert push_to_hub.main(["--repo", REPO, "--weights", str(weights_copy), "--dry-run"]) == 2
    assert "does not load" in capsys.readouterr().err


def test_missing_folder_is_refused_without_a_hub_lookup(no_hub, capsys):
    # "a/b" looks like a repo id: a missing folder must not be fetched from the Hub instead.
    missing = "nobody/weights-that-do-not-exist"
    assert push_to_hub.main(["--repo", REPO, "--weights", missing, "--dry-run"]) == 2
    assert "No weights folder" in capsys.readouterr().err


BAD_FLAGS = [["--repo", "not a repo"], ["--repo", REPO, "--revision", commit_hash("x")],
             ["--repo", REPO, "--message", " "]]


@pytest.mark.parametrize("flags", BAD_FLAGS)
def test_bad_flags_exit_2(flags, no_hub):
    with pytest.raises(SystemExit) as exit_info:
        push_to_hub.parse_args(flags)
    assert exit_info.value.code == 2


def test_missing_token_is_a_clear_error(weights_copy, monkeypatch, capsys):
    monkeypatch.setattr(push_to_hub, "get_token", lambda: None)
    monkeypatch.setattr(push_to_hub, "HfApi", _no_network)
    assert push_to_hub.main(["--repo", REPO, "--weights", str(weights_copy)]) == 2
    err = capsys.readouterr().err
    assert "HF_TOKEN" in err and "Traceback" not in err


def test_push_calls_create_repo_and_upload_folder(weights_copy, monkeypatch, tmp_path,
                                                   tiny_weights, sketch):
    cache = tmp_path / "hf-cache"
    api = FakeApi(cache)
    tokens = []

    def make_api(token=None):
        tokens.append(token)
        return api

    monkeypatch.setattr(push_to_hub, "HfApi", make_api)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    argv = ["--repo", REPO, "--weights", str(weights_copy), "--revision", "dev",
            "--private", "--message", "First weights"]
    assert push_to_hub.main(argv) == 0
    assert tokens == ["hf_test_token"]

    names = [name for name, _, _ in api.calls]
    assert names == ["create_repo", "create_branch", "upload_folder"]
    _, args, kwargs = api.calls[0]
    assert args == (REPO,) and kwargs["exist_ok"] is True and kwargs["private"] is True
    assert api.calls[1][2]["branch"] == "dev" and api.calls[1][1] == (REPO,)
    upload = api.calls[2][2]
    assert upload["repo_id"] == REPO and upload["revision"] == "dev"
    assert Path(upload["folder_path"]) == weights_copy
    assert upload["commit_message"] == "First weights"
    assert sorted(upload["allow_patterns"]) == sorted(push_to_hub.upload_files(weights_copy))
    assert "bank/*" in upload["delete_patterns"]

    # What was pushed loads back, offline, at that revision, and draws the same face.
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = Sketch2Anime.from_pretrained(REPO, revision="dev")
    assert np.array_equal(_pixels(pipe, sketch),
                          _pixels(Sketch2Anime.from_pretrained(tiny_weights), sketch))


def test_push_to_main_creates_no_branch(weights_copy, monkeypatch):
    api = FakeApi()
    monkeypatch.setattr(push_to_hub, "HfApi", lambda token=None: api)
    monkeypatch.setattr(push_to_hub, "get_token", lambda: "hf_x")
    assert push_to_hub.main(["--repo", REPO, "--weights", str(weights_copy)]) == 0
    assert [name for name, _, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][2]["private"] is None
    assert api.calls[1][2]["revision"] == "main"


def test_upload_failure_is_one_line(weights_copy, monkeypatch, capsys):
    class Failing(FakeApi):
        def upload_folder(self, **kwargs):
            raise OSError("403 Forbidden: you cannot write to this repo\nmore detail")

    monkeypatch.setattr(push_to_hub, "HfApi", lambda token=None: Failing())
    monkeypatch.setattr(push_to_hub, "get_token", lambda: "hf_x")
    assert push_to_hub.main(["--repo", REPO, "--weights", str(weights_copy)]) == 1
    err = capsys.readouterr().err
    assert "403 Forbidden" in err and "more detail" not in err and "Traceback" not in err
