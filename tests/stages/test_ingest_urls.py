"""URL ingest against a real HTTP server on 127.0.0.1: good images and every kind of bad URL.
The counts add up: urls = downloaded + failed by reason."""

from __future__ import annotations

import math
from collections import Counter
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import InputError, load_pipeline, run_pipeline
from curate.config import ServeConfig
from curate.io.serve import free_port
from conftest import SLOW_SECONDS, PoolHandler, jpeg_bytes, output_files, png_bytes, write_pipeline

def _url_list(tmp_path, base: str) -> tuple[list[str], dict[str, str]]:
    """A URL list; returns the urls and the expected drop reason per key (None: downloaded)."""
    expected = {f"good{i}": None for i in range(6)}
    urls = {f"good{i}": f"{base}/img/{i}.{'jpg' if i % 2 else 'png'}" for i in range(6)}
    bad = {"missing": ("/missing.jpg", "http_404"), "slow": ("/slow.jpg", "timeout"),
           "page": ("/page.html", "not_an_image"), "corrupt": ("/corrupt.jpg", "corrupt_image"),
           "big": ("/big.jpg", "image_too_many_bytes"), "tiny": ("/tiny.jpg", "image_too_small"),
           "loop": ("/loop.jpg", "redirect_loop"), "huge": ("/huge-garbage.jpg", "image_too_many_bytes")}
    for key, (path, reason) in bad.items():
        urls[key], expected[key] = base + path, reason
    urls["refused"], expected["refused"] = f"http://127.0.0.1:{free_port()}/x.jpg", "connection_refused"
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(9))
    urls["local"], expected["local"] = secret.as_uri(), "unsupported_url_scheme"
    keys = sorted(urls)
    table = pa.table({"key": keys, "url": [urls[k] for k in keys],
                      "caption": [f"a picture called {k}" for k in keys], "site": ["test"] * len(keys)})
    pq.write_table(table, tmp_path / "urls.parquet")
    return [urls[k] for k in keys], expected


def _pipeline(tmp_path, inputs: str, run_dir, **params):
    stages = [{"stage": "export", "params": {"samples_per_shard": 4}}]
    path = write_pipeline(tmp_path / "p.yaml", inputs, run_dir, stages=stages)
    config = load_pipeline(path)
    entry = config.stages[0]
    entry.stage = "ingest_urls"
    entry.params.update({"timeout": 1, "max_image_bytes": 100_000, "min_image_size": 16, "thread_count": 8,
                         "urls_per_shard": 5, **params})
    return config


def test_every_url_ends_downloaded_or_dropped_with_its_reason(tmp_path, server):
    urls, expected = _url_list(tmp_path, server)
    started = time.monotonic()
    summary = run_pipeline(_pipeline(tmp_path, str(tmp_path / "urls.parquet"), tmp_path / "run"))
    assert time.monotonic() - started < 4 * SLOW_SECONDS, "the slow URL was not cut by the timeout"

    rows = pq.read_table(sorted((tmp_path / "run" / "ingest_urls").glob("*.parquet"))).to_pylist()
    assert [row["url"] for row in rows] == urls
    assert {row["key"]: row["drop_reason"] for row in rows} == expected
    status = {row["key"]: row["status"] for row in rows}
    assert status["good0"] == "success" and status["missing"] == "failed_to_download"
    assert status["big"] == status["tiny"] == "rejected"
    assert all(row["download_error"] for row in rows if row["drop_reason"])
    assert all(row["image"] is None for row in rows if row["drop_reason"])  # no stray bytes kept
    good = [row for row in rows if row["drop_reason"] is None]
    assert good[0]["image"] == png_bytes(0) and good[1]["image"] == jpeg_bytes(1)  # bytes untouched
    assert good[0]["meta"] == '{"site": "test"}'

    assert summary["dropped_by_reason"] == dict(Counter(r for r in expected.values() if r))
    assert summary["ingested"] == len(urls) == summary["curated"] + summary["dropped"]
    assert summary["curated"] == 6


def test_a_rerun_downloads_nothing_again(tmp_path, server):
    urls, _ = _url_list(tmp_path, server)
    config = _pipeline(tmp_path, str(tmp_path / "urls.parquet"), tmp_path / "run", timeout=0.5)
    run_pipeline(config)
    before = output_files(tmp_path / "run")
    PoolHandler.hits.clear()
    summary = run_pipeline(config)
    assert PoolHandler.hits == []
    assert summary["stages"][0]["reused"] == summary["stages"][0]["shards"] == math.ceil(len(urls) / 5)
    assert output_files(tmp_path / "run") == before


def test_resize_modes_go_through_img2dataset(tmp_path, server):
    _url_list(tmp_path, server)
    config = _pipeline(tmp_path, str(tmp_path / "urls.parquet"), tmp_path / "run", resize_mode="center_crop",
                       image_size=24, timeout=0.5, min_image_size=0)
    run_pipeline(config)
    rows = pq.read_table(sorted((tmp_path / "run" / "ingest_urls").glob("*.parquet"))).to_pylist()
    resized = [row for row in rows if row["status"] == "success"]
    assert {(row["width"], row["height"], row["image_format"]) for row in resized} == {(24, 24, "jpg")}
    assert {row["key"] for row in resized} >= {"big", "tiny", "good0"}


def test_a_served_folder_is_ingested_by_url(tmp_path):
    files = tmp_path / "site" / "files"
    files.mkdir(parents=True)
    for index in range(4):
        (files / f"{index}.png").write_bytes(png_bytes(index))
    port = free_port()
    table = pa.table({"url": [f"http://127.0.0.1:{port}/{i}.png" for i in range(4)],
                      "caption": [f"a blue square number {i}" for i in range(4)]})
    pq.write_table(table, tmp_path / "site" / "urls.parquet")
    config = _pipeline(tmp_path, str(tmp_path / "site" / "urls.parquet"), tmp_path / "run", min_image_size=0)
    config.serve = ServeConfig(root=files, port=port)
    summary = run_pipeline(config)
    assert summary["curated"] == 4


def test_url_ingest_is_byte_identical_on_ray(tmp_path, server, ray_session):
    _url_list(tmp_path, server)
    outputs = {}
    for executor in ("local", "ray"):
        config = _pipeline(tmp_path, str(tmp_path / "urls.parquet"), tmp_path / executor, timeout=0.5)
        run_pipeline(config, executor=executor, workers=2)
        outputs[executor] = output_files(tmp_path / executor)
    assert outputs["local"] == outputs["ray"] and len(outputs["local"]) > 5


def test_a_bad_url_list_is_a_clear_error(tmp_path, server):
    pq.write_table(pa.table({"link": ["x"], "caption": ["a"]}), tmp_path / "nourl.parquet")
    with pytest.raises(InputError, match="has no column 'url'"):
        run_pipeline(_pipeline(tmp_path, str(tmp_path / "nourl.parquet"), tmp_path / "r1"))
    pq.write_table(pa.table({"key": ["a", "a"], "url": ["x", "y"], "caption": ["c", "d"]}), tmp_path / "twice.parquet")
    with pytest.raises(InputError, match=r"repeats keys \['a'\]"):
        run_pipeline(_pipeline(tmp_path, str(tmp_path / "twice.parquet"), tmp_path / "r2"))


def test_lists_with_the_same_stem_and_bad_utf8_captions(tmp_path, server):
    lists = tmp_path / "lists"
    lists.mkdir()
    pq.write_table(pa.table({"url": [f"{server}/img/1.jpg"], "caption": ["a parquet caption"]}), lists / "x.parquet")
    (lists / "x.jsonl").write_bytes(b'{"url": "' + f"{server}/img/2.jpg".encode() + b'", "caption": "caf\xe9"}\n')
    summary = run_pipeline(_pipeline(tmp_path, str(lists / "x.*"), tmp_path / "run"))
    assert summary["ingested"] == 2 and summary["dropped_by_reason"] == {"caption_not_utf8": 1}
    shards = sorted(p.stem for p in (tmp_path / "run" / "ingest_urls").glob("*.parquet"))
    assert shards == ["x.jsonl-00000", "x.parquet-00000"]


def test_a_shard_whose_every_url_is_refused_is_not_committed(tmp_path, server):
    port = free_port()
    table = pa.table({"url": [f"http://127.0.0.1:{port}/{i}.png" for i in range(3)],
                      "caption": [f"a square number {i}" for i in range(3)]})
    pq.write_table(table, tmp_path / "urls.parquet")
    config = _pipeline(tmp_path, str(tmp_path / "urls.parquet"), tmp_path / "run", min_image_size=0)
    with pytest.raises(InputError, match="every URL of shard .* was refused"):
        run_pipeline(config)
    assert not list((tmp_path / "run" / "ingest_urls").glob("_done/*.json"))
    files = tmp_path / "files"
    files.mkdir()
    for index in range(3):
        (files / f"{index}.png").write_bytes(png_bytes(index))
    config.serve = ServeConfig(root=files, port=port)
    assert run_pipeline(config)["curated"] == 3
