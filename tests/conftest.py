"""Tiny pools and pipelines built by the tests themselves."""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from curate import PipelineConfig
from curate.io.tars import tar_bytes
from curate.run import output_digests

CAPTIONS = ["a red circle on a blue background", "x", "", "a small green square in the corner",
            "IMG_0001.JPG", "two yellow stars on black"]


def jpeg_bytes(seed: int, size: int = 32) -> bytes:
    """A small, distinct JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (seed * 37 % 256, seed * 11 % 256, 90)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def png_bytes(seed: int, size: int = 32) -> bytes:
    """A small, distinct PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (10, seed * 13 % 256, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def sample(index: int, caption: str | bytes | None = None, image: bytes | None = None) -> dict:
    """A WebDataset sample dict with a caption from CAPTIONS unless given."""
    text = CAPTIONS[index % len(CAPTIONS)] if caption is None else caption
    record = {"__key__": f"{index:06d}", "jpg": image if image is not None else jpeg_bytes(index)}
    if text is not ...:
        record["txt"] = text if isinstance(text, bytes) else text.encode()
    record["json"] = f'{{"url": "http://example.invalid/{index}.jpg"}}'.encode()
    return record


def write_pool(folder: Path, shards: int, per_shard: int, start: int = 0) -> list[Path]:
    """Write shards of WebDataset tars pool-00000.tar, ... with CAPTIONS cycling."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in range(shards):
        first = start + shard * per_shard
        path = folder / f"pool-{shard:05d}.tar"
        path.write_bytes(tar_bytes([sample(i) for i in range(first, first + per_shard)]))
        paths.append(path)
    return paths


def write_pipeline(path: Path, inputs: str, run_dir: Path, *, stages: list[dict] | None = None,
                   samples_per_shard: int = 25, executor: str = "local", **ingest) -> Path:
    """A pipeline file: ingest -> caption_stats -> select -> top fraction -> export."""
    default = [
        {"stage": "caption_stats"},
        {"stage": "select", "params": {"filters": {"too_few_words": "caption_words >= 3",
                                                   "too_small": "width >= 16"}}},
        {"stage": "select_top_fraction", "params": {"column": "caption_chars", "fraction": 0.5, "rule": "exact"}},
        {"stage": "export", "params": {"samples_per_shard": samples_per_shard}},
    ]
    config = {
        "name": "test",
        "run_dir": str(run_dir),
        "executor": {"kind": executor},
        "stages": [{"stage": "ingest_webdataset", "params": {"inputs": inputs, **ingest}}]
        + (default if stages is None else stages),
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def output_files(run_dir: Path) -> dict[str, str]:
    """Every data output of a run (Parquet, tars, subset, sizes), by relative path: its sha256."""
    return output_digests(run_dir)


def ingest_export_config(run_dir: Path, source: str, ingest: dict, middle: list[dict] | None = None,
                         samples_per_shard: int = 100) -> PipelineConfig:
    """`source` stage -> middle stages -> export, on the local executor."""
    return PipelineConfig(**{
        "name": source,
        "run_dir": str(run_dir),
        "executor": {"kind": "local"},
        "stages": [{"stage": source, "params": ingest}, *(middle or []),
                   {"stage": "export", "params": {"samples_per_shard": samples_per_shard}}],
    })


def exported_members(run_dir: Path) -> dict[str, dict[str, bytes]]:
    """uid -> {extension: bytes} of every sample in a run's exported tars."""
    samples: dict[str, dict[str, bytes]] = {}
    for path in sorted((run_dir / "export" / "shards").glob("*.tar")):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                uid, _, ext = member.name.partition(".")
                samples.setdefault(uid, {})[ext] = tar.extractfile(member).read()
    return samples


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance (2 CPUs) for the whole session."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # stages defined in test modules must be importable on the workers too
    tests = str(Path(__file__).parent)
    path = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning",
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """Three tars of 40 samples each."""
    write_pool(tmp_path / "pool", shards=3, per_shard=40)
    return tmp_path / "pool"


REPORT_WORDS = ["circle", "star", "square", "ring", "triangle", "red", "blue", "green", "white", "gray", "backdrop",
                "purple", "orange", "picture", "image"]


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """A finished run with every kind of report section: 400 generated samples (planted
    duplicates and junk captions) through caption scores, filters, exact dedup, a top fraction,
    MetaCLIP balancing and export, in shards of 100."""
    import json

    from curate.bench.report import report_pipeline
    from curate.pipeline import run_pipeline
    from curate.pools import build

    root = tmp_path_factory.mktemp("report")
    build("synthetic", root / "pool", n=400, samples_per_shard=100)
    metadata = root / "metadata.json"
    metadata.write_text(json.dumps(REPORT_WORDS))
    config = report_pipeline(root / "pool", root / "run", metadata, samples_per_shard=100)
    run_pipeline(config, executor="local")
    return root / "run"


SLOW_SECONDS = 3


def noisy_jpeg(side: int) -> bytes:
    """A JPEG of random pixels: large for its side, and different for each side."""
    pixels = np.random.default_rng(side).integers(0, 255, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


ROUTES = {
    "/page.html": (200, "text/html", b"<html><body>not an image</body></html>"),
    "/corrupt.jpg": (200, "image/jpeg", b"\xff\xd8\xff\xe0" + b"\x13garbage" * 50),
    "/big.jpg": (200, "image/jpeg", noisy_jpeg(400)),
    "/tiny.jpg": (200, "image/jpeg", jpeg_bytes(3, size=8)),
    "/huge-garbage.jpg": (200, "image/jpeg", b"\x00garbage" * 30_000),
}


class PoolHandler(BaseHTTPRequestHandler):
    """Images under /img/, ROUTES, a slow image and an endless redirect; records the paths asked for."""

    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (the base class's name)
        self.hits.append(self.path)
        if self.path.startswith("/img/"):
            index = int(self.path.split("/")[-1].split(".")[0])
            body = jpeg_bytes(index) if self.path.endswith(".jpg") else png_bytes(index)
            return self._send(200, "image/jpeg", body)
        if self.path == "/slow.jpg":
            time.sleep(SLOW_SECONDS)
            return self._send(200, "image/jpeg", jpeg_bytes(1))
        if self.path == "/loop.jpg":
            self.send_response(302)
            self.send_header("Location", "/loop.jpg")
            self.end_headers()
            return None
        status, kind, body = ROUTES.get(self.path, (404, "text/plain", b"not found"))
        return self._send(status, kind, body)

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (the timeout tests do)

    def log_message(self, *args):
        """Quiet: no line per request in the test output."""


@pytest.fixture(scope="session")
def server():
    """A real HTTP server on 127.0.0.1 with images and every kind of bad answer (ROUTES, /img/N.jpg|png,
    /slow.jpg, /loop.jpg); yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), PoolHandler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def datacomp_pool(tmp_path_factory) -> Path:
    """A tiny pool in DataComp's layout (metadata Parquet + npz, target.npz): 2,500 rows in three
    metadata files (1,000, 1,000, 500), resampled from 120 generated shapes embedded by an
    untrained tiny CLIP."""
    from curate.pools import build

    out = tmp_path_factory.mktemp("datacomp") / "pool"
    build("datacomp-like", out, n=2500, base="synthetic", limit=120, weights=None, samples_per_shard=1000)
    return out
