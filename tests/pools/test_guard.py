"""The contamination guard: no pool may hold an evaluation item."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from curate.pools import fashion_mnist, flags, guard, tuxpaint
from curate.pools.emoji import EMOJI_COLUMNS, EMOJI_PACKAGE, emoji_samples
from curate.pools.guard import HeldOutFlags, eval_guard, write_guarded_pool
from curate.pools.sources import MissingPackageError, vendor_tarball
from curate.pools.writer import PoolSample, refuse
from pool_helpers import need, rows, vendor_env  # noqa: F401  (autouse fixture)


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
    held = tuxpaint.retrieval_stamps()
    chosen = [held[0], next(s for s in held if s.image.endswith(".svg"))]  # one raw PNG, one rendered SVG
    kept = [tuxpaint.stamp_sample(s) for s in tuxpaint.list_stamps()[:3] if not tuxpaint.is_retrieval(s.caption)]
    refused: list[str] = []
    reasons: dict[str, int] = {}
    out = list(refuse([*kept, *(tuxpaint.stamp_sample(s) for s in chosen)], eval_guard().rule("tuxpaint"),
                      refused, reasons))
    assert out == kept and refused == [tuxpaint.stamp_sample(s).key for s in chosen]
    assert reasons == {"eval_image": 2}


def test_longer_country_names_win_and_names_fold() -> None:
    variants = {"CG": ["Congo"], "CD": ["the Democratic Republic of the Congo"], "GN": ["Guinea"],
                "GW": ["Guinea-Bissau"], "CW": ["Curaçao"], "CV": ["Cabo Verde", "Cape Verde"]}
    held = HeldOutFlags.from_countries({"CG", "GW", "CW", "CV"}, variants)
    assert held.named("Flag of Congo") == {"CG"}
    assert held.named("flag of the Democratic Republic of the Congo") == set()  # CD, not held out
    assert held.named("Flag of Guinea") == set() and held.named("guinea_bissau.png") == {"GW"}
    assert held.named("CURACAO") == {"CW"} and held.named("flags/africa/capeverde.png") == {"CV"}
    assert held.named("Congolese music") == set()  # word-bounded


def test_flag_emoji_of_flags_eval_countries_are_refused(tmp_path: Path) -> None:
    need(flags.flag_files)
    need(lambda: vendor_tarball(EMOJI_PACKAGE))
    samples = {s.key: s for s in emoji_samples()}
    held_out = set(flags.held_out_countries())
    assert len(held_out) == 64
    current = eval_guard()
    refused = {k for k, s in samples.items() if current.reason(s, "emoji")}
    assert {flags.flag_alpha_2(samples[k].truth["unified"]) for k in refused} == held_out  # all 64, nothing else
    assert all(current.reason(s, "emoji") == "eval_flag_code" for k, s in samples.items() if k in refused)
    chosen = [samples["1f1e6-1f1ee"], samples["1f1e6-1f1e9"], samples["1f600"]]  # Anguilla (held out), Andorra, 😀
    assert samples["1f1e6-1f1ee"].caption == "anguilla flag"
    meta = write_guarded_pool(chosen, tmp_path, name="emoji", columns=EMOJI_COLUMNS, samples_per_shard=10,
                              manifest={})
    assert (meta["n"], meta["refused_keys"], meta["refused_by"]) == (2, ["1f1e6-1f1ee"], {"eval_flag_code": 1})
    assert meta["counts"]["refused_eval_items"] == 1 and "AI" in meta["eval_guard"]["held_out_flags"]
    assert [r["key"] for r in rows(tmp_path)] == ["1f1e6-1f1e9", "1f600"]


def test_openmoji_flags_are_refused_by_hexcode() -> None:
    need(flags.flag_files)
    current = eval_guard()

    def moji(hexcode: str) -> PoolSample:
        return PoolSample(hexcode.lower(), b"png", "png", "", {"hexcode": hexcode})

    assert current.reason(moji("1F1E6-1F1EE"), "openmoji") == "eval_flag_code"  # flag: Anguilla
    assert current.reason(moji("1F1F5-1F1F1"), "openmoji") == "eval_flag_code"  # flag: Poland
    assert current.reason(moji("1F1EB-1F1F7"), "openmoji") is None  # flag: France, in the flags pool
    assert current.reason(moji("1F3F4-E0067-E0062-E0065-E006E-E0067-E007F"), "openmoji") is None  # England
    assert current.reason(moji("1F1E6-1F1EE"), "tuxpaint") is None  # only the emoji pools carry code points


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
    assert first.summary() == {"checked": {"toy": 1}, "held_out_flags": [],  # no flags-eval: no flag rule
                               "unavailable": {"gone": "install the Debian package x (apt-get install x)"}}
    item.write_bytes(b"second")
    assert eval_guard().hashes == {hashlib.sha256(b"second").hexdigest()}
