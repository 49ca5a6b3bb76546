"""`curate bench metaclip`: MetaCLIP matching against a 500,000-entry metadata list, our matcher
next to a plain pyahocorasick loop with the reference semantics, each on one core in the same
process; then match + balance of a generated caption pool end to end on the executors.

Run as `python -m curate.bench.metaclip match METADATA CAPTIONS` it times the two matchers in
a process limited to one thread (the CLI starts it so), and prints JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_PUNCTUATION = [",", ".", ";", ":", "?", "!", "`"]


def bench_metadata(size: int, seed: int = 0) -> list[str]:
    """`size` entries: WordNet lemmas and every wordfreq unigram, then two-word entries of
    frequent words (as MetaCLIP's Wikipedia bigrams) until the list is long enough."""
    from wordfreq import get_frequency_dict

    from curate.metaclip.metadata import build_metadata

    entries = build_metadata(min_frequency=1e-9)
    frequencies = get_frequency_dict("en", wordlist="large")
    top = [w for w in sorted(frequencies, key=frequencies.get, reverse=True) if w.isalpha()][:5000]
    rng, seen = np.random.default_rng(seed), set(entries)
    while len(entries) < size:
        for a, b in rng.integers(len(top), size=(size, 2)):
            pair = f"{top[a]} {top[b]}"
            if pair not in seen:
                seen.add(pair)
                entries.append(pair)
                if len(entries) == size:
                    break
    return entries[:size]


def bench_captions(n: int, seed: int = 0) -> list[str]:
    """`n` English-like captions: 4 to 20 words drawn by their wordfreq frequency, some
    capitalised, some punctuated."""
    from wordfreq import get_frequency_dict

    frequencies = get_frequency_dict("en", wordlist="large")
    words = [w for w in list(frequencies)[:50_000] if w.isalpha()]
    weights = np.array([frequencies[w] for w in words])
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 21, n)
    picks = rng.choice(len(words), size=int(lengths.sum()), p=weights / weights.sum())
    ends = rng.integers(0, 2 * len(_PUNCTUATION), n)
    captions, at = [], 0
    for length, end in zip(lengths, ends):
        chosen = [words[i] for i in picks[at:at + length]]
        at += length
        if end % 3 == 0:
            chosen[0] = chosen[0].capitalize()
        if end < len(_PUNCTUATION):
            chosen[len(chosen) // 2] += _PUNCTUATION[end]
        captions.append(" ".join(chosen))
    return captions


def reference_spacing(text: str) -> str:
    """MetaCLIP's spacing of a caption, as its reference code does it."""
    text = f" {text} "
    for punct in _PUNCTUATION:
        text = text.replace(punct, f" {punct} ")
    for char in ("\t", "\n", "\r"):
        text = text.replace(char, " ")
    return text


def time_matchers(metadata: list[str], captions: list[str]) -> dict:
    """Captions/s of the pyahocorasick loop (Python lists of ids, its natural output) and of
    EntryMatcher (Arrow lists, batches of 32,768, as the stage runs them), on the same
    captions; both must give the same ids."""
    import ahocorasick

    from curate.metaclip.matcher import EntryMatcher

    automaton = ahocorasick.Automaton()
    for entry_id, entry in enumerate(metadata):
        automaton.add_word(f" {entry} ", entry_id)
    automaton.make_automaton()
    started = time.perf_counter()
    expected = [sorted({i for _, i in automaton.iter(reference_spacing(c))}) for c in captions]
    reference = time.perf_counter() - started

    started = time.perf_counter()
    matcher = EntryMatcher(metadata)
    build = time.perf_counter() - started
    column = pa.array(captions, pa.string())
    matcher.match(column.slice(0, 1000))  # warm-up: polars compiles its regexes once per process
    started, parts = time.perf_counter(), []
    for offset in range(0, len(captions), 32768):
        parts.append(matcher.match(column.slice(offset, 32768)))  # Arrow lists, as the stage writes them
    ours = time.perf_counter() - started
    got = [ids for part in parts for ids in part.to_pylist()]
    return {"captions": len(captions), "entries": len(metadata), "reference_per_s": len(captions) / reference,
            "ours_per_s": len(captions) / ours, "ours_build_s": build, "same_ids": got == expected,
            "matches_per_caption": sum(map(len, expected)) / len(captions)}


def time_matchers_on_one_core(metadata_path: Path, captions_path: Path) -> dict:
    """time_matchers in a fresh process whose polars and BLAS pools hold one thread."""
    env = dict(os.environ, POLARS_MAX_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "curate.bench.metaclip", "match", str(metadata_path),
                           str(captions_path)], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"matcher timing failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_caption_table(captions: list[str], path: Path, first_key: int = 0) -> None:
    """A Parquet table of (key, caption, image): one tiny PNG shared by every row, so a run
    measures captions, not pixels."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(buffer, "PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"key": [f"{first_key + i:09d}" for i in range(len(captions))], "caption": captions,
                             "image": pa.array([buffer.getvalue()] * len(captions), pa.binary())}), path)


def write_caption_pool(captions: list[str], folder: Path, per_file: int) -> None:
    """Caption tables of `per_file` rows each, numbered 00000.parquet, ..."""
    for index, start in enumerate(range(0, len(captions), per_file)):
        write_caption_table(captions[start:start + per_file], folder / f"{index:05d}.parquet", start)


def time_balance_run(pool: Path, metadata: Path, run_dir: Path, t: float, executor: str, workers: int) -> dict:
    """ingest_table (header check) -> metaclip_match -> metaclip_balance from an empty run
    directory: each stage's wall seconds, the captions matched and the captions kept."""
    import shutil

    from curate.config import PipelineConfig
    from curate.pipeline import run_pipeline

    config = PipelineConfig(name="bench-metaclip", run_dir=run_dir, stages=[
        {"stage": "ingest_table", "params": {"inputs": str(pool / "*.parquet"), "check_images": "header"}},
        {"stage": "metaclip_match", "params": {"metadata": str(metadata)}},
        {"stage": "metaclip_balance", "params": {"t": t}},
    ])
    shutil.rmtree(run_dir, ignore_errors=True)
    summary = run_pipeline(config, executor=executor, workers=workers)
    seconds = {stage["stage"]: stage["wall_seconds"] for stage in summary["stages"]}
    return {"seconds": seconds, "matched": summary["stages"][1]["alive_in"], "kept": summary["curated"]}


def main(argv: list[str]) -> None:
    """`match METADATA CAPTIONS`: print time_matchers as JSON (METADATA: a JSON list; CAPTIONS:
    a Parquet file with a caption column)."""
    if len(argv) != 3 or argv[0] != "match":
        raise SystemExit("usage: python -m curate.bench.metaclip match METADATA.json CAPTIONS.parquet")
    metadata = json.loads(Path(argv[1]).read_text())
    captions = pq.read_table(argv[2], columns=["caption"]).column("caption").to_pylist()
    print(json.dumps(time_matchers(metadata, captions)))


if __name__ == "__main__":
    main(sys.argv[1:])
