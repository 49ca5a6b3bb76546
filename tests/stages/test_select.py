"""Selection by named predicates and by a global top fraction."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

import numpy as np
import pyarrow as pa

from curate import ConfigError, ShardStage, StageParams, load_pipeline, register, run_pipeline
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
              {"stage": "select_top_fraction", "params": {"column": "caption_chars", "fraction": 0.3, "rule": "exact"}},
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
    ({"typed": "caption > 3"}, r"filter 'typed' \(caption > 3\): cannot compare string with numeric"),
    ({"number": "caption_words + 1"}, "gives Int32, not true/false"),
])
def test_bad_filters_are_config_errors(tmp_path, pool, filters, message):
    stages = [{"stage": "caption_stats"}, {"stage": "select", "params": {"filters": filters}}]
    with pytest.raises(ConfigError, match=message):
        run_pipeline(load_pipeline(write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"),
                                                  tmp_path / "run", stages=stages)))


class _ScoresParams(StageParams):
    scores: list[float | None]


@register
class _ListedScores(ShardStage):
    """caption_alpha_fraction = scores[key] (a test scorer; the other columns are null)."""

    name = "test_listed_scores"
    Params = _ScoresParams
    output_schema = "caption_stats.v1"
    input_columns = ("key",)

    def process(self, batch):
        keys = [int(k) for k in batch.column("key").to_pylist()]
        empty = pa.nulls(len(keys), pa.int32())
        return pa.table({"uid": batch.column("uid"), "caption_chars": empty, "caption_words": empty,
                         "caption_alpha_fraction": pa.array([self.params.scores[k] for k in keys], pa.float32()),
                         "caption_unique_word_fraction": pa.nulls(len(keys), pa.float32())})


@pytest.mark.parametrize("descending, missing", [(True, "count"), (False, "count"), (True, "exclude")])
def test_top_fraction_never_keeps_a_missing_score(tmp_path, descending, missing):
    write_pool(tmp_path / "pool", shards=2, per_shard=15)
    scores = [None if k % 3 == 0 else float(k) for k in range(30)]
    stages = [{"stage": "test_listed_scores", "params": {"scores": scores}},
              {"stage": "select_top_fraction", "params": {"column": "caption_alpha_fraction", "fraction": 0.5,
                                                          "descending": descending, "rule": "exact",
                                                          "missing": missing}},
              {"stage": "export", "params": {"samples_per_shard": 64}}]
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run",
                              stages=stages)
    summary = run_pipeline(load_pipeline(pipeline))
    alive = [k for k in range(30) if k % 6 != 2]  # captions cycle through 6, the third is empty
    scored = [k for k in alive if k % 3 != 0]
    counted = alive if missing == "count" else scored
    expected = sorted(scored, reverse=descending)[: round(0.5 * len(counted))]
    files = sorted((tmp_path / "run" / "export" / "shards").glob("*.parquet"))
    kept = sorted(int(k) for k in pq.read_table(files, columns=["key"]).column(0).to_pylist())
    assert kept == sorted(expected)
    drops = summary["stages"][2]["drop_counts"]
    assert drops == {"missing_score": len(alive) - len(scored), "below_top_fraction": len(scored) - len(expected)}


SCORES = [0.9, 0.8, 0.8, 0.7, 0.5, 0.3, 0.2, 0.1, 0.1, 0.0, 0.45, 0.65]  # by key 0..11


def _datacomp_reference(scores: list[float | None], fraction: float) -> set[int]:
    """DataComp's baselines (get_threshold, then df[key] >= threshold): the descending-sorted
    scores at int(N * f), missing scores (NaN) counted in N and sorted last."""
    values = np.array([np.nan if s is None else s for s in scores], dtype=np.float32)
    threshold = -np.sort(-values)[int(len(values) * fraction)]
    return {i for i, s in enumerate(values) if s >= threshold}


def _kept_keys(tmp_path, scores: list[float | None], params: dict) -> set[int]:
    """The keys select_top_fraction keeps of shards of six samples scored `scores` (by key)."""
    from conftest import sample
    from curate.io.tars import tar_bytes

    tmp_path.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(scores), 6):
        shard = [sample(i, "a caption that is kept") for i in range(start, min(start + 6, len(scores)))]
        (tmp_path / f"{start:03d}.tar").write_bytes(tar_bytes(shard))
    stages = [{"stage": "test_listed_scores", "params": {"scores": scores}},
              {"stage": "select_top_fraction", "params": {"column": "caption_alpha_fraction", **params}},
              {"stage": "export", "params": {"samples_per_shard": 64}}]
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "*.tar"), tmp_path / "run", stages=stages)
    run_pipeline(load_pipeline(pipeline))
    files = sorted((tmp_path / "run" / "export" / "shards").glob("*.parquet"))
    return {int(k) for k in pq.read_table(files, columns=["key"]).column(0).to_pylist()}


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.25, 0.3, 0.5, 0.9])
def test_datacomp_rule_matches_datacomp_on_a_known_score_list(tmp_path, fraction):
    kept = _kept_keys(tmp_path, SCORES, {"fraction": fraction})
    assert kept == _datacomp_reference(SCORES, fraction)
    if fraction == 0.2:
        assert kept == {0, 1, 2}  # int(12 * 0.2) = 2: the threshold 0.8 keeps both ties


WITH_MISSING = [0.9, None, 0.8, 0.7, 0.5, 0.3, 0.2, 0.1, None, 0.0, 0.45, 0.65]


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.8])
def test_missing_scores_count_in_n_and_sort_last_as_in_datacomp(tmp_path, fraction):
    assert _kept_keys(tmp_path, WITH_MISSING, {"fraction": fraction}) == _datacomp_reference(WITH_MISSING, fraction)


def test_one_missing_in_six_keeps_four_at_one_half_unless_excluded(tmp_path):
    six = [0.9, None, 0.7, 0.5, 0.3, 0.1]
    assert _kept_keys(tmp_path / "count", six, {"fraction": 0.5}) == _datacomp_reference(six, 0.5) == {0, 2, 3, 4}
    assert _kept_keys(tmp_path / "excluded", six, {"fraction": 0.5, "missing": "exclude"}) == {0, 2, 3}
    every_scored = {i for i, s in enumerate(WITH_MISSING) if s is not None}
    assert _kept_keys(tmp_path / "all", WITH_MISSING, {"fraction": 1.0}) == every_scored  # DataComp raises
