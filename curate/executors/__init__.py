"""Executors run a stage's tasks over shards: in process (`local`) or on Ray (`ray`)."""

from __future__ import annotations

from curate.errors import ConfigError
from curate.executors.base import Executor
from curate.executors.local import LocalExecutor

EXECUTORS = ("local", "ray")


def make_executor(kind: str, workers: int | None = None, address: str | None = None) -> Executor:
    """Build the executor named `kind` ("local" or "ray")."""
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        from curate.executors.ray import RayExecutor

        return RayExecutor(workers=workers, address=address)
    raise ConfigError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "make_executor"]
