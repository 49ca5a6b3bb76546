"""The training loop on curated shards of a tiny pool: exact resume after a crash or a planned
stop, the budget, the schedule, the losses, the same weights from torchrun's and Ray Train's
processes, and interop with open_clip (its loader reads our weights, its trainer our shards)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import write_pipeline, write_pool
from curate.config import load_pipeline
from curate.errors import ConfigError
from curate.models.clip import _register_configs
from curate.train.config import TrainConfig
from curate.train.loop import train


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    """A tiny pool curated (ingested and exported) into 3 shards of 40."""
    from curate.pipeline import run_pipeline

    folder = tmp_path_factory.mktemp("train-pool")
    write_pool(folder / "pool", shards=3, per_shard=40)
    pipeline = write_pipeline(folder / "pipeline.yaml", str(folder / "pool" / "*.tar"), folder / "run",
                              stages=[{"stage": "export", "params": {"samples_per_shard": 40}}])
    run_pipeline(load_pipeline(pipeline))
    exported = folder / "run" / "export" / "shards"
    assert len(list(exported.glob("*.tar"))) == 3
    return str(exported)


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


def losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def assert_same_training(out: Path, alone: Path) -> None:
    """Two processes on halves of each batch train what one process trains on whole batches
    (up to the order of float sums)."""
    mine, theirs = weights(out), weights(alone)
    assert mine.keys() == theirs.keys()
    assert all(torch.allclose(mine[k], theirs[k], atol=1e-4) for k in theirs)
    assert losses(out) == pytest.approx(losses(alone), abs=1e-4)


TRAIN_ARGS = ["--samples-seen", "128", "--batch-size", "16", "--warmup", "2", "--checkpoint-every", "3",
              "--device", "cpu"]


def test_two_torchrun_processes_train_the_weights_one_process_trains(shards, uninterrupted, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "curate", "train",
               "--data", shards, "--out", str(tmp_path), *TRAIN_ARGS]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    assert_same_training(tmp_path, uninterrupted)


def test_two_ray_train_workers_train_the_weights_one_process_trains(shards, uninterrupted, tmp_path):
    command = [sys.executable, "-m", "curate", "train", "--data", shards, "--out", str(tmp_path), *TRAIN_ARGS,
               "--ray-workers", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on 2 Ray Train workers" in done.stdout
    assert_same_training(tmp_path, uninterrupted)


def test_open_clip_loads_the_run_folder(uninterrupted):
    import open_clip

    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{uninterrupted}")
    assert same(model.state_dict(), weights(uninterrupted))


def test_siglip_weights_load_in_open_clip_and_in_curate(shards, tmp_path):
    import open_clip

    from curate.models.clip import load_clip

    train(config(shards, samples_seen=32, loss="siglip"), tmp_path, device="cpu")
    trained = weights(tmp_path)
    assert "logit_bias" in trained
    _register_configs()
    model, _, _ = open_clip.create_model_and_transforms(
        "curate-tiny-vit", pretrained=str(tmp_path / "open_clip_pytorch_model.bin"), init_logit_bias=-10)
    assert same(model.state_dict(), trained)
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{tmp_path}")
    assert same(model.state_dict(), trained)
    assert same(load_clip("curate-tiny-vit", str(tmp_path), "cpu").model.state_dict(), trained)


def test_open_clip_trainer_trains_on_curated_shards(shards, tmp_path):
    from curate.models.clip import open_clip_config

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps(open_clip_config("curate-tiny-vit")))
    listed = sorted(Path(shards).glob("*.tar"))
    command = [sys.executable, "-m", "open_clip_train.main", "--train-data", "::".join(map(str, listed)),
               "--dataset-type", "webdataset", "--batch-size", "16", "--epochs", "1", "--workers", "1",
               "--model", f"local-dir:{folder}", "--device", "cpu", "--precision", "fp32",
               "--logs", str(tmp_path / "logs"), "--name", "run", "--log-every-n-steps", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("Train Epoch: 0") >= 6  # 120 samples (sizes.json) in batches of 16
    assert (tmp_path / "logs" / "run" / "checkpoints" / "epoch_1.pt").exists()


def test_a_vitamin_from_timm_trains(shards, tmp_path):
    last = train(config(shards, model="ViTamin-S", samples_seen=2, batch_size=2, warmup=0), tmp_path, device="cpu")
    assert last["step"] == 1 and last["loss"] == last["loss"]
    assert (tmp_path / "open_clip_pytorch_model.bin").exists()
