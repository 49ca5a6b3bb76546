"""The flags pool and the held-out flags classification set."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.pools import build
from curate.pools.flags import flag_files, is_eval
from curate.pools.guard import eval_guard
from pool_helpers import need, rows, tree


@pytest.fixture(autouse=True)
def installed() -> None:
    need(flag_files)


def test_pool_and_eval_split_the_countries(tmp_path: Path) -> None:
    pool = build("flags", tmp_path / "pool")
    build("flags-eval", tmp_path / "eval")
    pool_rows, eval_rows = rows(tmp_path / "pool"), rows(tmp_path / "eval")
    codes, skipped = flag_files()
    assert {r["alpha_2"] for r in pool_rows} | {r["alpha_2"] for r in eval_rows} == {c for c, _ in codes}
    assert not {r["alpha_2"] for r in pool_rows} & {r["alpha_2"] for r in eval_rows}
    assert all(is_eval(r["alpha_2"]) for r in eval_rows) and 0.2 < len(eval_rows) / len(codes) < 0.4
    assert not {r["sha256"] for r in pool_rows} & {r["sha256"] for r in eval_rows}
    assert "_basque.png" in skipped and pool["skipped_no_iso_code"] == skipped
    assert pool["refused_eval_items"] == 0
    assert {r["sha256"] for r in eval_rows} <= eval_guard().hashes


def test_captions_and_classnames(tmp_path: Path) -> None:
    build("flags", tmp_path / "pool", limit=3)
    assert [(r["key"], r["caption"]) for r in rows(tmp_path / "pool")] == [
        ("ad", "the flag of Andorra"), ("ae", "the flag of United Arab Emirates"), ("af", "the flag of Afghanistan")]
    meta = build("flags-eval", tmp_path / "eval")
    table = rows(tmp_path / "eval")
    assert (meta["task"], meta["kind"]) == ("classification", "eval")
    assert meta["classnames"] == [r["label_name"] for r in table] == [r["name"] for r in table]
    assert [r["label"] for r in table] == list(range(len(table)))
    assert all(r["caption"] == f"the flag of {r['name']}" for r in table)
    build("flags-eval", tmp_path / "again")
    assert tree(tmp_path / "eval") == tree(tmp_path / "again")
