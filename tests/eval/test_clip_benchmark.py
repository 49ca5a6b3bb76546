"""Our evaluation sets in clip_benchmark's own layout: its command line reads them as they are,
and its numbers equal `curate eval`'s (with --alpha drop, as clip_benchmark drops alpha)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from curate.cli import app
from curate.models.clip import load_clip, open_clip_config
from curate.pools import build
from curate.pools.sources import FASHION_MNIST, TUXPAINT_STAMPS

RUNNER = Path(__file__).with_name("clip_benchmark_cli.py")
needs_packages = pytest.mark.skipif(not (FASHION_MNIST.exists() and TUXPAINT_STAMPS.exists()),
                                    reason="the embedded evaluation sets' packages are not installed")


def _model_folder(folder: Path) -> Path:
    """A `curate train` folder: its weights and open_clip_config.json load as open_clip's local-dir:."""
    folder.mkdir(parents=True)
    clip = load_clip("curate-tiny-vit", None, "cpu", seed=3)
    torch.save(clip.model.state_dict(), folder / "open_clip_pytorch_model.bin")
    (folder / "open_clip_config.json").write_text(json.dumps(open_clip_config("curate-tiny-vit")))
    (folder / "train_config.json").write_text(json.dumps({"model": "curate-tiny-vit"}))
    return folder


def _clip_benchmark(dataset: Path, model: Path, task: str, out: Path) -> dict:
    command = [sys.executable, str(RUNNER), "eval", "--dataset", f"wds/{dataset.name}", "--dataset_root", str(dataset),
               "--model", f"local-dir:{model}", "--task", task, "--no_amp", "--num_workers", "0",
               "--batch_size", "16", "--recall_k", "1", "5", "10", "--output", str(out), "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())["metrics"]


@needs_packages
def test_clip_benchmark_reads_our_sets_and_gives_curate_eval_numbers(tmp_path):
    data = tmp_path / "eval"
    build("fashion-mnist-test", data / "fashion-mnist-test", limit=40, samples_per_shard=16)
    build("tuxpaint-retrieval", data / "tuxpaint-retrieval", limit=24, samples_per_shard=10)
    assert (data / "fashion-mnist-test" / "test" / "nshards.txt").read_text().strip() == "3"
    assert (data / "tuxpaint-retrieval" / "dataset_type.txt").read_text().strip() == "retrieval"
    model = _model_folder(tmp_path / "model")
    theirs = {"fashion-mnist-test": _clip_benchmark(data / "fashion-mnist-test", model, "zeroshot_classification",
                                                    tmp_path / "cb-fashion.json"),
              "tuxpaint-retrieval": _clip_benchmark(data / "tuxpaint-retrieval", model, "zeroshot_retrieval",
                                                    tmp_path / "cb-tuxpaint.json")}
    result = CliRunner().invoke(app, ["eval", str(model), "--data", str(data), "--tasks", ",".join(theirs),
                                      "--alpha", "drop", "--out", str(tmp_path / "ours"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    ours = {task["task"]: task["metrics"] for task in json.loads((tmp_path / "ours" / "results.json").read_text())["tasks"]}
    for metric in ("acc1", "acc5", "mean_per_class_recall"):
        assert ours["fashion-mnist-test"][metric] == pytest.approx(theirs["fashion-mnist-test"][metric], abs=1e-9), metric
    for k in (1, 5, 10):
        for way in ("image", "text"):
            metric = f"{way}_retrieval_recall@{k}"
            # clip_benchmark averages in float32: 1e-6 is far below one sample in 24
            assert ours["tuxpaint-retrieval"][metric] == pytest.approx(theirs["tuxpaint-retrieval"][metric], abs=1e-6)
    assert sorted(p.name for p in data.iterdir()) == ["fashion-mnist-test", "tuxpaint-retrieval"]  # --data only read
