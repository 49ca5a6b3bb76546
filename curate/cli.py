"""The `curate` command line: thin wrappers over the public API, printed with rich."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from curate.errors import ConfigError, CurateError, polars_message
from curate.report import THUMBNAILS
from curate.train.config import DFN_DEFAULTS

app = typer.Typer(help="Curate image-text pools into CLIP pretraining sets.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
pools_app = typer.Typer(help="Build pools (WebDataset shards + Parquet) to ingest.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: print throughput and memory figures.", no_args_is_help=True)
metadata_app = typer.Typer(help="MetaCLIP metadata: the entry lists metaclip_match matches captions against.",
                           no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"curate {version('curate')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print curate's version and exit")) -> None:
    """Curate image-text pools into CLIP pretraining sets."""


app.add_typer(pools_app, name="pools")
app.add_typer(metadata_app, name="metadata")
app.add_typer(bench_app, name="bench")
console = Console()


_SCAN_DEFAULT = "uid,key,caption,kept,drop_reason,dropped_by"


def _fail(error: Exception) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
    raise typer.Exit(2)


@app.command()
def run(
    pipeline: Path = typer.Argument(..., help="pipeline YAML file (see pipelines/)"),
    executor: Optional[str] = typer.Option(None, help="local or ray (default: the file's executor.kind)"),
    workers: Optional[int] = typer.Option(None, min=1, help="Ray workers (default: all cores)"),
    run_dir: Optional[Path] = typer.Option(None, help="run directory (default: the file's run_dir)"),
    force: bool = typer.Option(False, "--force/--no-force", help="redo the stages whose configuration changed, "
                               "and the stages after them"),
    overwrite: bool = typer.Option(False, "--overwrite/--no-overwrite", help="the run directory holds another "
                                   "pipeline's run: delete its outputs and replace it"),
    quiet: bool = typer.Option(False, "--quiet/--no-quiet", help="no progress bars"),
    report: bool = typer.Option(True, "--report/--no-report", help="write RUN/report.html and the dataset card "
                                "at the end (`curate report RUN` writes them later)"),
    strict: bool = typer.Option(False, "--strict/--no-strict", help="fail (exit 2) when the run ends with a "
                                "warning: nothing curated, or one drop reason taking over 90% of a stage"),
) -> None:
    """Run or resume a pipeline: committed shards are skipped, the rest are (re)done. Ends with the
    run's HTML report and, beside the curated shards, its dataset card."""
    from curate.config import load_pipeline
    from curate.pipeline import run_pipeline
    from curate.progress import Progress, summary_table

    try:
        config = load_pipeline(pipeline, run_dir)
    except CurateError as error:
        _fail(error)
    with _NoticedInterrupts() as interrupts:
        try:
            summary = run_pipeline(config, executor=executor, workers=workers, force=force, overwrite=overwrite,
                                   progress=None if quiet else Progress())
        except CurateError as error:
            _fail(error)
        except KeyboardInterrupt:
            _interrupted(config.run_dir)
        except Exception:
            if interrupts.seen:  # a library turned the KeyboardInterrupt into another error
                _interrupted(config.run_dir)
            raise
    console.print(summary_table(summary))
    for stage in summary["stages"]:
        if stage.get("details"):
            figures = "  ".join(f"{k} {v:,}" if isinstance(v, (int, float)) else f"{k} {v}"
                                for k, v in stage["details"].items())
            console.print(f"{stage['stage_id']}: {figures}", highlight=False)
        for warning in stage["warnings"]:
            console.print(f"[yellow]warning[/] {stage['stage_id']}: {escape(warning)}", highlight=False)
    console.print(f"ingested {summary['ingested']:,}  curated {summary['curated']:,}  "
                  f"dropped {summary['dropped']:,}")
    for name, value in summary["outputs"].items():
        console.print(f"  {name}: {value}", highlight=False)
    for warning in summary.get("warnings", []):
        console.print(f"[yellow]warning[/] {escape(warning)}", highlight=False)
    if report:
        _report(summary["run_dir"])
    if strict and summary.get("warnings"):
        _fail(CurateError(f"--strict: the run ended with {len(summary['warnings'])} warning(s) (above)"))


class _NoticedInterrupts:
    """Notes whether Ctrl-C came, then interrupts as Python does: code in a native library
    (polars, inside a dtype conversion) may swallow the KeyboardInterrupt and raise another error."""

    seen = False

    def __enter__(self) -> "_NoticedInterrupts":
        def notice(signum, frame):
            self.seen = True
            signal.default_int_handler(signum, frame)

        self._previous = signal.signal(signal.SIGINT, notice)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _interrupted(run_dir: Path) -> None:
    """Ctrl-C: say what is kept and how to go on, and exit as an interrupted command does."""
    from curate.status import committed_shards

    try:
        kept = committed_shards(run_dir)
    except CurateError:  # stopped before the run recorded its pipeline
        kept = 0
    Console(stderr=True).print(f"interrupted: {kept:,} shard{'s' * (kept != 1)} committed; rerun the same command "
                               f"to resume", highlight=False)
    raise typer.Exit(130)


def _report(path: str | Path, **options) -> None:
    """Write a run's or a benchmark's report and print where it went."""
    from curate.report import write_report

    with console.status("writing the report"):
        try:
            written = write_report(path, **options)
        except CurateError as error:
            _fail(error)
    if written.card:
        console.print(f"dataset card: {written.card}", highlight=False)
    console.print(f"report: {written.report}", highlight=False)


@app.command()
def report(
    path: Path = typer.Argument(..., help="a run directory (curate run) or a benchmark folder (curate benchmark)"),
    out: Optional[Path] = typer.Option(None, help="the HTML file to write (default: PATH/report.html)"),
    eval_results: list[Path] = typer.Option([], "--eval", help="results.json of `curate eval` on a model trained "
                                            "on this run: adds its table (repeat for more)"),
    thumbnails: int = typer.Option(THUMBNAILS, min=0, help="thumbnails per group: kept samples and each drop reason"),
) -> None:
    """Write a self-contained HTML report (no network: plots and thumbnails embedded) of a finished run:
    the funnel, score histograms with their cuts, kept and dropped samples per drop reason, MetaCLIP
    entry counts before and after balancing, duplicate groups, evaluation tables, configuration,
    timings and versions; and the dataset card (Markdown) beside the curated shards. Given a
    benchmark folder, the report shows its leaderboard and every strategy's funnel."""
    for path_given in eval_results:
        if not path_given.is_file():
            _fail(CurateError(f"--eval {path_given}: no such file (give the results.json `curate eval` wrote)"))
    _report(path, out=out, eval_results=eval_results, thumbnails=thumbnails)


@app.command()
def stages(name: Optional[str] = typer.Argument(None, help="a stage: show its parameters")) -> None:
    """The stages a pipeline file can name; with NAME, that stage's parameters (type, default,
    description), read from the stage's own parameter model."""
    from curate.params import param_rows
    from curate.stage import registered_stages, stage_class

    if name is None:
        table = Table(title="stages (curate stages NAME shows one's parameters)")
        for column in ("stage", "kind", "what it does"):
            table.add_column(column)
        for stage_name, cls in sorted(registered_stages().items()):
            table.add_row(stage_name, _stage_kind(cls), _first_line(cls.__doc__))
        console.print(table)
        return
    try:
        cls = stage_class(name)
    except CurateError as error:
        _fail(error)
    console.print(f"[bold]{name}[/] ({_stage_kind(cls)}): {escape(_first_line(cls.__doc__))}", highlight=False)
    if cls.Params.__doc__:
        console.print(escape(" ".join(cls.Params.__doc__.split())), highlight=False)
    table = Table()
    for column in ("parameter", "type", "default", "description"):
        table.add_column(column)
    for row in param_rows(cls.Params):
        table.add_row(*(escape(value) for value in row.values()))
    console.print(table if cls.Params.model_fields else "no parameters")


def _stage_kind(cls) -> str:
    kind = "global" if cls.kind == "partitioned" else cls.kind
    return f"{kind} filter" if cls.decides and kind != "ingest" else kind


def _first_line(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


@app.command()
def status(run_dir: Path = typer.Argument(..., help="a run directory")) -> None:
    """Per-stage progress of a run: shards done/total, rows kept and dropped."""
    from curate.status import run_state, run_status

    try:
        rows = run_status(run_dir)
        state = run_state(run_dir)
    except CurateError as error:
        _fail(error)
    hint = {"interrupted": ": rerun the same command to resume", "running": ": a curate process is at work"}
    table = Table(title=f"status of {run_dir}")
    for column in ("stage", "shards", "rows in", "dropped"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in rows:
        figures = (f"{row['shards_done']}/{row['shards_total']}", f"{row['alive_in']:,}", f"{row['dropped']:,}")
        table.add_row(row["stage"], *(figures if row["reached"] else ("-", "-", "-")))
    console.print(table)
    console.print(f"{state}{hint.get(state, '')}", highlight=False)


@app.command()
def scan(
    run_dir: Path = typer.Argument(..., help="a run directory"),
    where: Optional[str] = typer.Option(None, help="SQL predicate, e.g. \"caption_words >= 3\""),
    columns: Optional[str] = typer.Option(
        None, help="comma-separated columns (default: uid, key, caption, kept, drop_reason, dropped_by)"),
    limit: int = typer.Option(10, help="rows to print"),
    output: Optional[Path] = typer.Option(None, help="write the (filtered) frame to this Parquet file"),
    partial: bool = typer.Option(False, "--partial/--no-partial", help="scan an unfinished run's completed shards"),
) -> None:
    """Query all sidecars of a run joined on uid (image bytes are not shown)."""
    import polars as pl

    from curate.scan import scan as scan_run

    try:
        frame = scan_run(run_dir, partial=partial)
        if where:
            frame = frame.filter(pl.sql_expr(where))
        if output:
            chosen = [c.strip() for c in columns.split(",")] if columns else None
            (frame.select(chosen) if chosen else frame).sink_parquet(output)
            console.print(f"wrote {output}")
            return
        frame = frame.select([c.strip() for c in (columns or _SCAN_DEFAULT).split(",")])
        with pl.Config(tbl_rows=limit, fmt_str_lengths=60, tbl_width_chars=console.width):
            console.print(frame.head(limit).collect(), highlight=False)
            console.print(f"{frame.select(pl.len()).collect().item():,} rows", highlight=False)
    except CurateError as error:
        _fail(error)
    except pl.exceptions.PolarsError as error:
        _fail(CurateError(polars_message(error)))


@app.command()
def select(
    run_dir: Path = typer.Argument(..., help="a finished run directory"),
    where: str = typer.Option(..., help="SQL predicate over the run's columns, e.g. \"caption_words >= 4\""),
    name: str = typer.Option(..., help="the selection's name: RUN/selections/NAME, and the drop reason"),
    executor: Optional[str] = typer.Option(None, help="local or ray (default: the run's)"),
    force: bool = typer.Option(False, "--force/--no-force", help="replace the selection of that name"),
    quiet: bool = typer.Option(False, "--quiet/--no-quiet", help="no progress bars"),
    report: bool = typer.Option(True, "--report/--no-report", help="write the selection's report.html and "
                                "dataset card"),
) -> None:
    """A new curated export from a finished run's scores, recomputing none: the samples the
    run kept for which the predicate holds, exported to RUN/selections/NAME/ with its report and
    dataset card. A selection that fails leaves nothing behind."""
    from curate.progress import Progress, summary_table
    from curate.selection import select_from_run

    try:
        summary = select_from_run(run_dir, where, name, executor=executor, force=force,
                                  progress=None if quiet else Progress())
    except CurateError as error:
        _fail(error)
    console.print(summary_table(summary))
    console.print(f"selected {summary['curated']:,} of {summary['ingested']:,}")
    for key, value in summary["outputs"].items():
        console.print(f"  {key}: {value}", highlight=False)
    if report:
        _report(summary["run_dir"])


@pools_app.command("build")
def pools_build(
    name: str = typer.Argument(..., help="a pool or evaluation set (see `curate pools list`)"),
    out: Path = typer.Option(..., help="output folder"),
    limit: Optional[int] = typer.Option(None, min=0, help="at most this many items (quick tries, tests)"),
    samples_per_shard: Optional[int] = typer.Option(None, min=1, help="samples per shard (default 1000)"),
    n: Optional[int] = typer.Option(None, min=1, help="synthetic: number of samples (required)"),
    seed: Optional[int] = typer.Option(None, help="synthetic, fashion-mnist: random seed"),
    noise: Optional[float] = typer.Option(None, help="fashion-mnist: share of corrupted captions"),
    start: Optional[int] = typer.Option(None, min=0, help="fashion-mnist: first training index (disjoint slices "
                                        "make a pool and a trusted set)"),
    base_url: Optional[str] = typer.Option(None, help="web: where the files will be served"),
    image_size: Optional[int] = typer.Option(None, min=8, help="synthetic: image side in pixels"),
    duplicate_fraction: Optional[float] = typer.Option(None, help="synthetic: share of planted duplicates"),
    junk_fraction: Optional[float] = typer.Option(None, help="synthetic: share of junk captions"),
    fmt: Optional[str] = typer.Option(None, "--format", help="synthetic: webdataset, parquet or folder"),
    base: Optional[str] = typer.Option(None, help="datacomp-like: the real pairs rows are resampled from: web "
                                       "(the embedded sources) or synthetic"),
    model: Optional[str] = typer.Option(None, help="datacomp-like: the open_clip architecture that embeds them"),
    weights: Optional[str] = typer.Option(None, help="datacomp-like: its local weights (default data/dfn, the "
                                          "DFN; 'none': untrained)"),
    dimensions: Optional[int] = typer.Option(None, min=1, help="datacomp-like: one embedding width for both "
                                             "models (default DataComp's 512 and 768)"),
    repeated_images: Optional[float] = typer.Option(None, min=0, max=1, help="datacomp-like: share of rows that "
                                                    "share their base image's sha256 (default 1)"),
    workers: int = typer.Option(0, help="processes (0: all cores)"),
    force: bool = typer.Option(False, "--force/--no-force", help="build again even if DIR holds this pool"),
) -> None:
    """Build a pool or an evaluation set from packages installed here (nothing is downloaded).
    A pool never holds an evaluation item; a rebuild with the same options is skipped."""
    given = dict(limit=limit, samples_per_shard=samples_per_shard, n=n, seed=seed, noise=noise, start=start,
                 base_url=base_url, image_size=image_size, duplicate_fraction=duplicate_fraction,
                 junk_fraction=junk_fraction, fmt=fmt, base=base, model=model, weights=weights,
                 dimensions=dimensions, repeated_images=repeated_images)
    _build_pool(name, out, workers, force, **{k: v for k, v in given.items() if v is not None})


@pools_app.command("list")
def pools_list() -> None:
    """The pools and evaluation sets `curate pools build` knows."""
    from curate.pools import EVAL_SETS, POOLS, builder

    table = Table(title="pools and evaluation sets")
    for column in ("name", "kind", "what"):
        table.add_column(column)
    for name in [*POOLS, *EVAL_SETS]:
        summary = (builder(name).__doc__ or "").strip().splitlines()[0]
        table.add_row(name, "pool" if name in POOLS else "evaluation", summary)
    console.print(table)


def _build_pool(name: str, out: Path, workers: int, force: bool = False, **settings) -> dict:
    """Build (or find already built) a pool, with a progress bar where the builder reports one."""
    from rich.progress import Progress as RichProgress

    from curate.pools import build, ensure, options

    settings["workers"] = workers or (os.cpu_count() or 1)
    try:
        with RichProgress(console=Console(stderr=True), transient=True) as bars:
            if "progress" in options(name):
                task = bars.add_task(f"building {name}", total=settings.get("n"))
                settings["progress"] = lambda k: bars.advance(task, k)
            info, built = (build(name, out, **settings), True) if force else ensure(name, out, **settings)
    except CurateError as error:
        _fail(error)
    refused = info.get("refused_eval_items")
    state = "built" if built else "already built:"
    console.print(f"{state} {name}: {info['n']:,} samples in {len(info['shards'])} shards in {out}"
                  + (f" ({refused} evaluation items refused)" if refused else ""))
    return info


@metadata_app.command("build")
def metadata_build(
    out: Path = typer.Option(..., "--out", help="where to write metadata.json"),
    wordnet: bool = typer.Option(True, help="WordNet 3.0 lemmas (apt wordnet-base)"),
    unigrams: bool = typer.Option(True, help="English unigrams from wordfreq"),
    min_frequency: float = typer.Option(2.5e-8, min=0, help="least wordfreq frequency of a unigram (2.5e-8: about "
                                        "100 uses in English Wikipedia, MetaCLIP's cut)"),
    extra: list[Path] = typer.Option([], "--extra", help="more entries: a JSON list or one entry per line "
                                     "(titles, your own list); repeatable"),
) -> None:
    """Write a MetaCLIP metadata.json: WordNet lemmas, then wordfreq unigrams, then each --extra
    list, without repeats, in that order (entry id = position)."""
    from curate.metaclip.metadata import build_metadata, write_metadata

    try:
        entries = build_metadata(wordnet=wordnet, min_frequency=min_frequency if unigrams else None, extra=extra)
    except CurateError as error:
        _fail(error)
    write_metadata(out, entries)
    console.print(f"wrote {len(entries):,} entries to {out}")


@app.command()
def train(
    data: list[str] = typer.Option(..., help="WebDataset shards: a folder, a glob or files (repeat for more)"),
    out: Path = typer.Option(..., help="run folder: checkpoints, metrics.jsonl, final weights"),
    model: str = typer.Option("curate-tiny-vit", help="open_clip architecture (ViT-B-32, ViTamin-S, curate-tiny-vit, ...)"),
    samples_seen: int = typer.Option(..., min=1, help="training samples, whatever the size of the data"),
    batch_size: int = typer.Option(256, min=2, help="samples per optimiser step"),
    accumulate: int = typer.Option(1, min=1, help="micro-batches per step (gradient accumulation)"),
    lr: float = typer.Option(5e-4, min=0, help="peak learning rate"),
    weight_decay: float = typer.Option(0.2, min=0),
    warmup: int = typer.Option(100, min=0, help="warmup steps before the cosine decay"),
    loss: str = typer.Option("clip", help="clip (contrastive) or siglip (sigmoid)"),
    seed: int = typer.Option(0, min=0, help="seed of the shard draws and sample order"),
    init: Optional[str] = typer.Option(None, help="starting weights: an absolute path or a pretrained tag"),
    checkpoint_every: int = typer.Option(100, min=1, help="steps between checkpoints"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    decode_threads: int = typer.Option(2, min=1, help="threads decoding images ahead of the model"),
    stop_after_steps: Optional[int] = typer.Option(None, min=1, help="stop after this many steps in all; "
                                                   "rerun the same command to continue"),
    ray_workers: int = typer.Option(0, min=0, help="train on this many Ray Train workers (one GPU each "
                                    "on a GPU cluster); 0: this process alone, or torchrun's processes"),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster to join (auto, ray://host:port); "
                                              "default: a local instance"),
) -> None:
    """Contrastive training on WebDataset shards. Rerunning the same command continues from the
    last checkpoint and ends with the same weights as an uninterrupted run. Several GPUs:
    `torchrun --nproc_per_node N -m curate train ...`; several nodes: --ray-workers N with --out
    on shared storage."""
    config = _train_config(data=data, model=model, init=init, samples_seen=samples_seen, batch_size=batch_size,
                           accumulate=accumulate, lr=lr, weight_decay=weight_decay, warmup=warmup, loss=loss,
                           seed=seed, checkpoint_every=checkpoint_every)
    if ray_workers:
        _train_on_ray(config, out, ray_workers, device, decode_threads, stop_after_steps, ray_address)
    else:
        _train_here(config, out, device, decode_threads, stop_after_steps)


@app.command("eval")
def eval_(
    checkpoint: str = typer.Argument(..., help="a `curate train` folder, a weights file or folder (with --model), "
                                     "or an open_clip pretrained tag (with --model, online)"),
    suite: str = typer.Option("offline", help="offline: the embedded held-out sets (built on demand in data/eval); "
                              "datacomp: DataComp's 38 tasks, in clip_benchmark's WebDataset layout under --data"),
    data: Optional[Path] = typer.Option(None, help="folder holding one folder per task, only read (offline default: "
                                        "data/eval, where missing sets are built)"),
    tasks: Optional[str] = typer.Option(None, help="comma-separated task keys to run (default: the whole suite); "
                                        "their results go to SUITE/tasks/KEYS, beside the whole suite's"),
    model: Optional[str] = typer.Option(None, help="open_clip architecture (default: from the train folder)"),
    out: Optional[Path] = typer.Option(None, help="where results.json and results.md go "
                                       "(default: CHECKPOINT/eval/SUITE, or eval/SUITE for a file or tag)"),
    alpha: str = typer.Option("white", help="transparent pixels: white (as curate scores and trains), black, or "
                              "drop (the alpha channel dropped, as webdataset's decode(\"pil\") does for "
                              "clip_benchmark and DataComp's evaluation: their numbers)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    decode_threads: int = typer.Option(2, min=1, help="threads decoding images ahead of the model"),
) -> None:
    """Evaluate a checkpoint on a task suite: zero-shot classification (prompt ensembles from the
    files beside each set) and image-text retrieval; per-task metrics, each task's main metric
    as DataComp names it, and their unweighted average."""
    from curate.eval.suite import evaluate_suite, load_checkpoint, markdown, ready_tasks, results_dir, write_results
    from curate.progress import Progress

    keys = [key.strip() for key in tasks.split(",")] if tasks else None
    try:
        if alpha not in ("white", "black", "drop"):
            raise CurateError(f"--alpha {alpha!r}: choose white, black or drop")
        clip = load_checkpoint(checkpoint, model, device)  # a bad checkpoint fails before any set is built
        chosen, root = ready_tasks(suite, keys, data, log=lambda line: console.print(line, highlight=False))
        results = {"checkpoint": checkpoint,
                   **evaluate_suite(clip, suite, chosen, root, Progress(), decode_threads, alpha)}
        written = write_results(results, out or results_dir(checkpoint, suite, keys, alpha))
    except CurateError as error:
        _fail(error)
    console.print(markdown(results), highlight=False)
    console.print(f"results: {written[0]}  {written[1]}", highlight=False)


@app.command()
def benchmark(
    bench: Path = typer.Argument(..., help="benchmark file (see pipelines/benchmark-embedded.yaml)"),
    out: Optional[Path] = typer.Option(None, help="output folder (default: the file's `out`)"),
    quiet: bool = typer.Option(False, "--quiet/--no-quiet", help="no progress bars"),
) -> None:
    """Compare curation strategies at equal compute, the way DataComp does: curate one pool with
    every strategy, train the same model on each subset with the same samples seen for every
    seed, evaluate on a suite, and write a leaderboard (Markdown, JSON, plot). Rerunning resumes."""
    from curate.benchmark.config import load_benchmark
    from curate.benchmark.leaderboard import markdown as leaderboard_markdown
    from curate.benchmark.runner import run_benchmark
    from curate.progress import NullProgress, Progress

    try:
        config = load_benchmark(bench, out)
        board = run_benchmark(config, NullProgress() if quiet else Progress(),
                              log=lambda line: console.print(line, highlight=False))
    except CurateError as error:
        _fail(error)
    console.print(leaderboard_markdown(board), highlight=False)
    console.print("leaderboard: " + "  ".join(board["outputs"].values()), highlight=False)
    _report(config.out)


@app.command("train-dfn")
def train_dfn(
    data: list[str] = typer.Option(..., help="trusted high-quality shards: a folder, a glob or files "
                                   "(here: the tuxpaint pool)"),
    out: Path = typer.Option(..., help="the filter's run folder; rerun to reuse or continue it"),
    model: str = typer.Option(DFN_DEFAULTS["model"], help="open_clip architecture of the filter"),
    samples_seen: int = typer.Option(DFN_DEFAULTS["samples_seen"], min=1, help="training samples"),
    batch_size: int = typer.Option(DFN_DEFAULTS["batch_size"], min=2, help="samples per optimiser step"),
    lr: float = typer.Option(DFN_DEFAULTS["lr"], min=0, help="peak learning rate"),
    warmup: int = typer.Option(DFN_DEFAULTS["warmup"], min=0, help="warmup steps before the cosine decay"),
    seed: int = typer.Option(0, min=0, help="seed of the shard draws and sample order"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    decode_threads: int = typer.Option(2, min=1, help="threads decoding images ahead of the model"),
) -> None:
    """Train a data-filtering network (DFN): a CLIP trained on trusted data only, whose
    image-text similarity then scores a pool (clip_score with `name: dfn` and `weights: OUT`
    writes dfn_score). A folder already trained with the same settings is reused as it is."""
    config = _train_config(**{**DFN_DEFAULTS, "data": data, "model": model, "samples_seen": samples_seen,
                              "batch_size": batch_size, "lr": lr, "warmup": warmup, "seed": seed})
    _train_here(config, out, device, decode_threads, None)
    console.print(f"score a pool with it (dfn_score):\n  - stage: clip_score\n"
                  f"    params: {{name: dfn, model: {model}, weights: {out}}}", highlight=False, soft_wrap=True)


def _train_config(**settings):
    """The training settings, checked, with what the run will do other than asked said first."""
    from pydantic import ValidationError

    from curate.params import explain
    from curate.train.config import TrainConfig

    try:
        config = TrainConfig(**settings)
    except ValidationError as error:
        _fail(CurateError(f"invalid training settings:\n{explain(error, TrainConfig)}"))
    if os.environ.get("RANK", "0") == "0":
        for note in config.notes():
            console.print(f"[yellow]note[/] {note}", highlight=False)
    return config


def _train_here(config, out: Path, device: str, decode_threads: int, stop_after: Optional[int]) -> None:
    """Train in this process (one of torchrun's, maybe) with a progress bar."""
    from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

    from curate.train.loop import train as train_loop

    main = os.environ.get("RANK", "0") == "0"  # under torchrun, one process reports
    columns = (TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with RichProgress(*columns, console=Console(stderr=True), disable=not main) as bars:
        task = bars.add_task("train", total=config.steps, rate="")

        def advance(metrics: dict) -> None:
            bars.update(task, completed=metrics["step"],
                        rate=f"{metrics['samples_per_s']:,.0f} samples/s  loss {metrics['loss']:.3f}")

        try:
            last = train_loop(config, out, device, decode_threads, stop_after, advance)
        except CurateError as error:
            _fail(error)
    if main and last.get("already_complete"):
        console.print(f"already complete: {out} holds the {config.steps:,} steps of this run", highlight=False)
    elif main:
        console.print(f"step {last['step']} of {config.steps}; metrics: {out / 'metrics.jsonl'}", highlight=False)
    if main and last["step"] == config.steps:
        console.print(f"weights: {out / 'open_clip_pytorch_model.bin'}", highlight=False)


def _train_on_ray(config, out: Path, workers: int, device: str, decode_threads: int,
                  stop_after: Optional[int], address: Optional[str]) -> None:
    from curate.train.ray_train import train_on_ray

    try:
        last = train_on_ray(config, out, workers, device, decode_threads, stop_after, address)
    except CurateError as error:
        _fail(error)
    console.print(f"step {last['step']} of {config.steps} on {workers} Ray Train workers; "
                  f"metrics: {out / 'metrics.jsonl'}", highlight=False)


@bench_app.command("ingest")
def bench_ingest(
    n: int = typer.Option(100_000, min=1, help="pool size"),
    executors: str = typer.Option("local,ray", help="comma-separated executors to time"),
    workers: int = typer.Option(0, help="Ray workers (0: all cores)"),
    work_dir: Path = typer.Option(Path("data/bench"), help="where the pool and runs go"),
    samples_per_shard: int = typer.Option(1000, min=1, help="pool and export shard size"),
    fmt: str = typer.Option("webdataset", "--format", help="webdataset: tars (ingest_webdataset); parquet: "
                            "tables of image bytes (ingest_table)"),
) -> None:
    """Time ingest -> select -> export of a generated pool of small JPEGs on each executor."""
    from curate.bench.ingest import bench_pipeline, default_workers, time_run

    pool = work_dir / (f"pool-{n}" if fmt == "webdataset" else f"pool-{fmt}-{n}")
    _build_pool("synthetic", pool, 0, n=n, samples_per_shard=samples_per_shard, fmt=fmt)
    table = Table(title=f"ingest ({fmt}) -> select -> export, {n:,} JPEGs 64x64")
    for column in ("executor", "workers", "samples/s", "samples/s/core", "seconds",
                   "driver peak MiB", "driver+workers peak MiB"):
        table.add_column(column, justify="right")
    ingest_rates = []
    for kind in executors.split(","):
        run_dir = work_dir / (f"run-{kind}-{n}" if fmt == "webdataset" else f"run-{kind}-{fmt}-{n}")
        config = bench_pipeline(pool, run_dir, samples_per_shard, fmt)
        try:
            result = time_run(config, kind.strip(), workers or default_workers())
        except CurateError as error:
            _fail(error)
        ingest_rates.append(f"{kind}: {result.samples / result.ingest_seconds / result.workers:,.0f}")
        table.add_row(result.executor, str(result.workers), f"{result.samples_per_second:,.0f}",
                      f"{result.per_core:,.0f}", f"{result.seconds:.1f}",
                      f"{result.driver_peak_mib:,.0f}", f"{result.tree_peak_mib:,.0f}")
    console.print(table)
    console.print(f"the ingest stage alone, samples/s per core: {', '.join(ingest_rates)}")


@bench_app.command("report")
def bench_report(
    n: int = typer.Option(1_000_000, min=1, help="pool size"),
    work_dir: Path = typer.Option(Path("data/bench"), help="where the pool and the run go"),
    metadata: Path = typer.Option(Path("data/metaclip/metadata.json"), help="MetaCLIP metadata (curate metadata build)"),
    executor: str = typer.Option("ray", help="executor of the run (the report itself runs here)"),
    samples_per_shard: int = typer.Option(10_000, min=1, help="pool and export shard size"),
) -> None:
    """Time the report of a large run (built first, or resumed): its seconds, peak memory and size."""
    from curate.bench.report import report_pipeline, time_report
    from curate.pipeline import run_pipeline
    from curate.progress import Progress

    if not metadata.is_file():
        _fail(CurateError(f"{metadata} is missing: build it with `curate metadata build --out {metadata}`"))
    pool = work_dir / f"pool-{n}"
    _build_pool("synthetic", pool, 0, n=n, samples_per_shard=samples_per_shard)
    config = report_pipeline(pool, work_dir / f"run-report-{n}", metadata, samples_per_shard)
    try:
        run_pipeline(config, executor=executor, progress=Progress())
        result = time_report(config.run_dir)
    except CurateError as error:
        _fail(error)
    console.print(f"report of {result.samples:,} samples: {result.seconds:.1f} s, peak RSS {result.peak_mib:,.0f} MiB, "
                  f"{result.report_bytes / 2**20:.2f} MiB (card {result.card_bytes / 1024:.1f} KiB)", highlight=False)


@bench_app.command("score")
def bench_score(
    models: str = typer.Option("curate-tiny-vit,ViT-B-32", help="comma-separated open_clip architectures"),
    n: int = typer.Option(2048, min=1, help="images to score end to end"),
    image_size: int = typer.Option(256, min=8, help="side of the generated JPEGs"),
    batch_size: int = typer.Option(64, min=1, help="model batch size"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    decode_threads: int = typer.Option(0, min=0, help="image decoding threads of the stage (0: all cores)"),
    work_dir: Path = typer.Option(Path("data/bench"), help="where the pool and runs go"),
) -> None:
    """Images/s of clip_score end to end from shards (decode + preprocess + model + write) next
    to the same model alone on preprocessed tensors, in the same run. Weights are random: speed
    does not depend on them."""
    from curate.bench.score import score_pipeline, time_end_to_end, time_model_alone
    from curate.models.clip import resolve_device

    device = resolve_device(device)
    pool = work_dir / f"pool-score-{n}-{image_size}px"
    _build_pool("synthetic", pool, 0, n=n, image_size=image_size, samples_per_shard=min(n, 1024))
    table = Table(title=f"clip_score on {n:,} JPEGs {image_size}x{image_size}, {device}, batch {batch_size}")
    for column in ("model", "images", "end to end img/s", "model alone img/s", "end to end / model"):
        table.add_column(column, justify="right")
    for model in (m.strip() for m in models.split(",")):
        config = score_pipeline(pool, work_dir / f"run-score-{model}", model, batch_size, device,
                                decode_threads or (os.cpu_count() or 1))
        try:
            images, seconds = time_end_to_end(config)
            alone = time_model_alone(model, device, batch_size, pool, images)
        except CurateError as error:
            _fail(error)
        end_to_end = images / seconds
        table.add_row(model, f"{images:,}", f"{end_to_end:,.0f}", f"{alone:,.0f}", f"{end_to_end / alone:.0%}")
    console.print(table)


@bench_app.command("clip-benchmark")
def bench_clip_benchmark(
    checkpoint: Path = typer.Argument(..., help="a finished `curate train` or `curate train-dfn` folder"),
    data: Path = typer.Option(Path("data/eval"), help="the offline evaluation sets (curate pools build)"),
    tasks: str = typer.Option("fashion-mnist-test,mnist-5k,flags-eval,tuxpaint-retrieval",
                              help="comma-separated offline tasks"),
) -> None:
    """The offline sets through clip_benchmark's own command line and through `curate eval`, on the
    same model: each task's main metric by both (curate with alpha dropped, as clip_benchmark
    decodes, and on white, as curate scores). Needs the dev dependency clip-benchmark."""
    from curate.bench.clip_benchmark import compare

    keys = [key.strip() for key in tasks.split(",")]
    try:
        with console.status("clip_benchmark and curate eval on every task"):
            rows = compare(checkpoint, data, keys)
    except CurateError as error:
        _fail(error)
    table = Table(title=f"clip_benchmark vs curate eval, {checkpoint}")
    for column in ("task", "metric", "clip_benchmark", "curate --alpha drop", "curate --alpha white"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for row in rows:
        table.add_row(row["task"], row["metric"], f"{row['clip_benchmark']:.4f}", f"{row['curate_drop']:.4f}",
                      f"{row['curate_white']:.4f}")
    console.print(table)


@bench_app.command("metaclip")
def bench_metaclip(
    entries: int = typer.Option(500_000, min=1, help="metadata entries"),
    match_captions: int = typer.Option(200_000, min=1, help="captions for the one-core matcher comparison"),
    n: int = typer.Option(1_000_000, min=1, help="captions to match and balance end to end"),
    t: float = typer.Option(50, min=0, help="balancing threshold (MetaCLIP's 20,000 for 400M, scaled to 1M)"),
    executors: str = typer.Option("local,ray", help="comma-separated executors for the end-to-end runs"),
    workers: int = typer.Option(0, help="Ray workers (0: all cores); Ray also runs with 1 for the speed-up"),
    work_dir: Path = typer.Option(Path("data/bench"), help="where the metadata, pool and runs go"),
) -> None:
    """MetaCLIP matching on one core, our matcher next to a plain pyahocorasick loop with the
    reference semantics (same captions, same process); then ingest -> match -> balance of a
    generated caption pool on each executor."""
    import json

    from curate.bench import metaclip as bench

    metadata = work_dir / f"metaclip-metadata-{entries}.json"
    if not metadata.exists():
        metadata.parent.mkdir(parents=True, exist_ok=True)
        metadata.write_text(json.dumps(bench.bench_metadata(entries), ensure_ascii=False))
    pool = work_dir / f"metaclip-captions-{n}"
    if not pool.exists():
        bench.write_caption_pool(bench.bench_captions(n), pool, per_file=50_000)
    sample = work_dir / f"metaclip-match-{match_captions}.parquet"
    if not sample.exists():
        bench.write_caption_table(bench.bench_captions(match_captions, seed=1), sample)
    timing = bench.time_matchers_on_one_core(metadata, sample)
    table = Table(title=f"matching {timing['captions']:,} captions against {timing['entries']:,} entries, one core")
    for column in ("matcher", "captions/s/core", "vs pyahocorasick", "same ids"):
        table.add_column(column, justify="right")
    table.add_row("pyahocorasick loop", f"{timing['reference_per_s']:,.0f}", "1.00x", "")
    table.add_row("curate EntryMatcher", f"{timing['ours_per_s']:,.0f}",
                  f"{timing['ours_per_s'] / timing['reference_per_s']:.2f}x", str(timing["same_ids"]))
    console.print(table)
    console.print(f"{timing['matches_per_caption']:.1f} matched entries per caption; "
                  f"entry table built in {timing['ours_build_s']:.1f}s", highlight=False)

    table = Table(title=f"ingest -> metaclip_match -> metaclip_balance, {n:,} captions, t={t:g}")
    for column in ("executor", "workers", "ingest s", "match s", "match captions/s", "balance s", "kept"):
        table.add_column(column, justify="right")
    all_cores = workers or (os.cpu_count() or 1)
    for kind in (k.strip() for k in executors.split(",")):
        for count in [1] if kind == "local" else sorted({1, all_cores}):
            try:
                run = bench.time_balance_run(pool, metadata, work_dir / f"run-metaclip-{kind}-{count}", t, kind, count)
            except CurateError as error:
                _fail(error)
            seconds = run["seconds"]
            table.add_row(kind, str(count), f"{seconds['ingest_table']:.1f}", f"{seconds['metaclip_match']:.1f}",
                          f"{run['matched'] / seconds['metaclip_match']:,.0f}", f"{seconds['metaclip_balance']:.1f}",
                          f"{run['kept']:,}")
    console.print(table)


@bench_app.command("dedup")
def bench_dedup(
    n: int = typer.Option(1_000_000, min=2, help="embeddings (512-d, a fifth of them planted copies)"),
    clusters: int = typer.Option(1000, min=1, help="k of semdedup's k-means"),
    methods: str = typer.Option("semdedup,dedup_near", help="comma-separated stages to run"),
    work_dir: Path = typer.Option(Path("data/bench"), help="where the embeddings and results go"),
) -> None:
    """Deduplication of generated 512-d embeddings with planted copies (re-encoded, resized,
    colour-jittered, cropped): seconds per phase, peak memory and recall of each method at its
    default threshold, each in a fresh process."""
    from curate.bench import dedup as bench

    pool = work_dir / f"dedup-embeddings-{n}"
    if not (pool / bench.TRUTH).exists():
        with console.status(f"writing {n:,} embeddings to {pool}"):
            bench.write_pool(pool, n)
    results = []
    for method in (m.strip() for m in methods.split(",")):
        params = {"clusters": clusters} if method == "semdedup" else {}
        with console.status(f"{method} on {n:,} embeddings"):
            results.append(bench.run_method(method, pool, work_dir / f"dedup-{method}-{n}", params))
    rows = {"seconds": [f"{r['seconds']:.1f}" for r in results]}
    for phase in dict.fromkeys(name for r in results for name in r["phases"]):
        rows[f"  {phase} s"] = [f"{r['phases'][phase]:.1f}" if phase in r["phases"] else "" for r in results]
    rows["peak memory"] = [f"{r['peak_rss_bytes'] / 2**30:.2f} GiB" for r in results]
    rows["removed"] = [f"{r['details']['removed']:,}" for r in results]
    for key in ("precision", "recall", *(f"recall_{kind}" for kind in bench.COPY_KINDS)):
        rows[key.replace("_", " of ")] = [f"{r[key]:.4f}" for r in results]
    console.print(_figures_table(f"deduplication of {n:,} planted 512-d embeddings",
                                 [r["method"] for r in results], rows))


@bench_app.command("datacomp")
def bench_datacomp(
    n: int = typer.Option(4_000_000, min=1, help="rows of the datacomp-like pool"),
    base: str = typer.Option("web", help="the real pairs the pool is resampled from: web or synthetic"),
    weights: str = typer.Option("data/dfn", help="the CLIP that embeds them ('none': untrained)"),
    clusters: int = typer.Option(1000, min=1, help="k of the image-based filter's k-means"),
    train_fraction: float = typer.Option(0.1, min=0.0, max=1.0, help="share of the survivors k-means trains on"),
    work_dir: Path = typer.Option(Path("data/bench"), help="where the pool and the runs go"),
) -> None:
    """Metadata-only curation of a pool in DataComp's layout (ingest -> basic -> L/14 top 30% ->
    image-based -> subset) against the same filters as one plain polars script, each in a fresh
    process on one thread: seconds, rows/s per core per stage, peak memory, same uids or not."""
    from curate.bench import datacomp as bench

    pool = work_dir / f"datacomp-like-{n}"
    _build_pool("datacomp-like", pool, 0, n=n, base=base, weights=weights)
    clustering = bench.Clustering(clusters=clusters, train_fraction=train_fraction)
    out = work_dir / f"datacomp-{n}"
    with console.status("curate"):
        curate = bench.run_side("curate", pool, out, clustering)
    with console.status("plain polars"):
        plain = bench.run_side("polars", pool, out, clustering)
    rows = {"seconds": [f"{curate['seconds']:.1f}", f"{plain['seconds']:.1f}"],
            "rows/s per core": [f"{n / curate['seconds']:,.0f}", f"{n / plain['seconds']:,.0f}"],
            **{f"  {stage} rows/s": [f"{n / seconds:,.0f}", ""] for stage, seconds in curate["stages"].items()},
            "peak memory MiB": [f"{curate['peak_mib']:,.0f}", f"{plain['peak_mib']:,.0f}"],
            "curated": [f"{curate['curated']:,}", f"{plain['curated']:,}"]}
    console.print(_figures_table(f"metadata-only curation of {n:,} DataComp-format rows, one thread",
                                 ["curate", "plain polars"], rows))
    same = bench.same_uids(curate, plain)
    console.print(f"curate / plain polars: {plain['seconds'] / curate['seconds']:.2f}x the speed; "
                  f"same uids: {'yes' if same else 'NO'}")
    if not same:
        raise typer.Exit(1)


@bench_app.command("faults")
def bench_faults(
    trials: int = typer.Option(20, min=1, help="trials, each with one to three faults"),
    n: int = typer.Option(2000, min=10, help="samples in the generated pool"),
    samples_per_shard: int = typer.Option(100, min=1, help="pool and export shard size"),
    executors: str = typer.Option("local,ray", help="comma-separated executors the trials cycle over"),
    workers: int = typer.Option(2, min=1, help="Ray workers"),
    seed: int = typer.Option(0, help="seed of the fault moments and targets"),
    work_dir: Path = typer.Option(Path("data/bench/faults"), help="where the pool and the runs go"),
) -> None:
    """Kill the driver or a busy Ray worker (SIGKILL) at random moments of a full pipeline
    (ingest, scorers, a model, filters, dedup, top fraction, MetaCLIP, export), resume, and check
    every trial ends byte-identical to an uninterrupted run with each uid curated or dropped once."""
    from rich.progress import track

    from curate.bench import faults as bench

    kinds = [kind.strip() for kind in executors.split(",")]
    pool = work_dir / f"pool-{n}"
    _build_pool("synthetic", pool, 0, n=n, samples_per_shard=samples_per_shard)
    with console.status("uninterrupted reference runs"):
        setup = bench.prepare(work_dir, pool, kinds, workers, samples_per_shard)
    planned = bench.plan_trials(trials, kinds, setup.durations, seed)
    results = [bench.run_trial(trial, setup.pipeline, work_dir / "trial", workers, setup.reference, setup.stage_ids)
               for trial in track(planned, description="trials", console=Console(stderr=True))]
    console.print(bench.results_table(results, setup.durations))
    console.print(bench.summary_line(results), highlight=False)
    if not all(trial.ok for trial in results):
        raise typer.Exit(1)


@bench_app.command("scale")
def bench_scale(
    sizes: str = typer.Option("10000,100000,1000000", help="comma-separated pool sizes"),
    workers: int = typer.Option(0, min=0, help="Ray workers (0: all cores)"),
    samples_per_shard: int = typer.Option(2000, min=1, help="pool shard size (the same for every size)"),
    quickstart: Path = typer.Option(Path("pipelines/quickstart.yaml"), help="the pipeline to scale"),
    work_dir: Path = typer.Option(Path("data/bench"), help="where the pools and runs go"),
    pool_kind: str = typer.Option("synthetic", "--pool", help="synthetic (images, the quickstart pipeline) or "
                                  "datacomp-like (metadata only, the global stages)"),
    dimensions: int = typer.Option(64, min=1, help="datacomp-like: embedding width (DataComp's: 512 and 768)"),
) -> None:
    """The quickstart pipeline (its tiny DFN scoring the images) on generated pools of each
    size on the Ray executor: seconds per stage, peak memory of the driver and of the largest
    worker, and the cost per sample against the smallest pool's. With --pool datacomp-like:
    metadata-only pools through ingest, basic filter, exact and semantic deduplication, a top
    fraction, MetaCLIP balancing and the subset, with each stage's peaks."""
    from curate.bench.ingest import default_workers
    from curate.bench.scale import scale_pipeline, time_scale_run

    if pool_kind == "datacomp-like":
        return _bench_scale_metadata([int(size) for size in sizes.split(",")], workers or default_workers(),
                                     dimensions, work_dir)
    if pool_kind != "synthetic":
        _fail(ConfigError(f"--pool must be synthetic or datacomp-like, not {pool_kind!r}"))
    results = []
    for n in (int(size) for size in sizes.split(",")):
        pool = work_dir / f"pool-{n}-{samples_per_shard}"
        _build_pool("synthetic", pool, 0, n=n, samples_per_shard=samples_per_shard)
        try:
            config = scale_pipeline(quickstart, pool, work_dir / f"run-scale-{n}")
            with console.status(f"quickstart pipeline on {n:,} samples"):
                results.append(time_scale_run(config, workers or default_workers()))
        except CurateError as error:
            _fail(error)
        console.print(_scale_tables(results))  # after each size, so a later failure loses nothing


def _bench_scale_metadata(sizes: list[int], workers: int, dimensions: int, work_dir: Path) -> None:
    from curate.bench.scale import time_metadata_run_in_process
    from curate.metaclip.metadata import build_metadata, write_metadata

    metadata = work_dir / "metadata.json"
    if not metadata.exists():
        write_metadata(metadata, build_metadata())
    results = []
    for n in sizes:
        pool = work_dir / f"datacomp-like-{n}-{dimensions}d"
        _build_pool("datacomp-like", pool, 0, n=n, base="web", weights="none", dimensions=dimensions,
                    repeated_images=0.1)
        with console.status(f"metadata-only pipeline on {n:,} rows"):
            results.append(time_metadata_run_in_process(pool, work_dir / f"run-scale-metadata-{n}", metadata, n,
                                                        workers))
        console.print(_metadata_scale_table(results))


def _metadata_scale_table(results) -> Table:
    first, _ = results[0]
    rows = {"curated": [f"{r.curated:,}" for r, _ in results], "seconds": [f"{r.seconds:,.1f}" for r, _ in results],
            "core ms / sample": [f"{r.core_ms_per_sample:.4f}" for r, _ in results],
            "vs smallest pool": [f"{r.core_ms_per_sample / first.core_ms_per_sample:.2f}x" for r, _ in results],
            "driver peak MiB": [f"{r.driver_peak_mib:,.0f}" for r, _ in results],
            "largest worker peak MiB": [f"{r.worker_peak_mib:,.0f}" for r, _ in results]}
    for stage in first.stage_seconds:
        rows[f"{stage}: s"] = [f"{r.stage_seconds[stage]:,.1f}" for r, _ in results]
        rows[f"{stage}: core us / sample"] = [f"{1e6 * r.stage_seconds[stage] * r.workers / r.samples:,.2f}"
                                              for r, _ in results]
        rows[f"{stage}: worker / driver MiB"] = [f"{p.get(stage, (0, 0))[0] / 2**20:,.0f} / "
                                                 f"{p.get(stage, (0, 0))[1] / 2**20:,.0f}" for _, p in results]
    return _figures_table(f"metadata-only global stages on Ray, {first.workers} workers",
                          [f"{r.samples:,}" for r, _ in results], rows)


def _scale_tables(results) -> Table:
    base = results[0].core_ms_per_sample
    rows = {"curated": [f"{r.curated:,}" for r in results], "seconds": [f"{r.seconds:,.1f}" for r in results],
            "core ms / sample": [f"{r.core_ms_per_sample:.3f}" for r in results],
            "vs smallest pool": [f"{r.core_ms_per_sample / base:.2f}x" for r in results],
            "driver peak MiB": [f"{r.driver_peak_mib:,.0f}" for r in results],
            "largest worker peak MiB": [f"{r.worker_peak_mib:,.0f}" for r in results],
            "all processes peak MiB": [f"{r.tree_peak_mib:,.0f}" for r in results]}
    for stage in results[0].stage_seconds:
        rows[f"  {stage} s"] = [f"{r.stage_seconds[stage]:,.1f}" for r in results]
    return _figures_table(f"quickstart pipeline on Ray, {results[0].workers} workers",
                          [f"{r.samples:,}" for r in results], rows)


def _figures_table(title: str, columns: list[str], rows: dict[str, list[str]]) -> Table:
    """One column per run (right-aligned), one row per figure."""
    table = Table(title=title)
    table.add_column("")
    for column in columns:
        table.add_column(column, justify="right")
    for name, values in rows.items():
        table.add_row(name, *values)
    return table


@bench_app.command("train")
def bench_train(
    model: str = typer.Option("curate-tiny-vit", help="open_clip architecture (ViT-B-32 on a GPU)"),
    batch_size: int = typer.Option(256, min=2, help="samples per step, for both trainers"),
    steps: int = typer.Option(30, min=2, help="steps each trainer runs"),
    skip: int = typer.Option(5, min=0, help="first steps left out of the figures (warm-up)"),
    image_size: int = typer.Option(64, min=8, help="side of the generated JPEGs (256 for a 224px model)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    workers: int = typer.Option(0, help="our decoding threads, open_clip's loader processes; 0: all cores"),
    work_dir: Path = typer.Option(Path("data/bench"), help="where the shards and runs go"),
) -> None:
    """Training samples/s of `curate train` and of open_clip's own trainer on the same
    generated shards, model, batch size, precision (bf16 on a GPU) and decoding workers, each
    in a fresh process; prints the ratio."""
    from curate.bench import train as bench
    from curate.models.clip import resolve_device

    n = batch_size * steps
    pool = work_dir / f"train-pool-{n}-{image_size}"
    info = _build_pool("synthetic", pool, 0, n=n, image_size=image_size, samples_per_shard=1000)
    settings = bench.TrainBench(shards=[pool / f"{shard}.tar" for shard in info["shards"]], model=model,
                                batch_size=batch_size, steps=steps, skip=skip, device=resolve_device(device),
                                workers=workers or (os.cpu_count() or 1))
    rates = {}
    try:
        for name, run in (("curate train", bench.run_curate), ("open_clip_train", bench.run_open_clip)):
            with console.status(f"{name}: {model}, {steps} steps of {batch_size}"):
                rates[name] = run(settings, work_dir / f"train-{name.split()[0]}")
    except CurateError as error:
        _fail(error)
    console.print(f"training {model} on {n:,} JPEGs {image_size}x{image_size}, batch {batch_size}, "
                  f"{settings.device}, {settings.workers} decoding workers, steps {skip + 1}-{steps} timed")
    table = Table()
    for column in ("trainer", "samples/s"):
        table.add_column(column, justify="right")
    for name, rate in rates.items():
        table.add_row(name, f"{rate:,.1f}")
    console.print(table)
    console.print(f"ratio curate / open_clip: {rates['curate train'] / rates['open_clip_train']:.2f}")


@bench_app.command("download")
def bench_download(
    n: int = typer.Option(20_000, min=1, help="images to serve and download"),
    workers: int = typer.Option(0, help="processes for img2dataset and Ray workers (0: all cores)"),
    threads: int = typer.Option(32, min=1, help="download threads per process"),
    executors: str = typer.Option("local,ray", help="comma-separated executors to time curate on"),
    work_dir: Path = typer.Option(Path("data/bench"), help="where the pool and outputs go"),
) -> None:
    """Serve a generated pool on 127.0.0.1 and download it with curate's URL stage and with
    plain img2dataset on the same URL list; print samples/s of each and the ratio."""
    from curate.bench.download import time_curate, time_img2dataset, write_url_list
    from curate.io.serve import serve_folder

    workers = workers or (os.cpu_count() or 1)
    pool = work_dir / f"pool-folder-{n}"
    _build_pool("synthetic", pool, 0, n=n, fmt="folder")
    url_list = work_dir / f"urls-{n}.parquet"
    results = []
    with serve_folder(pool) as base_url:
        write_url_list(pool, base_url, url_list)
        for processes in sorted({1, workers}):
            results.append(time_img2dataset(url_list, work_dir / f"img2dataset-{n}-{processes}", processes, threads))
        for kind in (k.strip() for k in executors.split(",")):
            results.append(time_curate(url_list, work_dir / f"run-download-{kind}-{n}", kind, workers, threads))
    table = Table(title=f"download {n:,} images from 127.0.0.1")
    for column in ("tool", "processes", "downloaded", "seconds", "samples/s", "vs img2dataset"):
        table.add_column(column, justify="right")
    baseline = {r.processes: r.samples_per_second for r in results if r.tool == "img2dataset"}
    for r in results:
        ratio = r.samples_per_second / baseline[r.processes]
        table.add_row(r.tool, str(r.processes), f"{r.downloaded:,}", f"{r.seconds:.1f}",
                      f"{r.samples_per_second:,.0f}", f"{ratio:.2f}x")
    console.print(table)


def main() -> None:
    """Entry point for `python -m curate`."""
    sys.exit(app())
