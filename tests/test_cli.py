"""The `curate` command line, through typer's CliRunner (in process, local executor)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from curate import registered_stages
from curate.cli import app
from conftest import CAPTIONS, write_pipeline, write_pool

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SHARDS, PER_SHARD = 2, 12


def _invoke(*args: str, width: int = 80):
    return CliRunner().invoke(app, [str(a) for a in args], env={"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": str(width)})


def _text(result) -> str:
    """stdout and stderr without colour codes."""
    return _ANSI.sub("", result.stdout + result.stderr)


def _flat(text: str) -> str:
    """Text with all whitespace removed: rich wraps long lines (paths) anywhere."""
    return "".join(text.split())


def _words(caption: str) -> int:
    return len(caption.split())


@pytest.fixture
def finished_run(tmp_path) -> Path:
    """A run of the default test pipeline, made through `curate run`."""
    write_pool(tmp_path / "pool", shards=SHARDS, per_shard=PER_SHARD)
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run")
    result = _invoke("run", pipeline, "--quiet")
    assert result.exit_code == 0, _text(result)
    return tmp_path / "run"


# ---------------------------------------------------------------- help


@pytest.mark.parametrize("command, expected", [
    (["run"], ["PIPELINE", "--executor", "--workers", "--run-dir", "--force", "--no-force", "--overwrite", "--quiet",
               "--strict", "--no-report"]),
    (["select"], ["RUN_DIR", "--where", "--name", "--force", "--no-force", "--report"]),
    (["stages"], ["NAME"]),
    (["status"], ["RUN_DIR", "shards"]),
    (["scan"], ["RUN_DIR", "--where", "--columns", "--limit", "--output"]),
    (["pools", "build"], ["NAME", "--out", "--n", "--samples-per-shard", "--seed", "--image-size",
                          "--format", "--workers"]),
    (["bench", "ingest"], ["--n", "--executors", "--workers", "--work-dir", "--samples-per-shard"]),
    (["bench", "score"], ["--models", "--n", "--image-size", "--batch-size", "--device", "--decode-threads"]),
    (["bench", "metaclip"], ["--entries", "--match-captions", "--n", "--t", "--executors", "--workers"]),
    (["bench", "dedup"], ["--n", "--clusters", "--methods", "--work-dir"]),
    (["train"], ["--data", "--out", "--model", "--samples-seen", "--batch-size", "--accumulate", "--lr", "--loss",
                 "--seed", "--init", "--checkpoint-every", "--device", "--stop-after-steps", "--ray-workers",
                 "--ray-address"]),
    (["bench", "train"], ["--model", "--batch-size", "--steps", "--skip", "--image-size", "--device", "--workers",
                          "--work-dir"]),
    (["metadata", "build"], ["--out", "--wordnet", "--unigrams", "--min-frequency", "--extra"]),
    (["eval"], ["CHECKPOINT", "--suite", "--data", "--tasks", "--model", "--out", "--device", "--decode-threads"]),
    (["benchmark"], ["BENCH", "--out", "--quiet"]),
    (["pools", "build"], ["--noise", "--start"]),
])
def test_help_mentions_key_options(command, expected):
    result = _invoke(*command, "--help", width=120)  # a narrow terminal shortens long option names
    assert result.exit_code == 0, _text(result)
    text = _text(result)
    assert "Usage" in text
    for option in expected:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text, re.IGNORECASE), (option, text)


def test_version():
    from importlib.metadata import version

    result = _invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"curate {version('curate')}"


def test_top_level_help_lists_every_command():
    result = _invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "status", "scan", "select", "stages", "pools", "metadata", "bench", "train", "eval",
                    "benchmark"):
        assert re.search(rf"\b{command}\b", _text(result)), command


# ---------------------------------------------------------------- run


def test_run_quiet_prints_summary_counts(tmp_path):
    write_pool(tmp_path / "pool", shards=SHARDS, per_shard=PER_SHARD)
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run")
    result = _invoke("run", pipeline, "--quiet")
    assert result.exit_code == 0, _text(result)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    total = SHARDS * PER_SHARD
    assert summary["ingested"] == total
    assert summary["curated"] + summary["dropped"] == total and summary["curated"] > 0
    match = re.search(r"ingested\s+([\d,]+)\s+curated\s+([\d,]+)\s+dropped\s+([\d,]+)", result.stdout)
    assert match, result.stdout
    assert [int(g.replace(",", "")) for g in match.groups()] == [
        summary["ingested"], summary["curated"], summary["dropped"]]
    for stage in ("ingest_webdataset", "caption_stats", "select", "select_top_fraction", "export"):
        assert stage in result.stdout
    assert "empty_caption" in result.stdout and "too_few_words" in result.stdout
    assert _flat(str(tmp_path / "run" / "dropped.parquet")) in _flat(result.stdout)
    # --quiet: no progress bars on stderr
    assert "shards" not in result.stderr

    again = _invoke("run", pipeline, "--quiet")
    assert again.exit_code == 0, _text(again)
    assert "reused" in again.stdout


def test_run_dir_option_overrides_the_pipeline_file(tmp_path):
    write_pool(tmp_path / "pool", shards=1, per_shard=6)
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "ignored")
    result = _invoke("run", pipeline, "--quiet", "--run-dir", tmp_path / "elsewhere")
    assert result.exit_code == 0, _text(result)
    assert (tmp_path / "elsewhere" / "summary.json").exists()
    assert not (tmp_path / "ignored").exists()


def test_run_with_unknown_stage_exits_2_listing_known_stages(tmp_path):
    write_pool(tmp_path / "pool", shards=1, per_shard=4)
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run",
                              stages=[{"stage": "caption_statz"}])
    result = _invoke("run", pipeline, "--quiet")
    assert result.exit_code == 2, _text(result)
    text = _flat(_text(result))
    assert "unknownstage'caption_statz'" in text
    for name in ("caption_stats", "ingest_webdataset", "ingest_table", "ingest_folder", "select", "export"):
        assert name in text, name
    assert set(registered_stages()) <= set(re.findall(r"[a-z_]+", _text(result)))
    assert "Traceback" not in _text(result)


def test_stages_lists_every_stage_and_describes_each_parameter():
    listed = _text(_invoke("stages"))
    assert set(registered_stages()) <= set(re.findall(r"[a-z_]+", listed))
    for name, cls in registered_stages().items():
        if not cls.__module__.startswith("curate."):
            continue  # stages other tests register
        result = _invoke("stages", name, width=400)  # a table row a line
        assert result.exit_code == 0, _text(result)
        shown = _flat(_text(result))
        for field, info in cls.Params.model_fields.items():
            assert info.description, f"{name}.{field} has no description"
            assert _flat(field) in shown and _flat(info.description)[:20] in shown, (name, field)
    fraction = _flat(_text(_invoke("stages", "select_top_fraction", width=400)))
    assert "missing│count|exclude│count│" in fraction and "fraction│float│required│" in fraction
    assert "didyoumean'select'" in _flat(_text(_invoke("stages", "selekt")))


def test_a_misspelt_parameter_is_named_with_the_valid_ones_and_no_pydantic_dump(tmp_path):
    write_pool(tmp_path / "pool", shards=1, per_shard=4)
    stages = [{"stage": "caption_stats"},
              {"stage": "select_top_fraction", "params": {"column": "caption_words", "fractoin": 0.5}},
              {"stage": "export", "params": {"samples_per_shard": "many"}}]
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run", stages=stages)
    text = _text(_invoke("run", pipeline, "--quiet"))
    assert "unknown parameter 'fractoin'; did you mean 'fraction'?" in " ".join(text.split())
    assert "fraction: required, not given" in " ".join(text.split()) and "curatestagesselect_top_fraction" in _flat(text)
    assert "pydantic" not in text and "errors.pydantic.dev" not in text and "For further information" not in text
    raw = yaml.safe_load(pipeline.read_text())
    raw["stages"][2]["parms"] = raw["stages"][2].pop("params")
    pipeline.write_text(yaml.safe_dump(raw))
    text = " ".join(_text(_invoke("run", pipeline, "--quiet")).split())
    assert "unknown parameter 'parms'; did you mean 'params'?" in text and "pydantic" not in text


def test_run_with_input_that_is_not_a_tar_exits_2_naming_it(tmp_path):
    bad = tmp_path / "inputs" / "x.tar"
    bad.parent.mkdir()
    bad.write_bytes(b"these are garbage bytes and certainly not a tar archive\n" * 40)
    pipeline = write_pipeline(tmp_path / "p.yaml", str(bad), tmp_path / "run")
    result = _invoke("run", pipeline, "--quiet")
    assert result.exit_code == 2, _text(result)
    assert "error" in result.stderr
    assert _flat(str(bad)) in _flat(result.stderr)
    assert "Traceback" not in _text(result)
    assert not (tmp_path / "run" / "summary.json").exists()


def test_run_with_missing_pipeline_file_exits_2(tmp_path):
    result = _invoke("run", tmp_path / "nope.yaml", "--quiet")
    assert result.exit_code == 2
    assert "nope.yaml" in _flat(result.stderr)


def test_run_with_invalid_params_shows_the_whole_validation_message(tmp_path):
    write_pool(tmp_path / "pool", shards=1, per_shard=4)
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run",
                              stages=[{"stage": "export", "params": {"samples_per_shrad": 5}}])
    result = _invoke("run", pipeline, "--quiet")
    assert result.exit_code == 2, _text(result)
    text = _flat(result.stderr)
    assert "unknownparameter'samples_per_shrad';didyoumean'samples_per_shard'?" in text
    assert "[type=extra_forbidden" not in text


# ---------------------------------------------------------------- scan and status


def test_scan_where_prints_matching_row_count(finished_run):
    per_cycle = SHARDS * PER_SHARD // len(CAPTIONS)
    expected = sum(1 for c in CAPTIONS if c and _words(c) >= 3) * per_cycle
    result = _invoke("scan", finished_run, "--where", "caption_words >= 3")
    assert result.exit_code == 0, _text(result)
    assert re.search(rf"(?m)^{expected} rows\s*$", result.stdout), result.stdout
    assert "uid" in result.stdout and "kept" in result.stdout

    everything = _invoke("scan", finished_run, "--limit", "3")
    assert everything.exit_code == 0, _text(everything)
    assert re.search(rf"(?m)^{SHARDS * PER_SHARD} rows\s*$", everything.stdout)


def test_scan_output_writes_the_filtered_frame(finished_run, tmp_path):
    out = tmp_path / "out.parquet"
    result = _invoke("scan", finished_run, "--where", "caption_words >= 3", "--output", out)
    assert result.exit_code == 0, _text(result)
    assert "wrote" in result.stdout
    frame = pl.read_parquet(out)
    per_cycle = SHARDS * PER_SHARD // len(CAPTIONS)
    assert frame.height == sum(1 for c in CAPTIONS if c and _words(c) >= 3) * per_cycle
    assert (frame["caption_words"] >= 3).all()
    for column in ("uid", "caption", "caption_words", "kept", "drop_reason", "dropped_by"):
        assert column in frame.columns

    picked = tmp_path / "picked.parquet"
    result = _invoke("scan", finished_run, "--where", "NOT kept", "--columns", "uid, drop_reason",
                     "--output", picked)
    assert result.exit_code == 0, _text(result)
    frame = pl.read_parquet(picked)
    assert frame.columns == ["uid", "drop_reason"]
    summary = json.loads((finished_run / "summary.json").read_text())
    assert frame.height == summary["dropped"]
    assert frame["drop_reason"].null_count() == 0


def test_scan_with_bad_predicate_exits_2(finished_run):
    result = _invoke("scan", finished_run, "--where", "caption_words >=")
    assert result.exit_code == 2, _text(result)
    assert "error" in result.stderr


def test_scan_with_unknown_column_exits_2_naming_it(finished_run):
    result = _invoke("scan", finished_run, "--where", "no_such_column > 3")
    assert result.exit_code == 2, (result.exception, _text(result))
    assert "no_such_column" in result.stderr
    typo = " ".join(_text(_invoke("scan", finished_run, "--where", "caption_word > 3")).split())
    assert 'unable to find column "caption_word"' in typo and 'Did you mean "caption_words"?' in typo
    assert "Resolved plan" not in typo and "FAILED HERE" not in typo


def test_scan_of_a_folder_that_is_not_a_run_exits_2(tmp_path):
    result = _invoke("scan", tmp_path)
    assert result.exit_code == 2
    assert "notarundirectory" in _flat(_text(result))


def test_status_prints_shards_done_per_stage(finished_run):
    result = _invoke("status", finished_run)
    assert result.exit_code == 0, _text(result)
    lines = {line.split()[1]: line for line in result.stdout.splitlines()
             if len(line.split()) > 2 and line.split()[1] in (
                 "ingest_webdataset", "caption_stats", "select", "select_top_fraction", "export")}
    assert set(lines) == {"ingest_webdataset", "caption_stats", "select", "select_top_fraction", "export"}
    for stage in ("ingest_webdataset", "caption_stats", "select", "select_top_fraction"):
        assert f"{SHARDS}/{SHARDS}" in lines[stage], lines[stage]
    assert "1/1" in lines["export"]

    (finished_run / "select" / "_done" / "pool-00001.json").unlink()
    partial = _invoke("status", finished_run)
    assert partial.exit_code == 0
    select = next(line for line in partial.stdout.splitlines() if " select " in line)
    assert f"{SHARDS - 1}/{SHARDS}" in select


def test_status_of_a_folder_that_is_not_a_run_exits_2(tmp_path):
    result = _invoke("status", tmp_path / "missing")
    assert result.exit_code == 2
    assert "notarundirectory" in _flat(_text(result))


# ---------------------------------------------------------------- pools and bench


def test_pools_build_synthetic_then_rerun_is_already_built(tmp_path):
    out = tmp_path / "pool"
    args = ["pools", "build", "synthetic", "--n", "30", "--samples-per-shard", "10", "--out", out,
            "--workers", "1"]
    result = _invoke(*args)
    assert result.exit_code == 0, _text(result)
    tars = sorted(p.name for p in out.glob("*.tar"))
    assert tars == ["00000.tar", "00001.tar", "00002.tar"]
    assert "30" in result.stdout and "3 shards" in result.stdout
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    again = _invoke(*args)
    assert again.exit_code == 0, _text(again)
    assert "already built" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps

    # the pool ingests: 30 samples in 3 shards
    pipeline = write_pipeline(tmp_path / "p.yaml", str(out / "*.tar"), tmp_path / "run",
                              stages=[{"stage": "export", "params": {"samples_per_shard": 100}}])
    ran = _invoke("run", pipeline, "--quiet")
    assert ran.exit_code == 0, _text(ran)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["ingested"] == 30


def test_pools_build_with_other_settings_rebuilds(tmp_path):
    out = tmp_path / "pool"
    base = ["pools", "build", "synthetic", "--samples-per-shard", "10", "--out", out, "--workers", "1"]
    assert _invoke(*base, "--n", "30").exit_code == 0
    smaller = _invoke(*base, "--n", "20")
    assert smaller.exit_code == 0, _text(smaller)
    assert "already built" not in smaller.stdout
    assert sorted(p.name for p in out.glob("*.tar")) == ["00000.tar", "00001.tar"]


def test_pools_build_unknown_pool_exits_2(tmp_path):
    result = _invoke("pools", "build", "imagenet", "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert "synthetic" in result.stderr
    assert not (tmp_path / "x").exists()


def test_bench_ingest_local_on_a_tiny_pool(tmp_path):
    result = _invoke("bench", "ingest", "--n", "20", "--executors", "local", "--samples-per-shard", "10",
                     "--work-dir", tmp_path / "bench")
    assert result.exit_code == 0, _text(result)
    assert "samples/s" in result.stdout
    assert re.search(r"local\s*[│|]\s*1\s*[│|]", result.stdout), result.stdout
    assert len(list((tmp_path / "bench" / "pool-20").glob("*.tar"))) == 2
    summary = json.loads((tmp_path / "bench" / "run-local-20" / "summary.json").read_text())
    assert summary["ingested"] == 20


def test_bench_download_compares_with_img2dataset_on_a_tiny_pool(tmp_path):
    result = _invoke("bench", "download", "--n", "30", "--executors", "local", "--workers", "1",
                     "--work-dir", tmp_path / "bench")
    assert result.exit_code == 0, _text(result)
    assert re.search(r"img2dataset\s*[│|]\s*1\s*[│|]\s*30\s*[│|]", result.stdout), result.stdout
    assert re.search(r"\(local\)", result.stdout) and "x" in result.stdout
    summary = json.loads((tmp_path / "bench" / "run-download-local-30" / "summary.json").read_text())
    assert summary["curated"] == 30


def test_bench_score_puts_end_to_end_next_to_model_alone(tmp_path):
    pytest.importorskip("open_clip")
    result = _invoke("bench", "score", "--n", "40", "--models", "curate-tiny-vit", "--batch-size", "16",
                     "--image-size", "48", "--device", "cpu", "--work-dir", tmp_path / "bench")
    assert result.exit_code == 0, _text(result)
    assert re.search(r"curate-tiny-vit\s*[│|]\s*40\s*[│|]\s*[\d,]+\s*[│|]\s*[\d,]+\s*[│|]\s*\d+%", result.stdout), result.stdout
    summary = json.loads((tmp_path / "bench" / "run-score-curate-tiny-vit" / "summary.json").read_text())
    assert [stage["stage"] for stage in summary["stages"]] == ["ingest_webdataset", "clip_score"]


def test_bench_train_compares_with_open_clips_trainer(tmp_path):
    result = _invoke("bench", "train", "--batch-size", "16", "--steps", "6", "--skip", "2", "--image-size", "32",
                     "--device", "cpu", "--workers", "1", "--work-dir", tmp_path / "bench")
    assert result.exit_code == 0, _text(result)
    for trainer in ("curate train", "open_clip_train"):
        assert re.search(rf"{trainer}\s*[│|]\s*[\d,.]+", result.stdout), result.stdout
    assert re.search(r"ratio curate / open_clip: \d+\.\d\d", result.stdout)
    assert len((tmp_path / "bench" / "train-curate" / "metrics.jsonl").read_text().splitlines()) == 6


def test_bench_metaclip_compares_matchers_and_balances_on_a_tiny_pool(tmp_path):
    result = _invoke("bench", "metaclip", "--entries", "3000", "--match-captions", "300", "--n", "1200",
                     "--t", "20", "--executors", "local", "--work-dir", tmp_path / "bench")
    assert result.exit_code == 0, _text(result)
    assert re.search(r"curate EntryMatcher\s*[│|]\s*[\d,]+\s*[│|]\s*[\d.]+x\s*[│|]\s*True", result.stdout), result.stdout
    summary = json.loads((tmp_path / "bench" / "run-metaclip-local-1" / "summary.json").read_text())
    assert [stage["stage"] for stage in summary["stages"]] == ["ingest_table", "metaclip_match", "metaclip_balance"]
    assert summary["ingested"] == 1200 and 0 < summary["curated"] < 1200


def test_bench_dedup_reports_phases_memory_and_recall_on_planted_embeddings(tmp_path):
    result = _invoke("bench", "dedup", "--n", "3000", "--clusters", "20", "--work-dir", tmp_path / "bench")
    assert result.exit_code == 0, _text(result)
    assert re.search(r"semdedup\s*[┃│|]\s*dedup_near", result.stdout), result.stdout
    assert re.search(r"precision\s*[│|]\s*1\.0000\s*[│|]\s*1\.0000", result.stdout), result.stdout
    assert re.search(r"k-means s\s*[│|]\s*[\d.]+\s*[│|]\s*[│|]", result.stdout), result.stdout
    found = pl.read_parquet(tmp_path / "bench" / "dedup-semdedup-3000" / "duplicates.parquet")
    assert found["duplicate_of"].null_count() < len(found)


def test_train_stops_and_continues_from_the_command_line(tmp_path):
    from conftest import write_pool

    write_pool(tmp_path / "pool", shards=2, per_shard=20)
    args = ["train", "--data", tmp_path / "pool", "--out", tmp_path / "run", "--samples-seen", "64",
            "--batch-size", "8", "--warmup", "2", "--checkpoint-every", "2", "--device", "cpu"]
    first = _invoke(*args, "--stop-after-steps", "3")
    assert first.exit_code == 0 and "step 3 of 8" in first.stdout, _text(first)
    assert not (tmp_path / "run" / "open_clip_pytorch_model.bin").exists()
    second = _invoke(*args)
    assert second.exit_code == 0 and "step 8 of 8" in second.stdout, _text(second)
    assert (tmp_path / "run" / "open_clip_pytorch_model.bin").exists()
    refused = _invoke(*args[:-2], "--lr", "0.1")
    assert refused.exit_code != 0 and "other settings (lr)" in _text(refused)


def test_train_checks_settings_first_notes_what_it_changes_and_knows_a_finished_run(tmp_path, monkeypatch):
    from conftest import write_pool

    write_pool(tmp_path / "pool", shards=1, per_shard=20)
    monkeypatch.chdir(tmp_path)
    args = ["train", "--out", "run", "--samples-seen", "20", "--batch-size", "8", "--warmup", "100", "--device", "cpu"]
    bad = _invoke(*args, "--data", "pool", "--model", "no-such-model")
    assert bad.exit_code != 0 and "unknown open_clip model 'no-such-model'" in _text(bad)
    assert not (tmp_path / "run" / "train_config.json").exists()  # nothing recorded for a run that never started
    first = _invoke(*args, "--data", "pool")
    text = " ".join(_text(first).split())
    assert first.exit_code == 0, text
    assert "samples seen: 20 asked, 24 trained (3 whole batches of 8)" in text
    assert "warmup: 100 steps asked, 1 used (at most 25% of the 3 steps)" in text
    again = _invoke(*args, "--data", str(tmp_path / "pool") + "/")  # the same folder, written otherwise
    assert again.exit_code == 0 and "already complete" in _text(again), _text(again)
    invalid = _invoke(*args, "--data", "pool", "--loss", "hinge")
    assert invalid.exit_code == 2 and "loss: Input should be 'clip' or 'siglip'" in " ".join(_text(invalid).split())


def test_pipeline_yaml_written_to_the_run_matches_the_file(finished_run):
    written = yaml.safe_load((finished_run / "pipeline.yaml").read_text())
    assert [s["stage"] for s in written["stages"]] == [
        "ingest_webdataset", "caption_stats", "select", "select_top_fraction", "export"]


def test_pools_build_datacomp_like_untrained_and_missing_weights(tmp_path):
    args = ["pools", "build", "datacomp-like", "--n", "120", "--samples-per-shard", "50", "--base", "synthetic",
            "--limit", "20", "--workers", "1", "--out"]
    result = _invoke(*args, tmp_path / "pool", "--weights", "none")
    assert result.exit_code == 0, _text(result)
    assert "120 samples in 3 shards" in result.stdout
    assert len(list((tmp_path / "pool" / "metadata").glob("*.npz"))) == 3
    missing = _invoke(*args, tmp_path / "other", "--weights", str(tmp_path / "no-dfn"))
    assert missing.exit_code != 0 and "curate train-dfn" in _text(missing)
