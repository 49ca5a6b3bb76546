"""select_top_fraction's reduce finds the pool-wide threshold shard by shard, in bounded memory:
the same state as sorting every score at once (the reference below), ties, missing scores,
signed zeros and a pool of one repeated score included, with a band small enough that the
radix passes run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.stage import Collected, stage_class


def _reference(tables: list[pa.Table], rule: str, fraction: float) -> dict:
    """Every collected row at once, sorted: DataComp's index int(N * f) of the descending scores,
    or the round(N * f)-th (score desc, uid asc)."""
    table = pa.concat_tables(tables)
    counted = table.num_rows
    score = table.column("score").to_numpy()
    scored = ~np.isnan(score)
    if rule == "datacomp":
        position = int(counted * fraction)
        ordered = -np.sort(-score[scored])
        return {"threshold": -np.inf if position >= len(ordered) else float(ordered[position])}
    keep = min(int(round(fraction * counted)), int(scored.sum()))
    if keep == 0:
        return {"keep": 0}
    f0, f1 = table.column("f0").to_numpy()[scored], table.column("f1").to_numpy()[scored]
    order = np.lexsort((f1, f0, -score[scored]))
    last = order[keep - 1]
    return {"keep": keep, "score": float(score[scored][last]), "f0": int(f0[last]), "f1": int(f1[last])}


def _collected(tmp_path, rng, shards: int, rows: int, values) -> tuple[Collected, list[pa.Table]]:
    paths, tables = {}, []
    for shard in range(shards):
        score = rng.choice(values, rows)
        table = pa.table({"score": score, "f0": rng.integers(0, 3, rows).astype(np.uint64),
                          "f1": rng.integers(0, 2**63, rows, dtype=np.int64).astype(np.uint64)})
        paths[f"{shard:05d}"] = tmp_path / f"{shard:05d}.parquet"
        pq.write_table(table, paths[f"{shard:05d}"])
        tables.append(table)
    return Collected(paths, tmp_path / "report", "key"), tables


@pytest.mark.parametrize("rule", ["datacomp", "exact"])
@pytest.mark.parametrize("fraction", [0.001, 0.3, 0.5, 0.97, 1.0])
@pytest.mark.parametrize("band", [5, 100_000])
def test_the_bounded_reduce_gives_the_state_of_a_full_sort(tmp_path, rule, fraction, band):
    rng = np.random.default_rng(int(fraction * 1000) + band)
    values = np.concatenate([np.round(rng.normal(0.25, 0.05, 50), 2), [np.nan, np.nan, -0.0, 0.0, 1e300, -1e-300]])
    collected, tables = _collected(tmp_path, rng, shards=7, rows=300, values=values)
    cls = stage_class("select_top_fraction")
    stage = cls(cls.Params(column="s", fraction=fraction, rule=rule))
    stage.band = band
    assert stage.reduce(collected) == _reference(tables, rule, fraction)


@pytest.mark.parametrize("rule", ["datacomp", "exact"])
def test_one_score_repeated_over_the_whole_pool(tmp_path, rule):
    collected, tables = _collected(tmp_path, np.random.default_rng(3), shards=4, rows=500, values=np.array([0.3125]))
    cls = stage_class("select_top_fraction")
    stage = cls(cls.Params(column="s", fraction=0.4, rule=rule))
    stage.band = 3
    assert stage.reduce(collected) == _reference(tables, rule, 0.4)
