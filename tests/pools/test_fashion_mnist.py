"""Fashion-MNIST (pool and test set) and MNIST 5k, from the installed packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.pools import build
from curate.pools.fashion_mnist import CLASSNAMES, TEMPLATES, _split, eval_inputs, pool_samples, train_captions
from curate.pools.images import image_size
from curate.pools.mnist import eval_inputs as mnist_inputs
from pool_helpers import need, rows, tree


@pytest.fixture
def fashion() -> None:
    need(eval_inputs)


def _template_of(caption: str, label: str) -> bool:
    return any(caption == t.format(label=label).replace("a ankle", "an ankle") for t in TEMPLATES)


def test_pool_captions_come_from_labels_through_templates(tmp_path: Path, fashion: None) -> None:
    meta = build("fashion-mnist", tmp_path / "a", limit=30, samples_per_shard=20)
    build("fashion-mnist", tmp_path / "b", limit=30, samples_per_shard=20)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert (meta["n"], meta["shards"], meta["noise"], meta["refused_eval_items"]) == (30, ["00000", "00001"], 0.0, 0)
    table = rows(tmp_path / "a")
    assert table[0]["key"] == "train_00000" and table[0]["label_name"] == "ankle boot"
    assert all(_template_of(r["caption"], CLASSNAMES[r["label"]]) and not r["is_noisy"] for r in table)
    assert len({r["caption"].replace(r["label_name"], "") for r in table}) >= 4
    assert (table[0]["width"], table[0]["height"]) == (28, 28)


def test_noise_is_a_seeded_fraction_and_recorded(fashion: None) -> None:
    labels = _split("train")[1]
    noisy = train_captions(labels, 0.3, seed=5)
    assert noisy == train_captions(labels, 0.3, seed=5) != train_captions(labels, 0.3, seed=6)
    kinds = [kind for _, kind in noisy]
    assert 0.25 < sum(k is not None for k in kinds) / len(kinds) < 0.35
    assert {k for k in kinds if k} == {"wrong_label", "junk", "empty"}
    for (caption, kind), label in zip(noisy, labels.tolist()):
        if kind is None:
            assert _template_of(caption, CLASSNAMES[label])
        elif kind == "wrong_label":
            assert not _template_of(caption, CLASSNAMES[label]) and caption
        elif kind == "empty":
            assert caption == ""
    clean = train_captions(labels, 0.0, seed=5)
    assert all(k is None for _, k in clean)
    assert [c for c, k in noisy if k is None] == [c for (c, _), (_, k) in zip(clean, noisy) if k is None]
    samples = list(pool_samples(limit=50, noise=0.3, seed=5))
    assert [s.caption for s in samples] == [c for c, _ in noisy[:50]]
    assert [s.truth["is_noisy"] for s in samples] == [k is not None for _, k in noisy[:50]]


def test_a_start_index_gives_a_disjoint_slice_with_the_same_captions(tmp_path: Path, fashion: None) -> None:
    whole = {s.key: s.caption for s in pool_samples(limit=60, noise=0.5, seed=1)}
    meta = build("fashion-mnist", tmp_path, start=50, limit=10, noise=0.5, seed=1)
    table = rows(tmp_path)
    assert [r["key"] for r in table] == [f"train_{i:05d}" for i in range(50, 60)] and meta["start"] == 50
    assert all(r["caption"] == whole[r["key"]] for r in table)  # a slice of the same draws
    with pytest.raises(Exception, match="start must be an index"):
        build("fashion-mnist", tmp_path / "bad", start=60000)


def test_test_set_is_a_classification_set(tmp_path: Path, fashion: None) -> None:
    meta = build("fashion-mnist-test", tmp_path, limit=12)
    assert (meta["kind"], meta["task"], meta["classnames"], meta["n"]) == (
        "eval", "classification", list(CLASSNAMES), 12)
    table = rows(tmp_path)
    assert [(r["key"], r["caption"]) for r in table[:2]] == [("test_00000", "ankle boot"), ("test_00001", "pullover")]
    assert all(r["caption"] == CLASSNAMES[r["label"]] == r["label_name"] for r in table)


def test_mnist_5k(tmp_path: Path) -> None:
    need(mnist_inputs)
    meta = build("mnist-5k", tmp_path, limit=10)
    assert (meta["kind"], meta["task"], meta["classnames"], meta["n"]) == (
        "eval", "classification", [str(d) for d in range(10)], 10)
    table = rows(tmp_path)
    assert all(r["caption"] == r["label_name"] == str(r["label"]) for r in table)
    assert table[0]["key"] == "mnist_00000" and (table[0]["width"], table[0]["height"]) == (28, 28)
    assert len({r["sha256"] for r in table}) == 10
    assert image_size(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x1c\0\0\0\x1c") == (28, 28)
