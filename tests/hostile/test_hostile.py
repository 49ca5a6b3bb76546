"""The hostile-input corpus through real runs: every bad sample becomes a recorded drop reason,
every bad file a warning or a clear error naming it; no bad sample stops a run, nothing is lost,
and nothing is written outside the run directory."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from conftest import exported_members
from corpus import CAPTION, MAX_IMAGE_BYTES, image_kinds, sample_tar, tar_kinds
from curate import InputError, PipelineConfig, ShardStage, register, run_pipeline

PIPELINE_TAIL = [
    {"stage": "caption_stats"},
    {"stage": "basic_filter", "params": {"min_side": 8}},
    {"stage": "clip_score", "params": {"name": "tiny", "device": "cpu", "batch_size": 16}},
    {"stage": "export", "params": {"samples_per_shard": 10}},
]


def _files(root: Path, skip: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and skip not in p.parents}


def _ingested(run: Path, stage: str) -> list[dict]:
    return pq.read_table(sorted((run / stage).glob("*.parquet")), columns=["uid", "key", "drop_reason"]).to_pylist()


def test_every_hostile_sample_is_dropped_with_its_reason_and_the_run_stays_in_its_folder(tmp_path):
    box = tmp_path / "box"
    for folder in ("inputs", "cwd", "home", "tmp"):
        (box / folder).mkdir(parents=True)
    expected = sample_tar(box / "inputs" / "hostile.tar")
    run = box / "run"
    pipeline = {"name": "hostile", "run_dir": str(run), "stages": [
        {"stage": "ingest_webdataset", "params": {"inputs": str(box / "inputs" / "*.tar"),
                                                  "max_image_bytes": MAX_IMAGE_BYTES}}, *PIPELINE_TAIL]}
    (box / "inputs" / "p.yaml").write_text(yaml.safe_dump(pipeline))
    before = _files(box, run)
    env = {**os.environ, "HOME": str(box / "home"), "TMPDIR": str(box / "tmp")}
    done = subprocess.run([sys.executable, "-m", "curate", "run", str(box / "inputs" / "p.yaml"), "--quiet",
                           "--no-report"], cwd=box / "cwd", env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    rows = _ingested(run, "ingest_webdataset")
    assert Counter((r["key"], r["drop_reason"]) for r in rows) == Counter(expected)
    assert len(expected) >= 30 + 9  # 30 kinds of bad sample at least, beside the good ones
    assert len({r["uid"] for r in rows}) == len(rows)
    assert _files(box, run) == before, "something was written outside the run directory"

    curated = exported_members(run)
    dropped = pq.read_table(run / "dropped.parquet", columns=["uid"]).column(0).to_pylist()
    assert sorted([*curated, *dropped]) == sorted(r["uid"] for r in rows)  # nothing lost, nothing twice
    kept_kinds = {kind for kind, (_, _, reason) in image_kinds().items() if reason is None} - {"one_pixel"}
    assert len(curated) >= len(kept_kinds)  # every odd but valid raster (CMYK, 16-bit, ...) scored and exported
    for members in curated.values():
        image_ext = next(ext for ext in members if ext in ("jpg", "png", "webp"))
        assert Image.open(io.BytesIO(members[image_ext])).convert("RGB").size[0] > 0


def _tar_run(tmp_path: Path, pattern: str) -> PipelineConfig:
    return PipelineConfig(name="tars", run_dir=str(tmp_path / "run"), executor={"kind": "local"}, stages=[
        {"stage": "ingest_webdataset", "params": {"inputs": pattern}},
        {"stage": "export", "params": {"samples_per_shard": 10}}])


def test_cut_empty_and_compressed_tars_give_what_they_hold_with_a_warning(tmp_path):
    kinds = tar_kinds(tmp_path / "tars")
    summary = run_pipeline(_tar_run(tmp_path, str(tmp_path / "tars" / "*.tar")))
    warnings = summary["stages"][0]["warnings"]
    rows = pq.read_table(tmp_path / "run" / "ingest_webdataset" / "cut.parquet").to_pylist()
    assert rows[-1]["drop_reason"] == "truncated_tar" and all(r["drop_reason"] is None for r in rows[:-1])
    for name, (count, warning) in kinds.items():
        shard = pq.read_table(tmp_path / "run" / "ingest_webdataset" / name.replace(".tar", ".parquet"))
        if name != "cut.tar":
            assert shard.num_rows == count, name
        named = [w for w in warnings if f"/{name}:" in w]
        assert (len(named) == 1 and warning in named[0]) if warning else not named, (name, warnings)
    assert summary["ingested"] == summary["curated"] + summary["dropped"]


def test_a_file_that_is_no_tar_is_a_clear_error_naming_it(tmp_path):
    (tmp_path / "tars").mkdir()
    (tmp_path / "tars" / "noise.tar").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(InputError, match=r"noise\.tar is not a readable tar archive"):
        run_pipeline(_tar_run(tmp_path, str(tmp_path / "tars" / "*.tar")))


def _table_run(tmp_path: Path, table: pa.Table, **params) -> PipelineConfig:
    pq.write_table(table, tmp_path / "table.parquet")
    return PipelineConfig(name="table", run_dir=str(tmp_path / "run"), executor={"kind": "local"}, stages=[
        {"stage": "ingest_table", "params": {"inputs": str(tmp_path / "table.parquet"), **params}},
        {"stage": "export", "params": {"samples_per_shard": 10}}])


def test_image_paths_may_not_leave_the_tables_folder_or_name_other_schemes(tmp_path):
    secret = tmp_path.parent / f"{tmp_path.name}-secret.jpg"
    secret.write_bytes(image_kinds()["jpeg"][1])
    (tmp_path / "inside.jpg").write_bytes(image_kinds()["jpeg"][1])
    paths = {"inside": "inside.jpg", "absolute": str(secret), "climbs": f"../{secret.name}",
             "file_url": secret.as_uri(), "ftp_url": "ftp://example.invalid/a.jpg", "missing": "nowhere.jpg"}
    table = pa.table({"key": list(paths), "path": list(paths.values()), "caption": [CAPTION.decode()] * len(paths)})
    run_pipeline(_table_run(tmp_path, table, image_path_column="path"))
    reasons = {r["key"]: r["drop_reason"] for r in _ingested(tmp_path / "run", "ingest_table")}
    assert reasons == {"inside": None, "absolute": "path_outside_folder", "climbs": "path_outside_folder",
                       "file_url": "unsupported_url_scheme", "ftp_url": "unsupported_url_scheme",
                       "missing": "missing_image"}

    allowed = _table_run(tmp_path, table, image_path_column="path", image_url_schemes=["file"])
    run_pipeline(allowed, force=True)
    reasons = {r["key"]: r["drop_reason"] for r in _ingested(tmp_path / "run", "ingest_table")}
    assert reasons["absolute"] is reasons["climbs"] is reasons["file_url"] is None  # allowed explicitly


@pytest.mark.parametrize("table, message", [
    (pa.table({"key": ["a"], "text": ["a red square"], "image": [b"x"]}), "has no caption column 'caption'"),
    (pa.table({"key": ["a"], "caption": ["a red square"]}), "has neither image bytes"),
])
def test_a_table_of_the_wrong_schema_is_a_clear_error(tmp_path, table, message):
    with pytest.raises(InputError, match=message):
        run_pipeline(_table_run(tmp_path, table))


def test_hostile_urls_are_dropped_with_their_reasons(tmp_path, server):
    base = server
    urls = {"ok": (f"{base}/img/1.jpg", None), "times_out": (f"{base}/slow.jpg", "timeout"),
            "redirects_forever": (f"{base}/loop.jpg", "redirect_loop"),
            "answers_html": (f"{base}/page.html", "not_an_image"),
            "file": ((tmp_path / "x.jpg").as_uri(), "unsupported_url_scheme"),
            "javascript": ("javascript:alert(1)", "unsupported_url_scheme"),
            "data": ("data:image/png;base64,AAAA", "unsupported_url_scheme"), "empty": ("", "unsupported_url_scheme")}
    pq.write_table(pa.table({"key": list(urls), "url": [u for u, _ in urls.values()],
                             "caption": [CAPTION.decode()] * len(urls)}), tmp_path / "urls.parquet")
    config = PipelineConfig(name="urls", run_dir=str(tmp_path / "run"), executor={"kind": "local"}, stages=[
        {"stage": "ingest_urls", "params": {"inputs": str(tmp_path / "urls.parquet"), "timeout": 1}},
        {"stage": "export", "params": {"samples_per_shard": 10}}])
    run_pipeline(config)
    reasons = {r["key"]: r["drop_reason"] for r in _ingested(tmp_path / "run", "ingest_urls")}
    assert reasons == {key: reason for key, (_, reason) in urls.items()}


@register
class _HostileScores(ShardStage):
    """A scorer whose scores are sometimes NaN or missing (caption_stats' columns)."""

    name = "test_hostile_scores"
    output_schema = "caption_stats.v1"
    input_columns = ("uid",)

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        index = range(batch.num_rows)
        scores = [float("nan") if i % 3 == 0 else None if i % 3 == 1 else 0.9 for i in index]
        columns = {name: pa.nulls(batch.num_rows, field.type) for name, field in zip(self.schema().names, self.schema())}
        columns["uid"] = batch.column("uid")
        columns["caption_alpha_fraction"] = pa.array(scores, pa.float32())
        return pa.table(columns, schema=self.schema())


@pytest.mark.parametrize("stage, params, reason", [
    ("select", {"filters": {"low_alpha": "caption_alpha_fraction >= 0.5"}}, "low_alpha"),
    ("select_top_fraction", {"column": "caption_alpha_fraction", "fraction": 1.0}, "missing_score"),
])
def test_nan_and_missing_scores_are_dropped_not_kept(tmp_path, pool, stage, params, reason):
    config = PipelineConfig(name="scores", run_dir=str(tmp_path / "run"), executor={"kind": "local"}, stages=[
        {"stage": "ingest_webdataset", "params": {"inputs": str(pool / "*.tar")}},
        {"stage": "test_hostile_scores"}, {"stage": stage, "params": params}])
    run_pipeline(config)
    scores = pq.read_table(sorted((tmp_path / "run" / "test_hostile_scores").glob("*.parquet"))).to_pylist()
    decided = pq.read_table(sorted((tmp_path / "run" / stage).glob("*.parquet"))).to_pylist()
    alive = {r["uid"] for r in _ingested(tmp_path / "run", "ingest_webdataset") if r["drop_reason"] is None}
    for score, decision in zip(scores, decided):
        if score["uid"] in alive:
            good = score["caption_alpha_fraction"] == pytest.approx(0.9)
            assert decision["drop_reason"] == (None if good else reason), score
