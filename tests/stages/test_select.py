"""Selection by named predicates and by a global top fraction."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from curate import ConfigError, load_pipeline, run_pipeline
from conftest import write_pipeline, write_pool


def test_first_failing_filter_names_the_drop(tmp_path, pool):
    stages = [{"stage": "caption_stats"},
              {"stage": "select", "params": {"filters": {
                  "too_few_words": "caption_words >= 2", "no_digits_please": "NOT caption LIKE '%0%'"}}},
              {"stage": "export", "params": {"samples_per_shard": 100}}]
    summary = run_pipeline(load_pipeline(write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"),
                                                         tmp_path / "run", stages=stages)))
    select = summary["stages"][2]
    assert select["drop_counts"] == {"too_few_words": 40}
    assert summary["curated"] == 60


def _top_fraction_scores(folder, shards: int, per_shard: int) -> list[int]:
    write_pool(folder / "pool", shards=shards, per_shard=per_shard)
    stages = [{"stage": "caption_stats"},
              {"stage": "select_top_fraction", "params": {"column": "caption_chars", "fraction": 0.3}},
              {"stage": "export", "params": {"samples_per_shard": 64}}]
    summary = run_pipeline(load_pipeline(write_pipeline(
        folder / "p.yaml", str(folder / "pool" / "*.tar"), folder / "run", stages=stages)))
    assert summary["curated"] == round(0.3 * 250)
    files = sorted((folder / "run" / "export" / "shards").glob("*.parquet"))
    return sorted(len(c) for c in pq.read_table(files, columns=["caption"]).column(0).to_pylist())


def test_top_fraction_is_global_whatever_the_sharding(tmp_path):
    """The same scores are kept (ties are broken by uid, which names the shard file)."""
    one = _top_fraction_scores(tmp_path / "a", 1, 300)
    assert one == _top_fraction_scores(tmp_path / "b", 6, 50) == _top_fraction_scores(tmp_path / "c", 30, 10)
    assert one == [33] * 25 + [34] * 50  # a tie at the threshold, cut exactly


@pytest.mark.parametrize("filters, message", [
    ({"bad": "caption_words >="}, "cannot parse"),
    ({"bad name": "caption_words > 1"}, "letters, digits"),
    ({"fine": "no_such_column > 1"}, "no_such_column.*no earlier stage writes"),
])
def test_bad_filters_are_config_errors(tmp_path, pool, filters, message):
    stages = [{"stage": "caption_stats"}, {"stage": "select", "params": {"filters": filters}}]
    with pytest.raises(ConfigError, match=message):
        run_pipeline(load_pipeline(write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"),
                                                  tmp_path / "run", stages=stages)))
