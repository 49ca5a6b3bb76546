"""The leaderboard's figures, on results made up by hand."""

import math

import pytest

from curate.benchmark.leaderboard import markdown, strategy_row, verdict


def _results(averages, task_values):
    return [{"seed": seed, "average": average,
             "tasks": [{"task": "t", "main": value}]} for seed, (average, value) in enumerate(zip(averages, task_values))]


def test_rows_and_verdict_by_hand():
    base = strategy_row("none", {"curated": 100, "ingested": 100}, _results([0.20, 0.22, 0.24], [0.5, 0.5, 0.5]))
    best = strategy_row("dfn", {"curated": 30, "ingested": 100}, _results([0.30, 0.31, 0.32], [0.6, 0.7, 0.8]))
    assert base["average"]["mean"] == pytest.approx(0.22) and base["average"]["std"] == pytest.approx(0.02)
    assert best["tasks"]["t"]["std"] == pytest.approx(0.1)
    found = verdict([best, base], "none")
    # gap 0.09, sigma = the larger spread, 0.02: 4.5 sigma
    assert found["best"] == "dfn" and found["sigmas"] == pytest.approx(4.5) and found["beats_by_3_sigma"]
    assert found["per_task"]["t"] == pytest.approx(0.2 / 0.1)
    board = {"name": "b", "setting": "s", "task_names": {"t": "T acc1"}, "rows": [best, base], "verdict": found}
    text = markdown(board)
    assert "| 1 | dfn | 30 of 100 | 0.7000 ± 0.1000 | 0.3100 ± 0.0100 |" in text and "beats 'none'" in text


def test_one_seed_makes_no_claim():
    base = strategy_row("none", {"curated": 10, "ingested": 10}, _results([0.2], [0.2]))
    best = strategy_row("dfn", {"curated": 5, "ingested": 10}, _results([0.9], [0.9]))
    found = verdict([base, best], "none")
    assert math.isnan(found["sigmas"]) and not found["beats_by_3_sigma"] and "does NOT beat" in found["text"]
