"""`curate bench train`: training samples/s of curate's loop and of open_clip's own trainer
(`python -m open_clip_train.main`) on the same shards, model, batch size, precision and number of
decoding workers, each in a fresh process, timed over the same steps after the same warm-up."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError
from curate.models.clip import open_clip_config

# open_clip_train logs "... Batch (t): 0.220, 2327.27/s, 2327.27/s/gpu LR: ..." every step
_OPEN_CLIP_RATE = re.compile(r"Batch \(t\): [\d.e+-]+, ([\d.e+-]+)/s,")


@dataclass(frozen=True)
class TrainBench:
    """One comparison: both trainers take these settings."""

    shards: list[Path]
    model: str
    batch_size: int
    steps: int
    skip: int  # warm-up steps left out of the figure
    device: str
    workers: int  # our decoding threads; open_clip's data-loader processes

    @property
    def samples(self) -> int:
        """Samples each trainer sees."""
        return self.steps * self.batch_size


def steady_rate(rates: list[float], batch_size: int, skip: int) -> float:
    """samples/s over the steps after the first `skip`: total samples over total time."""
    timed = rates[skip:]
    if not timed:
        raise CurateError(f"only {len(rates)} steps were timed; ask for more than --skip {skip} steps")
    return batch_size * len(timed) / sum(batch_size / rate for rate in timed)


def run_curate(bench: TrainBench, out: Path) -> float:
    """samples/s of `curate train`."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "curate", "train", "--out", str(out), "--model", bench.model,
               "--samples-seen", str(bench.samples), "--batch-size", str(bench.batch_size),
               "--checkpoint-every", str(bench.steps), "--device", bench.device,
               "--decode-threads", str(bench.workers), "--warmup", "1"]
    for shard in bench.shards:
        command += ["--data", str(shard)]
    _run(command, "curate train")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return steady_rate([json.loads(line)["samples_per_s"] for line in lines], bench.batch_size, bench.skip)


def run_open_clip(bench: TrainBench, out: Path) -> float:
    """samples/s of `python -m open_clip_train.main`: one epoch of the same number of samples
    (curate's own architectures given as `local-dir:` folders holding their config)."""
    shutil.rmtree(out, ignore_errors=True)
    model = bench.model
    if bench.model.startswith("curate-"):
        folder = out / "model"
        folder.mkdir(parents=True)
        (folder / "open_clip_config.json").write_text(json.dumps(open_clip_config(bench.model)))
        model = f"local-dir:{folder}"
    precision = "amp_bf16" if bench.device == "cuda" else "fp32"
    arguments = ["--train-data", "::".join(str(shard) for shard in bench.shards), "--dataset-type", "webdataset",
                 "--train-num-samples", str(bench.samples), "--batch-size", str(bench.batch_size),
                 "--epochs", "1", "--workers", str(bench.workers), "--model", model, "--device", bench.device,
                 "--precision", precision, "--warmup", "1", "--lr", "5e-4", "--save-frequency", "0",
                 "--log-every-n-steps", "1", "--report-to", "", "--logs", str(out), "--name", "bench",
                 "--seed", "0"]
    log = _run([sys.executable, "-m", "open_clip_train.main", *arguments], "open_clip_train")
    rates = [float(m.group(1)) for m in _OPEN_CLIP_RATE.finditer(log)]
    return steady_rate(rates, bench.batch_size, bench.skip)


def _run(command: list[str], name: str) -> str:
    """Run a trainer; its combined output, or an error with its tail."""
    done = subprocess.run(command, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise CurateError(f"{name} failed (exit {done.returncode}):\n" + "\n".join(output.splitlines()[-15:]))
    return output
