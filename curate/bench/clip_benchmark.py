"""`curate eval` next to clip_benchmark's own command line, on the same sets and model: the
numbers must agree with `--alpha drop` (clip_benchmark decodes with webdataset, which drops
alpha). clip-benchmark is a development dependency.

Run as a module, this file is clip_benchmark's command line as it is, with one workaround: its
accuracy() calls float() on a one-element array, which NumPy 2 refuses ("only 0-dimensional
arrays can be converted to Python scalars"), so the module's `float` takes such an array as
the scalar it holds."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from curate.errors import ConfigError

RETRIEVAL_K = (1, 5, 10)


def _float(value):
    return builtins.float(np.asarray(value).reshape(()) if isinstance(value, np.ndarray) else value)


def clip_benchmark_metrics(dataset: Path, model: Path, kind: str, batch_size: int = 64) -> dict[str, float]:
    """clip_benchmark's metrics for one set in its WebDataset layout and a `curate train` folder
    (loaded as open_clip's local-dir:), run in a process of its own on the CPU."""
    task = "zeroshot_retrieval" if kind == "retrieval" else "zeroshot_classification"
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "results.json"
        command = [sys.executable, "-m", "curate.bench.clip_benchmark", "eval", "--dataset", f"wds/{dataset.name}",
                   "--dataset_root", str(dataset), "--model", f"local-dir:{Path(model).resolve()}", "--task", task,
                   "--no_amp", "--num_workers", "0", "--batch_size", str(batch_size), "--output", str(out),
                   "--recall_k", *map(str, RETRIEVAL_K), "--quiet"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise ConfigError(f"clip_benchmark failed on {dataset}: {result.stderr.strip().splitlines()[-1:]}")
        metrics = json.loads(out.read_text())["metrics"]
    if kind == "retrieval":
        metrics["mean_recall@1"] = (metrics["image_retrieval_recall@1"] + metrics["text_retrieval_recall@1"]) / 2
    return metrics


def compare(checkpoint: Path, data: Path, keys: list[str]) -> list[dict]:
    """Per task: its main metric by clip_benchmark, and by curate with alpha dropped (their
    convention) and on white (curate's)."""
    from curate.eval.suite import OFFLINE, choose, evaluate, load_checkpoint

    tasks = choose(OFFLINE, keys)
    clip = load_checkpoint(str(checkpoint), None, "cpu")
    ours = {alpha: {r["task"]: r["metrics"] for r in evaluate(clip, tasks, data, alpha=alpha)["tasks"]}
            for alpha in ("drop", "white")}
    rows = []
    for task in tasks:
        theirs = clip_benchmark_metrics(data / task.key, checkpoint, task.kind)
        rows.append({"task": task.key, "metric": task.main_metric, "clip_benchmark": theirs[task.main_metric],
                     "curate_drop": ours["drop"][task.key][task.main_metric],
                     "curate_white": ours["white"][task.key][task.main_metric]})
    return rows


if __name__ == "__main__":
    from clip_benchmark.cli import main
    from clip_benchmark.metrics import zeroshot_classification

    zeroshot_classification.float = _float
    sys.exit(main())
