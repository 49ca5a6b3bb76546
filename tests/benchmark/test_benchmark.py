"""curate benchmark end to end on a tiny noisy Fashion-MNIST pool: two strategies, one seed, the
tiny model; the leaderboard, the scorers against the ground truth, and a resumed rerun."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from curate.benchmark.config import load_benchmark
from curate.cli import app
from curate.errors import ConfigError
from curate.pools import build
from curate.pools.sources import FASHION_MNIST


def _bench_file(tmp_path: Path) -> Path:
    pool, evals = tmp_path / "pool", tmp_path / "eval"
    bench = {
        "name": "tiny",
        "out": str(tmp_path / "out"),
        "prepare": {"pools": [{"name": "fashion-mnist", "out": str(pool),
                               "options": {"noise": 0.5, "limit": 120, "samples_per_shard": 60}}]},
        "pool": {"stage": "ingest_webdataset", "params": {"inputs": f"{pool}/*.tar", "dataset": "fashion"}},
        "scores": [{"stage": "caption_stats"}, {"stage": "clip_score", "params": {"name": "dfn"}}],
        "strategies": [
            {"name": "no filtering"},
            {"name": "DFN top half", "stages": [{"stage": "select_top_fraction",
                                                 "params": {"column": "dfn_score", "fraction": 0.5}}]},
        ],
        "train": {"model": "curate-tiny-vit", "samples_seen": 64, "batch_size": 32, "warmup": 1},
        "seeds": [0],
        "eval": {"suite": "offline", "data": str(evals), "tasks": ["fashion-mnist-test"]},
        "ground_truth": {"files": [f"{pool}/*.parquet"], "scores": {"dfn_score": "higher_is_clean"}},
    }
    build("fashion-mnist-test", evals / "fashion-mnist-test", limit=40)  # a set given by the user is used as it is
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(bench))
    return path


@pytest.mark.skipif(not FASHION_MNIST.exists(), reason="apt package dataset-fashion-mnist is not installed")
def test_tiny_benchmark_end_to_end_and_resumed(tmp_path):
    path = _bench_file(tmp_path)
    result = CliRunner().invoke(app, ["benchmark", str(path), "--quiet"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    board = json.loads((out / "leaderboard.json").read_text())
    rows = {row["strategy"]: row for row in board["rows"]}
    assert set(rows) == {"no filtering", "DFN top half"}
    assert rows["no filtering"]["pool_size"] == 120
    assert rows["DFN top half"]["subset_size"] < rows["no filtering"]["subset_size"]
    for row in rows.values():
        assert row["seeds"] == [0]
        accuracy = row["tasks"]["fashion-mnist-test"]["mean"]
        assert 0 <= accuracy <= 1 and row["average"]["mean"] == pytest.approx(accuracy)
    assert board["verdict"]["baseline"] == "no filtering" and board["verdict"]["best"] == "DFN top half"
    assert "does NOT beat" in board["verdict"]["text"]  # one seed: no spread, so no claim
    truth = board["ground_truth"]
    assert truth["samples"] == 120 and 0 < truth["noisy"] < 120
    assert 0 <= truth["scores"][0]["roc_auc"] <= 1
    removals = {r["strategy"]: r for r in truth["strategies"]}
    assert removals["DFN top half"]["removed"] >= 120 // 2
    assert (out / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    table = (out / "leaderboard.md").read_text()
    assert "| 1 |" in table and "Fashion-MNIST acc1" in table and "ROC AUC" in table
    assert f"report: {out / 'report.html'}" in result.output.replace("\n", "")  # the console wraps long lines
    report = (out / "report.html").read_text()
    assert 'id="leaderboard-table"' in report and 'data-strategy="DFN top half"' in report
    assert report.count('data-run="') == 2 and "does NOT beat" in report

    again = CliRunner().invoke(app, ["benchmark", str(path), "--quiet"])
    assert again.exit_code == 0, again.output
    rerun = json.loads((out / "leaderboard.json").read_text())
    assert rerun["rows"] == board["rows"]  # nothing retrained: the same models, the same results


def test_benchmark_file_errors_say_what_is_wrong(tmp_path):
    path = tmp_path / "bench.yaml"
    base = {"name": "x", "out": "o", "pool": {"stage": "ingest_webdataset", "params": {"inputs": "p/*.tar"}},
            "train": {"samples_seen": 10}, "seeds": [0]}
    path.write_text(yaml.safe_dump({**base, "strategies": [{"name": "a b"}, {"name": "A-B"}]}))
    with pytest.raises(ConfigError, match="strategy names must differ"):
        load_benchmark(path)
    path.write_text(yaml.safe_dump({**base, "strategies": [{"name": "a"}]}))
    with pytest.raises(ConfigError, match="strategies"):
        load_benchmark(path)
    path.write_text(yaml.safe_dump({**base, "strategies": [{"name": "a"}, {"name": "b"}], "baseline": "c"}))
    with pytest.raises(ConfigError, match="baseline 'c'"):
        load_benchmark(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_benchmark(tmp_path / "missing.yaml")
