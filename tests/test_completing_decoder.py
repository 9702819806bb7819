"""The completing decoder (training.train_completing_decoder), on tiny data."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from s2a.models import SketchAutoencoder, SketchAutoencoderConfig
from s2a.projection import LatentBank
from tests.test_completing_encoder import RES, tiny_data
from training import train_completing_decoder as tcd
from training.data import encode_sketches

SHORT = ["--batch-size", "4", "--log-every", "1", "--sample-every", "1", "--checkpoint-every", "1",
         "--threads", "1", "--k", "3"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """24 train + 8 val tiny faces, a seeded autoencoder and its bank of the train sketches."""
    root = tmp_path_factory.mktemp("completing_decoder")
    data = tiny_data(root, 1)
    torch.manual_seed(0)
    model = SketchAutoencoder(SketchAutoencoderConfig(resolution=RES, latent_dim=16,
                                                      channels=(8, 16))).eval()
    model.save_pretrained(root / "autoencoder")
    train = np.load(data / "train_sketches.npy")
    LatentBank(encode_sketches(model, train, 8, torch.device("cpu")), "flat").save(root / "bank")
    return {"data": str(data), "autoencoder": str(root / "autoencoder"),
            "bank": str(root / "bank"), "root": root}


def _train(tiny, out: Path, *extra: str) -> int:
    return tcd.main(["--data", tiny["data"], "--autoencoder", tiny["autoencoder"],
                     "--bank", tiny["bank"], "--out", str(out), *SHORT, *extra])


def test_two_steps_train_the_decoder_only(tiny, tmp_path):
    assert _train(tiny, tmp_path, "--steps", "2") == 0
    before = load_file(Path(tiny["autoencoder"]) / "model.safetensors")
    after = load_file(tmp_path / "autoencoder" / "model.safetensors")
    assert after.keys() == before.keys()
    for name in after:
        trainable = name.startswith(("from_latent.", "decoder.")) and "running" not in name \
            and "num_batches" not in name
        if not trainable:  # the encoder, so the latent space and the bank, stay as they are
            assert torch.equal(after[name], before[name]), name
    assert any(not torch.equal(after[n], before[n]) for n in after if n.startswith("decoder."))
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert "start_f1_rough" in metrics[0]
    scored = [m for m in metrics if "f1_rough" in m]
    assert [m["step"] for m in scored] == [1, 2]
    for name in ("f1_rough", "f1_amateur", "f1_clean", "f1_recon"):
        assert 0.0 <= scored[-1][name] <= 1.0
    assert len(list((tmp_path / "samples").glob("*.png"))) == 2
    cached = np.load(tmp_path / "projected.npz")
    assert all(cached[kind].shape == (24, 16) for kind in (*tcd.DRAWN_KINDS, "own"))


def test_resume_reuses_the_projections_and_continues(tiny, tmp_path):
    assert _train(tiny, tmp_path, "--steps", "1") == 0
    cache = tmp_path / "projected.npz"
    stamp = cache.stat().st_mtime_ns
    assert _train(tiny, tmp_path, "--steps", "3", "--resume") == 0
    assert cache.stat().st_mtime_ns == stamp  # not recomputed
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text()
             .splitlines() if "loss" in json.loads(line)]
    assert steps == [1, 2, 3]


@pytest.mark.parametrize("extra", [["--k", "0"], ["--shares", "-1", "1", "1", "1", "1"],
                                   ["--shares", "0", "0", "0", "0", "0"], ["--ink-weight", "0"],
                                   ["--bank", "nowhere"]])
def test_bad_flags_fail_before_any_work(tiny, tmp_path, extra):
    with pytest.raises(SystemExit):
        _train(tiny, tmp_path / "run", "--steps", "1", *extra)
    assert not (tmp_path / "run").exists()


def test_projection_leaves_out_the_sketchs_own_row(tiny):
    model = SketchAutoencoder.from_pretrained(tiny["autoencoder"]).eval()
    bank = LatentBank.load(tiny["bank"])
    train = np.load(Path(tiny["data"]) / "train_sketches.npy")
    # Sketches drawn alike have twins in the bank; only those without one are checked.
    unique = [i for i in range(len(train))
              if sum(np.array_equal(train[i], other) for other in train) == 1]
    assert len(unique) >= 3
    own = tcd.projected_latents(model, bank, train[unique], None, "clean", 1, 0, in_bank=False)
    np.testing.assert_allclose(own, bank.latents[unique], atol=1e-3)  # its own row, found
    left_out = tcd.projected_latents(model, bank, train[unique], None, "clean", 1, 0,
                                     in_bank=True)
    assert np.abs(left_out - bank.latents[unique]).max(axis=1).min() > 1e-3


def test_dataset_mixes_kinds_by_share_and_epoch(tiny):
    sketches = np.load(Path(tiny["data"]) / "train_sketches.npy")
    latents = {kind: np.full((24, 16), i, np.float32) for i, kind in enumerate(tcd.KINDS)}
    only_bank = tcd.ProjectedDataset(latents, sketches, {"bank": 1.0})
    z, target = only_bank[5]
    assert torch.all(z == tcd.KINDS.index("bank")) and target.shape == (1, RES, RES)
    assert torch.equal(target[0], torch.from_numpy(sketches[5] / 255.0).float())
    mixed = tcd.ProjectedDataset(latents, sketches, dict(zip(tcd.KINDS, tcd.DEFAULT_SHARES)))
    kinds = {int(mixed[i][0][0]) for i in range(24)}
    assert len(kinds) >= 3
    first = [int(mixed[i][0][0]) for i in range(24)]
    assert first == [int(mixed[i][0][0]) for i in range(24)]  # seeded
    mixed.epoch = 1
    assert first != [int(mixed[i][0][0]) for i in range(24)]
