"""Our evaluation sets in clip_benchmark's own layout: its command line reads them as they are
(run as it is, but for its known NumPy 2 float() bug: see curate/bench/clip_benchmark.py), and
its numbers equal `curate eval`'s (with --alpha drop, as clip_benchmark drops alpha)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from curate.bench.clip_benchmark import clip_benchmark_metrics
from curate.cli import app
from curate.models.clip import load_clip, open_clip_config
from curate.pools import build
from curate.pools.sources import FASHION_MNIST, TUXPAINT_STAMPS

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


@needs_packages
def test_clip_benchmark_reads_our_sets_and_gives_curate_eval_numbers(tmp_path):
    data = tmp_path / "eval"
    build("fashion-mnist-test", data / "fashion-mnist-test", limit=40, samples_per_shard=16)
    build("tuxpaint-retrieval", data / "tuxpaint-retrieval", limit=24, samples_per_shard=10)
    assert (data / "fashion-mnist-test" / "test" / "nshards.txt").read_text().strip() == "3"
    assert (data / "tuxpaint-retrieval" / "dataset_type.txt").read_text().strip() == "retrieval"
    model = _model_folder(tmp_path / "model")
    # batches of 16: several per set, as clip_benchmark streams them
    theirs = {"fashion-mnist-test": clip_benchmark_metrics(data / "fashion-mnist-test", model, "classification", 16),
              "tuxpaint-retrieval": clip_benchmark_metrics(data / "tuxpaint-retrieval", model, "retrieval", 16)}
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
    bench = CliRunner().invoke(app, ["bench", "clip-benchmark", str(model), "--data", str(data),
                                     "--tasks", "tuxpaint-retrieval"], env={"COLUMNS": "200"})
    assert bench.exit_code == 0, bench.output
    row = next(line for line in bench.output.splitlines() if "tuxpaint-retrieval" in line).split("│")
    theirs_mean = (theirs["tuxpaint-retrieval"]["image_retrieval_recall@1"]
                   + theirs["tuxpaint-retrieval"]["text_retrieval_recall@1"]) / 2
    assert float(row[3]) == float(row[4]) == pytest.approx(theirs_mean, abs=1e-4)  # clip_benchmark, curate drop
