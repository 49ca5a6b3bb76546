"""`curate select RUN --where ... --name NAME`: a new curated export from a finished run's
scores, computing no score again. The new run, RUN/selections/NAME, starts from hard links to
the run's stage outputs, so every earlier stage is reused; a `select` stage with the predicate
then decides, and the run's sink exports what it keeps."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from curate.committed import is_finished
from curate.config import load_pipeline
from curate.errors import ConfigError, InputError
from curate.pipeline import run_pipeline
from curate.progress import Progress
from curate.stage import SinkStage, stage_class

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def link_tree(source: Path, target: Path) -> None:
    """Recreate `source` under `target` with hard links (copies across file systems)."""
    for folder, _, files in os.walk(source):
        destination = target / Path(folder).relative_to(source)
        destination.mkdir(parents=True, exist_ok=True)
        for name in files:
            if not (destination / name).exists():
                try:
                    os.link(Path(folder) / name, destination / name)
                except OSError:
                    shutil.copy2(Path(folder) / name, destination / name)


def select_from_run(run_dir: str | Path, where: str, name: str, *, executor: str | None = None,
                    workers: int | None = None, progress: Progress | None = None, force: bool = False) -> dict:
    """Export the samples of a finished run that its filters kept and `where` (SQL) keeps too.

    Samples the predicate rejects are dropped with reason `name`. Returns the new run's summary.
    A name already used is refused unless `force` (which replaces that selection); a selection
    that fails leaves nothing behind.
    """
    run_dir = Path(run_dir)
    if not _NAME.match(name):
        raise ConfigError(f"selection name {name!r} must be snake_case (it names a folder and a drop reason)")
    if not is_finished(run_dir):
        raise InputError(f"{run_dir} has not finished: run its pipeline to the end before selecting from it")
    config = load_pipeline(run_dir / "pipeline.yaml")
    sinks = [entry for entry in config.stages if issubclass(stage_class(entry.stage), SinkStage)]
    if not sinks:
        raise ConfigError(f"{run_dir}'s pipeline has no export stage to write a selection with")
    kept = [entry for entry in config.stages if entry not in sinks]
    target = run_dir / "selections" / name
    if target.exists() and not force:
        raise ConfigError(f"selection {name!r} exists ({target}); rerun with --force to replace it, or choose "
                          f"another name")
    shutil.rmtree(target, ignore_errors=True)
    try:
        for entry in kept:
            link_tree(run_dir / (entry.id or entry.stage), target / (entry.id or entry.stage))
        chooser = {"stage": "select", "id": "selection", "params": {"filters": {name: where}}}
        stages = [entry.model_dump() for entry in kept] + [chooser, sinks[0].model_dump()]
        selection = type(config).model_validate({**config.model_dump(), "run_dir": str(target), "serve": None,
                                                 "stages": stages})
        return run_pipeline(selection, executor=executor, workers=workers, force=True, progress=progress)
    except BaseException:  # a bad predicate, an interrupt: no half-made selection is left to mistake for one
        shutil.rmtree(target, ignore_errors=True)
        raise
