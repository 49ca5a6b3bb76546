"""Helpers for the real-pool tests: skip when a package is absent, read what a build wrote.

(Not a conftest.py: the suite's tests import `conftest` by name, which must stay tests/conftest.py.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.pools.sources import VENDOR_ENV, MissingPackageError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def vendor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Find the npm tarballs in the repository's data/vendor whatever the working directory."""
    monkeypatch.setenv(VENDOR_ENV, str(REPO / "data" / "vendor"))


def need(check: Callable[[], object]) -> None:
    """Skip the test, saying what to install, when `check` finds a package missing."""
    try:
        check()
    except MissingPackageError as error:
        pytest.skip(f"package not installed: {error}")


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def manifest(root: Path) -> dict:
    """The `_pool.json` of a built pool."""
    return json.loads((root / "_pool.json").read_text())


def rows(root: Path, folder: str = "") -> list[dict]:
    """The Parquet rows of every shard of a built pool, in shard order."""
    shards = manifest(root)["shards"]
    if not shards:
        return []
    return pa.concat_tables([pq.read_table(root / folder / f"{s}.parquet") for s in shards]).to_pylist()
