"""Running a benchmark: build what it needs, curate the pool once per strategy, train the same
model with the same samples seen on every subset for every seed, evaluate each model on the
suite, and write the leaderboard. Every step resumes: a rerun skips what is done."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from curate.benchmark import leaderboard
from curate.benchmark.config import BenchmarkConfig, Strategy
from curate.benchmark.curation import POOL_RUN, curate_strategy, score_pool, strategy_dir
from curate.eval.suite import evaluate_suite, load_checkpoint, ready_tasks, write_results
from curate.eval.tasks import Task
from curate.progress import NullProgress
from curate.run import file_sha256, stable_hash
from curate.train.config import DFN_DEFAULTS, TrainConfig

Log = Callable[[str], None]


def prepare(config: BenchmarkConfig, log: Log) -> None:
    """Build the pools and train the data-filtering networks the benchmark names (each skipped when done)."""
    from curate.pools import ensure
    from curate.train.loop import train

    for build in config.prepare.pools:
        _, built = ensure(build.name, build.out, **build.options)
        log(f"pool {build.name} in {build.out}: {'built' if built else 'already built'}")
    metadata = config.prepare.metadata
    if metadata is not None and not metadata.exists():
        from curate.metaclip.metadata import build_metadata, write_metadata

        write_metadata(metadata, build_metadata())
        log(f"MetaCLIP metadata in {metadata}: built")
    for dfn in config.prepare.dfn:
        settings = dfn.model_dump(exclude={"out"})
        dfn_config = TrainConfig(**settings, checkpoint_every=DFN_DEFAULTS["checkpoint_every"])
        train(dfn_config, dfn.out, config.train.device, config.train.decode_threads)
        log(f"data-filtering network in {dfn.out}: ready")


def model_dir(config: BenchmarkConfig, strategy: Strategy, subset: dict, seed: int) -> Path:
    """A trained model's folder, named by what it was trained on and how: a changed subset or
    changed training settings train a new model instead of reusing a stale one."""
    subset_file = Path(subset["shards"]).parent / "subset.npy"
    what = stable_hash([file_sha256(subset_file), config.train.model_dump(mode="json")])[:12]
    return strategy_dir(config, strategy) / "models" / what / f"seed-{seed}"


def train_and_evaluate(config: BenchmarkConfig, out: Path, shards: str, seed: int,
                       tasks: tuple[Task, ...], root: Path) -> dict:
    """Train (or finish training) one model and evaluate it (or read its evaluation)."""
    from curate.train.loop import train

    settings = config.train.model_dump(exclude={"device", "decode_threads"})
    train(TrainConfig(data=[shards], seed=seed, **settings), out, config.train.device, config.train.decode_threads)
    results_file = out / "eval" / config.eval.suite / "results.json"
    keys = [t.key for t in tasks]
    if results_file.exists():
        results = json.loads(results_file.read_text())
        if [t["task"] for t in results["tasks"]] == keys:
            return results
    clip = load_checkpoint(str(out), None, config.train.device)
    results = {"checkpoint": str(out), "seed": seed,
               **evaluate_suite(clip, config.eval.suite, tasks, root, threads=config.train.decode_threads)}
    write_results(results, results_file.parent)
    return results


def run_benchmark(config: BenchmarkConfig, progress: NullProgress | None = None, log: Log = lambda _: None) -> dict:
    """Run (or resume) the whole benchmark; the leaderboard dict, also written to OUT."""
    started = time.perf_counter()
    prepare(config, log)
    tasks, root = ready_tasks(config.eval.suite, config.eval.tasks, config.eval.data)
    pool = score_pool(config, progress)
    log(f"pool scored: {pool['ingested']:,} samples")
    subsets = {}
    for strategy in config.strategies:
        subsets[strategy.name] = curate_strategy(config, strategy, progress)
        log(f"{strategy.name}: {subsets[strategy.name]['curated']:,} of {pool['ingested']:,} kept")
    rows = []
    for strategy in config.strategies:
        subset, results = subsets[strategy.name], []
        for seed in config.seeds if subset["curated"] else []:
            out = model_dir(config, strategy, subset, seed)
            log(f"{strategy.name}, seed {seed}: training {config.train.model} on {config.train.samples_seen:,} samples "
                f"in {out}")
            results.append({**train_and_evaluate(config, out, subset["shards"], seed, tasks, root), "seed": seed})
            log(f"{strategy.name}, seed {seed}: average {results[-1]['average']:.4f}")
        rows.append(leaderboard.strategy_row(strategy.name, subset, results))
    board = _board(config, tasks, rows, subsets)
    board["seconds"] = round(time.perf_counter() - started, 1)
    board["outputs"] = {k: str(v) for k, v in leaderboard.write(board, config.out).items()}
    return board


def _board(config: BenchmarkConfig, tasks: tuple[Task, ...], rows: list[dict], subsets: dict) -> dict:
    rows = sorted(rows, key=lambda r: -r["average"]["mean"] if r["average"]["values"] else float("inf"))
    train = config.train
    setting = (f"Each subset trains {train.model} on {train.samples_seen:,} samples seen (batch {train.batch_size}, "
               f"lr {train.lr:g}), for seeds {', '.join(map(str, config.seeds))}; evaluated on the {config.eval.suite} "
               f"suite ({len(tasks)} tasks, main metric each); values are mean ± std over seeds.")
    board = {"name": config.name, "setting": setting, "seeds": config.seeds,
             "task_names": {t.key: f"{t.name} {t.main_metric}" for t in tasks},
             "rows": rows, "verdict": leaderboard.verdict(rows, config.baseline_name)}
    if config.ground_truth is not None:
        board["ground_truth"] = _ground_truth(config, subsets)
    return board


def _ground_truth(config: BenchmarkConfig, subsets: dict) -> dict:
    from curate.benchmark import truth

    table = truth.truth_table(config.ground_truth)
    return {"samples": table.height, "noisy": int(table["noisy"].sum()),
            "scores": truth.rate_scores(config.out / POOL_RUN, config.ground_truth, table),
            "strategies": [truth.rate_removals(Path(subsets[s.name]["run_dir"]), s.name, table)
                           for s in config.strategies]}
