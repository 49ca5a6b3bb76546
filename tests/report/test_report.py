"""The run report's sections against the run's own files, the dataset card, and the CLI."""

import json
import re

import numpy as np
import polars as pl
import pytest
import webdataset as wds
from typer.testing import CliRunner

from curate.cli import app
from curate.report import write_report, write_run_report
from curate.report.card import origins
from curate.report.facts import load_run
from curate.report.funnel import funnel
from curate.report.scores import histograms
from curate.report.thumbs import KEPT, locate, pick
from curate.stages.select.predicates import simple_cut
from report_truth import expected_funnel


def test_funnel_counts_come_from_the_parquet(small_run):
    steps = funnel(load_run(small_run))
    assert [(s.stage_id, s.alive_in, s.kept) for s in steps] == expected_funnel(small_run)
    summary = json.loads((small_run / "summary.json").read_text())
    assert steps[-1].kept == summary["curated"] == pl.read_parquet(small_run / "export" / "shards" / "*.parquet").height
    by_reason = {reason: n for step in steps for reason, n in step.dropped.items()}
    assert by_reason == summary["dropped_by_reason"]
    assert {"short_caption", "duplicate_image", "below_top_fraction"} <= set(by_reason)


def test_histograms_carry_each_stage_cut(small_run):
    found = {h.column: h for h in histograms(load_run(small_run))}
    assert "caption_words" in found and "caption_unique_word_fraction" in found
    words = found["caption_words"]
    assert words.samples + words.missing == 400
    assert [(t.value, t.keeps, t.label) for t in words.thresholds] == [(3, ">=", "short_caption")]
    top = found["caption_unique_word_fraction"].thresholds
    assert [t.label for t in top] == ["below_top_fraction"]
    curated = pl.read_parquet(small_run / "caption_stats" / "*.parquet").filter(
        ~pl.col("uid").is_in(pl.read_parquet(small_run / "dropped.parquet")["uid"].implode()))
    assert curated["caption_unique_word_fraction"].min() >= top[0].value  # the realised cut


def test_simple_predicates_become_cuts_and_others_do_not():
    assert simple_cut("a", "x >= 0.5").value == 0.5
    assert simple_cut("b", "2 < y").keeps == ">"
    assert simple_cut("c", "x > 1 and y < 2") is None


def test_thumbnails_are_sampled_from_few_row_groups(small_run):
    facts = load_run(small_run)
    located = locate(facts)
    assert located.height == 400 and located["row_group"].max() == 0  # 100 rows a file: one group each
    picked = pick(located, per_group=5, max_row_groups=2)
    chosen = located.filter(pl.col("uid").is_in([u for uids in picked.values() for u in uids]))
    assert chosen.select("file", "row_group").unique().height <= 2
    assert all(len(uids) <= 5 for uids in picked.values()) and KEPT in picked
    for group, uids in picked.items():
        assert set(located.filter(pl.col("uid").is_in(uids))["group"]) == {group}


def test_card_beside_the_shards_says_what_is_in_them_and_how_to_load_it(small_run):
    written = write_run_report(small_run)
    assert written.card == small_run / "export" / "shards" / "README.md"
    card = written.card.read_text()
    summary = json.loads((small_run / "summary.json").read_text())
    assert f"{summary['curated']:,} image-text pairs" in card and "## Sources and licences" in card
    assert "unknown: state the licence" in card  # a generated pool has no known licence
    assert "tail_entry_fraction: 0.9" in card and "keep_by: \"caption_words\"" in card
    pattern = card.split('wds.WebDataset("')[1].split('"')[0]
    described = card.split("## Provenance")[0]  # the provenance quotes the pipeline file as run
    assert str(small_run.resolve()) not in described and str(small_run) not in described  # relative to the card
    loaded = list(wds.WebDataset(str(written.card.parent / pattern), shardshuffle=False).to_tuple("__key__", "txt"))
    assert len(loaded) == summary["curated"]
    table = origins(load_run(small_run))
    assert table["ingested"].sum() == 400 and table["curated"].sum() == summary["curated"]


def test_report_is_one_small_self_contained_file(small_run):
    html = write_run_report(small_run).report.read_text()
    assert 'src="http' not in html and "<script" not in html and "<link" not in html
    assert html.count("data:image/webp;base64,") > 10 and html.count("data:image/png;base64,") >= 5
    for section in ("funnel", "scores", "samples", "metaclip", "dedup", "config", "timings", "versions"):
        assert f'id="{section}"' in html
    assert len(html) < 2_000_000


def test_cli_report_adds_eval_tables_and_explains_bad_paths(small_run, tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"checkpoint": "m", "suite": "offline", "average": 0.5, "tasks": [
        {"name": "Fashion-MNIST", "main_metric": "acc1", "main": 0.5}]}))
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(small_run), "--out", str(out), "--eval", str(results),
                                      "--thumbnails", "2"])
    assert result.exit_code == 0, result.output
    assert f"report: {out}" in result.output
    html = out.read_text()
    assert 'id="evaluation"' in html and "Fashion-MNIST" in html and "0.5000" in html
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "not a folder" in missing.output
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "pipeline.yaml").write_text((small_run / "pipeline.yaml").read_text())
    result = CliRunner().invoke(app, ["report", str(unfinished)])
    assert result.exit_code == 2 and "has not finished" in result.output


def test_write_report_refuses_eval_tables_for_a_benchmark(tmp_path):
    (tmp_path / "leaderboard.json").write_text("{}")
    with pytest.raises(Exception, match="benchmark report has its leaderboard"):
        write_report(tmp_path, eval_results=[tmp_path / "x.json"])


def test_plots_read_at_a_glance_with_their_cuts_in_the_legend():
    import io
    import base64

    from PIL import Image

    from curate.report.plots import DPI, histogram_figure, histogram_plot
    from curate.report.scores import Histogram
    from curate.stage import Threshold

    edges = np.linspace(0, 1, 11)
    cut = Threshold("dfn_score", 0.3, ">=", "below_top_fraction")
    balanced = Histogram("dfn_score", "score", edges, np.full(10, 50), np.full(10, 40), 0, [cut])
    figure = histogram_figure(balanced)
    axes = figure.axes[0]
    assert "below_top_fraction: keeps >= 0.3" in [t.get_text() for t in axes.get_legend().get_texts()]
    assert axes.get_yscale() == "linear" and not axes.texts  # no text over the bars
    sizes = [axes.xaxis.label.get_size(), axes.yaxis.label.get_size(), axes.get_xticklabels()[0].get_size()]
    assert min(sizes) * DPI / 72 >= 11  # at least 11 px
    swamped = Histogram("dfn_score", "score", edges, np.full(10, 2), np.full(10, 400), 0, [cut])
    assert histogram_figure(swamped).axes[0].get_yscale() == "symlog"
    png = Image.open(io.BytesIO(base64.b64decode(histogram_plot(balanced).split(",", 1)[1])))
    assert png.width >= 700 and png.height >= 380  # about twice the 368 x 200 of before


def test_counts_read_as_words_and_large_groups_say_how_many_are_not_shown(small_run):
    from types import SimpleNamespace

    from curate.report.dedup import MEMBERS, _findings
    from curate.report.render import _ENVIRONMENT, render
    from curate.report.run_report import _dedup_section, run_context

    assert _ENVIRONMENT.filters["count"](1, "sample") == "1 sample"
    assert _ENVIRONMENT.filters["count"](2000, "sample") == "2,000 samples"
    facts = load_run(small_run)
    assert not re.search(r"\b1 samples\b", write_run_report(small_run).report.read_text())
    found = pl.DataFrame({"uid": [f"u{i:03d}" for i in range(40)], "group": [0] * 30 + [1] * 10,
                          "duplicate_of": [None] + ["u000"] * 29 + [None] + ["u030"] * 9,
                          "similarity": [None] + [0.99] * 29 + [None] + [0.98] * 9})
    findings = _findings(SimpleNamespace(details=lambda _: {}), SimpleNamespace(id="near", name="dedup_near"), found)
    assert findings.more == [30 - MEMBERS, 10 - MEMBERS] and all(len(g) == MEMBERS for g in findings.groups)
    context = run_context(facts) | {"dedup": [_dedup_section(facts, findings, {})], "card": "README.md"}
    html = render("run.html.j2", context)
    assert f'data-more="{30 - MEMBERS}">+{30 - MEMBERS} more' in html and "1 group of 30" in html


def test_card_front_matter_and_a_stated_licence_that_redoes_nothing(tmp_path):
    import yaml

    from conftest import write_pipeline, write_pool
    from curate import load_pipeline, run_pipeline

    write_pool(tmp_path / "pool", shards=2, per_shard=10)
    stages = [{"stage": "export", "params": {"samples_per_shard": 100}}]
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run", stages=stages)
    run_pipeline(load_pipeline(pipeline))
    card = write_run_report(tmp_path / "run").card.read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["license"] == "unknown" and front["size_categories"] == ["n<1K"]
    assert "zero-shot-image-classification" in front["task_categories"]
    raw = yaml.safe_load(pipeline.read_text())
    raw["stages"][0]["params"]["licence"] = "CC-BY-4.0"
    pipeline.write_text(yaml.safe_dump(raw))
    summary = run_pipeline(load_pipeline(pipeline))
    assert all(stage["reused"] == stage["shards"] for stage in summary["stages"])  # a licence changes no output
    card = write_run_report(tmp_path / "run").card.read_text()
    assert yaml.safe_load(card.split("---")[1])["license"] == "cc-by-4.0"
    assert "| CC-BY-4.0 | stated in the pipeline" in card
