"""The contamination guard: no pool may hold an evaluation item."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from curate.pools import fashion_mnist, guard, tuxpaint
from curate.pools.guard import eval_guard, refuse_eval_items, write_guarded_pool
from curate.pools.sources import MissingPackageError
from curate.pools.writer import PoolSample
from pool_helpers import need, rows


def test_every_evaluation_set_is_hashed() -> None:
    need(fashion_mnist.eval_inputs)
    need(tuxpaint.list_stamps)
    checked = eval_guard().checked
    assert checked["fashion-mnist-test"] == 10_000
    assert 0 < checked["tuxpaint-retrieval"] < 150 and 0 < checked["flags-eval"] < 100
    assert eval_guard() == eval_guard()  # cached: the same set, not recomputed


def test_a_planted_fashion_mnist_test_image_is_refused(tmp_path: Path) -> None:
    need(fashion_mnist.eval_inputs)
    train = list(fashion_mnist.pool_samples(limit=5))
    planted = next(fashion_mnist.eval_samples(limit=1))._replace(key="planted")
    meta = write_guarded_pool([*train[:2], planted, *train[2:]], tmp_path, name="fashion-mnist",
                              columns=fashion_mnist.POOL_COLUMNS, samples_per_shard=10, manifest={})
    assert (meta["n"], meta["refused_eval_items"], meta["refused_keys"]) == (5, 1, ["planted"])
    assert [r["key"] for r in rows(tmp_path)] == [s.key for s in train]
    assert meta["eval_guard"]["checked"]["fashion-mnist-test"] == 10_000


def test_held_out_stamps_are_refused_even_if_asked_for() -> None:
    need(tuxpaint.list_stamps)
    held = [s for s in tuxpaint.list_stamps() if tuxpaint.is_retrieval(s.stem)]
    chosen = [held[0], next(s for s in held if s.image.endswith(".svg"))]  # one raw PNG, one rendered SVG
    kept = [tuxpaint.stamp_sample(s) for s in tuxpaint.list_stamps()[:3] if not tuxpaint.is_retrieval(s.stem)]
    refused: list[str] = []
    out = list(refuse_eval_items([*kept, *(tuxpaint.stamp_sample(s) for s in chosen)], refused))
    assert out == kept and refused == [tuxpaint.stamp_sample(s).key for s in chosen]


def test_cache_follows_the_files_and_missing_sets_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    item = tmp_path / "item.png"
    item.write_bytes(b"one")

    def samples():
        yield PoolSample("k", item.read_bytes(), "png", "", {})

    def absent():
        raise MissingPackageError("install the Debian package x (apt-get install x)")

    monkeypatch.setattr(guard, "_eval_sources", lambda: {"toy": (lambda: [item], samples), "gone": (absent, absent)})
    first = eval_guard()
    assert first.hashes == {hashlib.sha256(b"one").hexdigest()}
    assert first.summary() == {"checked": {"toy": 1}, "unavailable": {"gone": "install the Debian package x "
                                                                                "(apt-get install x)"}}
    item.write_bytes(b"second")
    assert eval_guard().hashes == {hashlib.sha256(b"second").hexdigest()}
