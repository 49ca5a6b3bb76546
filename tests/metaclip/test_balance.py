"""metaclip_match + metaclip_balance in real pipelines: tail entries keep everything, keep rates
follow 1 - prod(1 - p_i), and the subset does not depend on sharding or executor."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from curate import ConfigError, load_pipeline, run_pipeline
from curate.io.tars import tar_bytes
from curate.metaclip import balance
from conftest import jpeg_bytes, sample, write_pipeline

ENTRIES = ["alpha", "beta", "rare", "never"]


def _captions() -> list[str]:
    """2,000 captions: all say alpha, the odd ones also beta, 5 of those also rare; 40 say nothing."""
    captions = []
    for i in range(2000):
        words = ["alpha"] + (["beta"] if i % 2 else []) + (["rare"] if i % 400 == 7 else [])
        captions.append(" and ".join(words) + ".")
    return captions + ["nothing here"] * 40


def _pool(folder, shards: int):
    captions = _captions()
    folder.mkdir(parents=True)
    image = jpeg_bytes(1, size=16)
    for shard, part in enumerate(np.array_split(np.arange(len(captions)), shards)):
        records = [sample(int(i), caption=captions[i], image=image) for i in part]
        for i, record in zip(part, records):  # the pool's own uids, as DataComp's carry: the same however packed
            record["json"] = json.dumps({"uid": hashlib.md5(str(i).encode()).hexdigest()}).encode()
        (folder / f"{shard:02d}.tar").write_bytes(tar_bytes(records))
    return folder


def _run(tmp_path, name, balance_params, shards=2, executor="local"):
    (tmp_path / "meta.json").write_text(json.dumps(ENTRIES))
    pool = tmp_path / f"pool{shards}"
    if not pool.exists():
        _pool(pool, shards)
    stages = [{"stage": "metaclip_match", "params": {"metadata": str(tmp_path / "meta.json")}},
              {"stage": "metaclip_balance", "params": {"metadata": str(tmp_path / "meta.json"), **balance_params}}]
    path = write_pipeline(tmp_path / f"{name}.yaml", str(pool / "*.tar"), tmp_path / name, stages=stages,
                          executor=executor, uid_field="uid")
    summary = run_pipeline(load_pipeline(path))
    outputs = sorted((tmp_path / name / "metaclip_balance").glob("*.parquet"))
    rows = pl.from_arrow(pq.read_table(outputs)).join(
        pl.from_arrow(pq.read_table(sorted((tmp_path / name / "ingest_webdataset").glob("*.parquet")),
                                    columns=["uid", "caption"])), on="uid")
    return summary, rows


def _kept(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter(pl.col("drop_reason").is_null() & pl.col("metaclip_keep_probability").is_not_null())


def _within_binomial(kept: int, n: int, p: float) -> bool:
    return abs(kept - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1


def test_tail_entries_keep_all_and_keep_rates_follow_the_formula(tmp_path):
    summary, rows = _run(tmp_path, "run", {"t": 100})
    details = summary["stages"][2]["details"]
    # counts: alpha 2000, beta 1000, rare 5 -> p = 0.05, 0.1, 1
    kept = _kept(rows)
    rare = rows.filter(pl.col("caption").str.contains("rare"))
    assert rare.height == 5 and rare["drop_reason"].is_null().all() and (rare["metaclip_keep_probability"] == 1).all()
    both = rows.filter(pl.col("caption").str.contains("beta") & ~pl.col("caption").str.contains("rare"))
    only = rows.filter(~pl.col("caption").str.contains("beta|rare") & pl.col("caption").str.contains("alpha"))
    for group, p in ((both, 1 - 0.95 * 0.9), (only, 0.05)):
        assert np.allclose(group["metaclip_keep_probability"].to_numpy(), p, atol=1e-6)
        assert _within_binomial(group.filter(pl.col("drop_reason").is_null()).height, group.height, p)
    matched = pl.read_parquet(tmp_path / "run" / "metaclip_match" / "*.parquet")
    assert matched["drop_reason"].drop_nulls().to_list() == ["metaclip_no_match"] * 40
    assert details["realised_size"] == kept.height
    assert details["expected_size"] == pytest.approx(5 + 995 * (1 - 0.95 * 0.9) + 1000 * 0.05, abs=0.1)
    counts = pl.read_parquet(tmp_path / "run" / "metaclip_balance" / "report" / "entry_counts.parquet")
    assert counts.select("entry", "count_before").rows() == [("alpha", 2000), ("beta", 1000), ("rare", 5)]
    assert counts.filter(pl.col("entry") == "rare")["count_after"].item() == 5
    assert counts.filter(pl.col("entry") == "alpha")["count_after"].item() == kept.height


def test_the_same_seed_gives_the_same_subset_on_any_sharding_and_executor(tmp_path, ray_session):
    subsets = []
    for name, shards, executor in (("one", 1, "local"), ("four", 4, "local"), ("ray", 4, "ray")):
        _, rows = _run(tmp_path, name, {"t": 100, "seed": 7}, shards=shards, executor=executor)
        subsets.append(set(_kept(rows)["uid"]))
    assert subsets[0] == subsets[1] == subsets[2] and 100 < len(subsets[0]) < 2000
    _, other = _run(tmp_path, "other_seed", {"t": 100, "seed": 8}, shards=1)
    assert set(_kept(other)["uid"]) != subsets[0]


def test_t_from_a_target_size_or_a_tail_fraction(tmp_path):
    summary, _ = _run(tmp_path, "target", {"target_size": 600})
    details = summary["stages"][2]["details"]
    assert details["expected_size"] == pytest.approx(600, abs=0.1)
    assert _within_binomial(details["realised_size"], 2005, 600 / 2005)
    sampled, _ = _run(tmp_path, "sampled", {"target_size": 600, "size_sample": 0.5})
    assert sampled["stages"][2]["details"]["expected_size"] == pytest.approx(600, rel=0.1)  # t from half the captions
    summary, _ = _run(tmp_path, "tail", {"tail_entry_fraction": 0.6})
    assert summary["stages"][2]["details"]["t"] == 1000  # counts 5, 1000, 2000: 2 of 3 are <= 1000
    summary, _ = _run(tmp_path, "matches", {"tail_fraction": 0.4})
    details = summary["stages"][2]["details"]  # cumulative shares of 3,005 matches: 0.0017, 0.334, 1
    assert details["t"] == 1000 and details["tail_fraction"] == pytest.approx(5 / 3005, abs=1e-6)


@pytest.mark.parametrize("counts, p, t", [
    ([10, 20, 30, 40], 0.5, 30),        # shares 0.1, 0.3, 0.6, 1: 0.6 is nearest; by entries it would be 20
    ([4, 1, 3], 0.3125, 1),             # shares 0.125, 0.5, 1: 0.125 and 0.5 are as near: the first
    ([0, 0, 10, 20, 30, 40], 0.01, 0),  # unmatched entries count too: their share 0 is nearest
    ([3, 3, 3, 91], 0.05, 3),
    ([3, 3, 3, 91], 0.9, 91),
])
def test_tail_fraction_is_metaclip_2s_share_of_matches(counts, p, t):
    assert balance.threshold_for_tail(np.array(counts), p) == t
    assert balance.threshold_for_tail_entries(np.array([10, 20, 30, 40]), 0.5) == 20


def test_tail_share_is_metaclip_2s_t_to_p():
    counts = np.array([10, 20, 30, 40])
    assert balance.tail_share(counts, 30) == pytest.approx(0.3)  # entries counted fewer than t: 10 + 20
    assert balance.tail_share(counts, 41) == 1.0 and balance.tail_share(counts, 10) == 0.0


def test_threshold_for_size_inverts_the_expected_size():
    rows, entry = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 0, 1, 2])
    counts = np.array([50, 80, 3])
    t = balance.threshold_for_size(1.7, rows, entry, counts, 3)
    assert balance.expected_size(rows, entry, counts, t, 3) == pytest.approx(1.7, rel=1e-6)
    assert balance.threshold_for_size(99, rows, entry, counts, 3) == 80  # more than there is: keep all


@pytest.mark.parametrize("params, message", [
    ({}, "exactly one of t, target_size, tail_fraction, tail_entry_fraction"),
    ({"t": 5, "tail_fraction": 0.5}, "exactly one of"),
])
def test_t_must_be_given_one_way(tmp_path, params, message):
    with pytest.raises(ConfigError, match=message):
        _run(tmp_path, "bad", params)


def test_balance_without_matching_is_a_clear_error(tmp_path):
    _pool(tmp_path / "pool", 1)
    path = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run",
                          stages=[{"stage": "metaclip_balance", "params": {"t": 3}}])
    with pytest.raises(ConfigError, match="metaclip_entry_ids.*no earlier stage writes"):
        run_pipeline(load_pipeline(path))
