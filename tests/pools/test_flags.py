"""The flags pool and the held-out flags classification set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from curate.pools import build
from curate.pools.flags import flag_alpha_2, flag_files, held_out_countries, is_eval, natural_name, pool_samples
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


def test_inverted_iso_names_read_in_natural_order() -> None:
    assert natural_name("Congo, The Democratic Republic of the") == "the Democratic Republic of the Congo"
    assert natural_name("Micronesia, Federated States of") == "Federated States of Micronesia"
    assert natural_name("Palestine, State of") == "State of Palestine"
    assert natural_name("Virgin Islands, British") == "British Virgin Islands"
    assert natural_name("Virgin Islands, U.S.") == "U.S. Virgin Islands"
    assert natural_name("Bonaire, Sint Eustatius and Saba") == "Bonaire, Sint Eustatius and Saba"  # a list
    assert natural_name("France") == "France"
    captions = {s.key: s.caption for s in pool_samples()}
    assert captions["cd"] == "the flag of the Democratic Republic of the Congo"
    assert captions["vg"] == "the flag of British Virgin Islands" and captions["kr"] == "the flag of South Korea"
    assert not [c for c in captions.values() if re.search(r", (the |[A-Z][\w.]* )*of( the)?$|, [\w.]+$", c)]


def test_flag_emoji_code_points_give_the_country_code() -> None:
    assert flag_alpha_2("1F1E6-1F1EE") == "AI" and flag_alpha_2("1f1f5-1f1f1") == "PL"
    assert flag_alpha_2("1F3F4-E0067-E0062-E0065-E006E-E0067-E007F") is None  # England: not a country flag
    assert flag_alpha_2("0023-FE0F-20E3") is None and flag_alpha_2(None) is None and flag_alpha_2("1F1E6") is None
    assert set(held_out_countries()) == {c for c, _ in flag_files()[0] if is_eval(c)}
