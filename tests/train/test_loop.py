"""The training loop on a tiny pool: exact resume after a crash or a planned stop, the budget,
the schedule, the losses, and weights that open_clip loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import write_pool
from curate.errors import ConfigError
from curate.models.clip import _register_configs
from curate.train.config import TrainConfig
from curate.train.loop import train


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("train-pool")
    write_pool(folder, shards=3, per_shard=40)
    return str(folder)


def config(shards: str, **settings) -> TrainConfig:
    return TrainConfig(**({"data": [shards], "samples_seen": 16 * 8, "batch_size": 16, "warmup": 2,
                           "checkpoint_every": 3} | settings))


def weights(out: Path) -> dict:
    return torch.load(out / "open_clip_pytorch_model.bin", weights_only=True)


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def uninterrupted(shards, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    train(config(shards), out, device="cpu")
    return out


def test_a_run_resumed_after_a_crash_ends_with_the_same_weights(shards, uninterrupted, tmp_path):
    def crash(metrics):
        if metrics["step"] == 5:  # the last checkpoint is step 3: steps 4 and 5 are lost
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config(shards), tmp_path, device="cpu", on_step=crash)
    assert not (tmp_path / "open_clip_pytorch_model.bin").exists()
    train(config(shards), tmp_path, device="cpu")
    assert same(weights(tmp_path), weights(uninterrupted))
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))
    mine = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    theirs = [json.loads(line)["loss"] for line in (uninterrupted / "metrics.jsonl").read_text().splitlines()]
    assert mine == theirs


def test_a_planned_stop_continues_to_the_same_weights(shards, uninterrupted, tmp_path):
    assert train(config(shards), tmp_path, device="cpu", stop_after=4)["step"] == 4
    assert train(config(shards), tmp_path, device="cpu")["step"] == 8
    assert same(weights(tmp_path), weights(uninterrupted))


def test_other_settings_on_resume_are_refused(shards, uninterrupted):
    with pytest.raises(ConfigError, match="lr"):
        train(config(shards, lr=1e-3), uninterrupted, device="cpu")


def test_the_budget_is_samples_seen_whatever_the_data_size(shards):
    assert config(shards, samples_seen=1000, batch_size=16).steps == 63  # 120 samples in the pool
    assert config(shards, batch_size=16, accumulate=4).micro_batch == 4


def test_warmup_then_cosine_to_zero():
    c = TrainConfig(data=["x"], samples_seen=1000, batch_size=10, lr=1.0, warmup=10)
    assert [round(c.learning_rate(s), 3) for s in (0, 4, 9, 10)] == [0.1, 0.5, 1.0, 1.0]
    assert c.learning_rate(55) == pytest.approx(0.5, abs=0.02) and c.learning_rate(99) < 0.01


@pytest.mark.parametrize("loss", ["clip", "siglip"])
def test_the_loss_goes_down(shards, tmp_path, loss):
    train(config(shards, samples_seen=16 * 30, loss=loss, lr=2e-3), tmp_path, device="cpu")
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(v == v for v in losses) and sum(losses[-5:]) < sum(losses[:5])


def test_open_clip_loads_the_weights(uninterrupted):
    import open_clip

    _register_configs()
    model, _, _ = open_clip.create_model_and_transforms("curate-tiny-vit", pretrained=str(uninterrupted / "open_clip_pytorch_model.bin"))
    assert same(model.state_dict(), weights(uninterrupted))


def test_no_shards_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no .tar shards"):
        train(TrainConfig(data=[str(tmp_path)], samples_seen=8, batch_size=4), tmp_path / "out", device="cpu")
