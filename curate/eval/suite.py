"""Suites of tasks, and evaluating a checkpoint on one: per-task metrics, the main metric of
each as DataComp names it, and their unweighted average; written as JSON and a Markdown table."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

from curate.errors import ConfigError
from curate.eval.data import shards
from curate.eval.tasks import Task, run_task
from curate.progress import NullProgress
from curate.run import write_atomic
from curate.stages.score.model_batches import Alpha, BatchFeeder

OFFLINE = (
    Task("fashion-mnist-test", "Fashion-MNIST", "classification", "acc1"),
    Task("mnist-5k", "MNIST 5k", "classification", "acc1"),
    Task("flags-eval", "Flags (held-out countries)", "classification", "acc1"),
    Task("tuxpaint-retrieval", "Tux Paint retrieval", "retrieval", "mean_recall@1"),
)
DEFAULT_OFFLINE_ROOT = Path("data/eval")


def suite_tasks(suite: str) -> tuple[Task, ...]:
    """The tasks of a suite by name: offline or datacomp."""
    from curate.eval.datacomp import DATACOMP

    suites = {"offline": OFFLINE, "datacomp": DATACOMP}
    if suite not in suites:
        raise ConfigError(f"unknown suite {suite!r}; suites: {', '.join(suites)}")
    return suites[suite]


def choose(tasks: tuple[Task, ...], keys: list[str] | None) -> tuple[Task, ...]:
    """The tasks named in `keys` (all when None), in suite order; an unknown key is an error."""
    if not keys:
        return tasks
    known = {t.key for t in tasks}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ConfigError(f"unknown task {unknown[0]!r}; tasks of this suite: {', '.join(sorted(known))}")
    return tuple(t for t in tasks if t.key in keys)


def prepare_offline(root: Path, tasks: tuple[Task, ...], log: Callable[[str], None] = lambda _: None) -> None:
    """Build the offline evaluation sets that `root` lacks (they come from local packages), saying
    so through `log`; a set built in an older layout (without clip_benchmark's test/nshards.txt or
    its class names) is built again with its own options."""
    from curate.pools import build
    from curate.pools.writer import CLASSNAMES_FILE, EVAL_SPLIT, MANIFEST, NSHARDS_FILE

    for task in tasks:
        folder = root / task.key
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            log(f"building the evaluation set {task.key} in {folder} (from local packages; once)")
            build(task.key, folder)
            continue
        outdated = not (folder / EVAL_SPLIT / NSHARDS_FILE).exists() or (
            task.kind == "classification" and not (folder / CLASSNAMES_FILE).exists())
        if outdated:
            log(f"building the evaluation set {task.key} in {folder} again, in clip_benchmark's layout")
            build(task.key, folder, **manifest.get("options", {}))


def check_present(root: Path, tasks: tuple[Task, ...], suite: str = "datacomp") -> None:
    """Every task's folder holds shards; else one error listing all that are missing."""
    missing = []
    for task in tasks:
        try:
            shards(root / task.key)
        except ConfigError:
            missing.append(task.key)
    if not missing:
        return
    if suite == "offline":
        how = (f"build them with `curate pools build NAME --out {root}/NAME` (curate builds sets itself only under "
               f"{DEFAULT_OFFLINE_ROOT}, never in a folder given with --data)")
    else:
        how = "download them (DataComp: download_evalsets.py)"
    raise ConfigError(f"{len(missing)} of {len(tasks)} evaluation sets are missing under {root}: "
                      f"{', '.join(missing)}; {how}, or choose tasks with --tasks")


def ready_tasks(suite: str, keys: list[str] | None, data: Path | None,
                log: Callable[[str], None] = lambda _: None) -> tuple[tuple[Task, ...], Path]:
    """(the chosen tasks of a suite, their data root), every set present. The offline suite's
    root defaults to data/eval, where curate builds the sets that are missing (announced through
    `log`); a root given otherwise is only read. DataComp's root must be given."""
    tasks = choose(suite_tasks(suite), keys)
    if suite == "datacomp" and data is None:
        raise ConfigError("--suite datacomp needs --data: the folder holding DataComp's evaluation sets")
    root = data or DEFAULT_OFFLINE_ROOT
    if suite == "offline" and Path(root).resolve() == DEFAULT_OFFLINE_ROOT.resolve():
        prepare_offline(root, tasks, log)
    check_present(root, tasks, suite)
    return tasks, root


def evaluate_suite(clip: Any, suite: str, tasks: tuple[Task, ...], root: Path,
                   progress: NullProgress | None = None, threads: int = 2, alpha: Alpha = "white") -> dict:
    """`evaluate`, with the suite named and, for DataComp's, its group averages."""
    results = {"suite": suite, "data": str(root), "alpha": alpha,
               **evaluate(clip, tasks, root, progress, threads, alpha)}
    if suite == "datacomp":
        from curate.eval.datacomp import group_averages

        results["groups"] = group_averages(results["tasks"])
    return results


def evaluate(clip: Any, tasks: tuple[Task, ...], root: Path, progress: NullProgress | None = None,
             threads: int = 2, alpha: Alpha = "white") -> dict:
    """Run every task on its set under `root`; the results dict (see `write_results`). `alpha`:
    how transparent pixels are shown (white as curate scores; "drop" as clip_benchmark)."""
    progress = progress or NullProgress()
    feeder = BatchFeeder(threads, "eval")
    results = []
    try:
        for task in tasks:
            folder = root / task.key
            started = time.perf_counter()
            with progress.stage(task.key, len(shards(folder))) as bar:
                found, counts = run_task(task, clip, folder, feeder, lambda n: bar.advance({"rows": n}), alpha)
            results.append({"task": task.key, "name": task.name, "kind": task.kind,
                            "main_metric": task.main_metric, "main": found[task.main_metric],
                            "metrics": found, "counts": counts,
                            "seconds": round(time.perf_counter() - started, 2)})
    finally:
        feeder.close()
    mains = [r["main"] for r in results]
    average = sum(mains) / len(mains) if mains and not any(math.isnan(m) for m in mains) else float("nan")
    return {"tasks": results, "average": average, "n_tasks": len(results)}


def markdown(results: dict) -> str:
    """The results as a Markdown table (task, metric, value; the main metric in bold) and the average."""
    lines = ["| task | metric | value |", "| --- | --- | ---: |"]
    for task in results["tasks"]:
        for metric, value in task["metrics"].items():
            shown = f"**{metric}**" if metric == task["main_metric"] else metric
            lines.append(f"| {task['name']} | {shown} | {value:.4f} |")
    for group, value in results.get("groups", {}).items():
        lines.append(f"| *{group}* | mean of the group's main metrics | {value:.4f} |")
    lines.append(f"| **average** | main metrics of {results['n_tasks']} tasks, unweighted | "
                 f"**{results['average']:.4f}** |")
    return "\n".join(lines) + "\n"


def results_dir(checkpoint: str, suite: str, keys: list[str] | None = None, alpha: str = "white") -> Path:
    """Where `curate eval` writes by default: CHECKPOINT/eval/SUITE (./eval/SUITE for a file or a
    tag), with chosen tasks or another alpha in a folder of their own, so that the whole suite's
    results are never overwritten by part of them."""
    folder = Path(checkpoint) if Path(checkpoint).is_dir() else Path(".")
    name = suite if alpha == "white" else f"{suite}-alpha-{alpha}"
    return folder / "eval" / name / "tasks" / "+".join(keys) if keys else folder / "eval" / name


def write_results(results: dict, out: Path) -> tuple[Path, Path]:
    """results.json and results.md in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "results.json", (json.dumps(results, indent=2) + "\n").encode())
    header = f"# Evaluation of {results.get('checkpoint', 'a checkpoint')} ({results.get('suite', '')} suite)\n\n"
    write_atomic(out / "results.md", (header + markdown(results)).encode())
    return out / "results.json", out / "results.md"


def load_checkpoint(checkpoint: str, model: str | None, device: str = "auto") -> Any:
    """A LoadedClip from a `curate train` folder (the architecture read from its train_config.json),
    a weights file or folder with `model` given, or an open_clip pretrained tag with `model`."""
    from curate.models.clip import load_clip

    path = Path(checkpoint)
    if model is None and not path.exists():
        raise ConfigError(f"checkpoint {checkpoint} does not exist: give a `curate train` folder, or a weights "
                          f"file or an open_clip pretrained tag with --model")
    if model is None:
        config = (path if path.is_dir() else path.parent) / "train_config.json"
        if not config.is_file():
            raise ConfigError(f"{checkpoint} is not a `curate train` folder (no train_config.json); "
                              f"give the architecture with --model")
        model = json.loads(config.read_text())["model"]
    weights = str(path.resolve()) if path.exists() else checkpoint
    return load_clip(model, weights, device)
