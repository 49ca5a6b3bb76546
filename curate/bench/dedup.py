"""`curate bench dedup`: deduplication of generated 512-d embeddings with planted duplicates.

The pool imitates CLIP image embeddings: distinct images share a common direction and fall in
topics (cosine about 0.25 between topics, 0.6 within one), and each planted copy sits at the
cosine to its source that CLIP gives such a copy: re-encoded 0.99, resized 0.985, colour-jittered
0.96, cropped 0.93 (each +- 0.01). Shards are written in the form of a collect result (uid,
priority, embedding), and each method runs its driver-side `find` in a fresh process, so its
peak memory is its own.

Run as `python -m curate.bench.dedup METHOD POOL_DIR OUT PARAMS_JSON` it runs one method and
prints JSON (the CLI starts it so)."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.dedup.embeddings import encode, normalised

COPY_KINDS = {"reencoded": 0.99, "resized": 0.985, "jittered": 0.96, "cropped": 0.93}
TRUTH = "truth.parquet"


def planted_embeddings(n: int, d: int = 512, copy_fraction: float = 0.2, seed: int = 0):
    """(float32 unit embeddings, family, kind): rows of one family are an image and its copies;
    kind is "original" or one of COPY_KINDS. Rows are in random order."""
    rng = np.random.default_rng(seed)
    copies = int(n * copy_fraction)
    distinct = n - copies
    common = _unit(rng.standard_normal(d))
    topics = _unit(rng.standard_normal((max(1, distinct // 1000), d)))
    vectors = np.empty((n, d), np.float32)
    for start in range(0, distinct, 65536):
        count = min(65536, distinct - start)
        topic = topics[rng.integers(len(topics), size=count)]
        noise = _unit(rng.standard_normal((count, d)))
        vectors[start:start + count] = normalised((0.5 * common + 0.6 * topic + 0.62 * noise).astype(np.float32))
    source = rng.integers(distinct, size=copies)
    kinds = rng.integers(len(COPY_KINDS), size=copies)
    target = np.asarray(list(COPY_KINDS.values()))[kinds] + rng.uniform(-0.01, 0.01, copies)
    for start in range(0, copies, 65536):
        part = slice(start, min(copies, start + 65536))
        noise = _unit(rng.standard_normal((part.stop - part.start, d)))
        c = target[part, None]
        vectors[distinct + part.start: distinct + part.stop] = normalised(
            (c * vectors[source[part]] + np.sqrt(1 - c ** 2) * noise).astype(np.float32))
    family = np.r_[np.arange(distinct), source]
    kind = np.r_[np.full(distinct, "original", object), np.asarray(list(COPY_KINDS), object)[kinds]]
    order = rng.permutation(n)
    return vectors[order], family[order], kind[order]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def write_pool(out: Path, n: int, per_shard: int = 10_000, seed: int = 0) -> list[Path]:
    """Collect-result shards (uid, priority, embedding) and truth.parquet (uid, family, kind)."""
    out.mkdir(parents=True, exist_ok=True)
    vectors, family, kind = planted_embeddings(n, seed=seed)
    uids = [f"{i:016x}" for i in range(n)]
    priority = np.random.default_rng(seed + 1).random(n)
    paths = []
    for shard, start in enumerate(range(0, n, per_shard)):
        part = slice(start, start + per_shard)
        path = out / f"{shard:05d}.parquet"
        pq.write_table(pa.table({"uid": uids[part], "priority": priority[part], "embedding": encode(vectors[part])}), path)
        paths.append(path)
    pq.write_table(pa.table({"uid": uids, "family": family, "kind": kind.astype(str)}), out / TRUTH)
    return paths


def quality(found: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Precision (removed items whose duplicate_of is of their family), recall (correct removals
    over the removals a perfect run makes) and, per kind of copy, the share of copies found in
    the same group as their original."""
    families = truth.select("uid", "family")
    removed = (found.filter(pl.col("duplicate_of").is_not_null()).join(families, on="uid")
               .join(families.rename({"uid": "duplicate_of", "family": "of"}), on="duplicate_of"))
    correct = int((removed["family"] == removed["of"]).sum())
    should = len(truth) - truth["family"].n_unique()
    groups = found.select("uid", "group")
    originals = truth.filter(pl.col("kind") == "original").select("family", pl.col("uid").alias("original"))
    copies = (truth.filter(pl.col("kind") != "original").join(originals, on="family")
              .join(groups, on="uid", how="left")
              .join(groups.rename({"uid": "original", "group": "original_group"}), on="original", how="left")
              .with_columns((pl.col("group") == pl.col("original_group")).fill_null(False).alias("caught")))
    result = {"precision": round(correct / max(1, len(removed)), 4), "recall": round(correct / max(1, should), 4)}
    for kind in COPY_KINDS:
        caught = copies.filter(pl.col("kind") == kind)["caught"]
        result[f"recall_{kind}"] = round(float(caught.mean() or 0.0), 4)
    return result


def find_in_process(method: str, pool: Path, out: Path, params: dict) -> dict:
    """Run one stage's reduce in this process on the pool's shards (its partitions one after
    another, as many as a run would make); write duplicates.parquet to out and return its
    details, seconds per phase and this process's peak resident memory."""
    from curate.stage import Collected, stage_class

    stage = stage_class(method)(stage_class(method).Params(embedding="embedding", **params))
    shards = sorted(p for p in pool.glob("*.parquet") if p.name != TRUTH)
    shutil.rmtree(out, ignore_errors=True)  # no k-means reused from an earlier run
    out.mkdir(parents=True)
    collected = Collected({p.stem: p for p in shards}, out / "report", key="bench")
    started = time.perf_counter()
    state = stage.reduce(collected)
    seconds = time.perf_counter() - started
    pq.write_table(pq.read_table(state["found"]), out / "duplicates.parquet")
    return {"method": method, "details": state["details"], "phases": stage.seconds, "seconds": round(seconds, 2),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def run_method(method: str, pool: Path, out: Path, params: dict) -> dict:
    """find_in_process in a fresh Python process, then its precision and recall."""
    command = [sys.executable, "-m", "curate.bench.dedup", method, str(pool), str(out), json.dumps(params)]
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    truth = pl.read_parquet(pool / TRUTH)
    return result | quality(pl.read_parquet(out / "duplicates.parquet"), truth)


if __name__ == "__main__":
    method, pool, out, params = sys.argv[1:5]
    print(json.dumps(find_in_process(method, Path(pool), Path(out), json.loads(params))))
