"""`curate bench score`: images/s of the clip_score stage end to end from shards (read the shard
view, decode, preprocess, encode, write the sidecar) next to the same model alone on tensors
preprocessed beforehand, in the same process, on the same device and batch size."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

from PIL import Image

from curate.config import PipelineConfig
from curate.pipeline import run_pipeline

_DISTINCT_TENSORS = 1024  # the model-alone loop cycles over this many preprocessed images


def score_pipeline(pool: Path, run_dir: Path, model: str, batch_size: int, device: str,
                   decode_threads: int) -> PipelineConfig:
    """ingest (header check only, so decoding is the scorer's) -> clip_score."""
    return PipelineConfig(
        name="bench-score",
        run_dir=run_dir,
        executor={"kind": "local"},
        stages=[
            {"stage": "ingest_webdataset", "params": {"inputs": str(pool / "*.tar"), "check_images": "header"}},
            {"stage": "clip_score", "params": {"model": model, "batch_size": batch_size, "device": device,
                                                "decode_threads": decode_threads}},
        ],
    )


def time_end_to_end(config: PipelineConfig) -> tuple[int, float]:
    """(images scored, seconds the clip_score shard tasks took), model loading excluded."""
    shutil.rmtree(config.run_dir, ignore_errors=True)
    summary = run_pipeline(config, executor="local")
    report = next(stage for stage in summary["stages"] if stage["stage"] == "clip_score")
    return report["alive_in"], report["worker_seconds"]


def time_model_alone(model: str, device: str, batch_size: int, pool: Path, images: int) -> float:
    """images/s of the model on preprocessed tensors and tokens already in memory (the same
    images as the end-to-end run, cycled)."""
    from curate.models.clip import load_clip

    clip = load_clip(model, None, device)
    distinct = max(1, min(_DISTINCT_TENSORS, images) // batch_size) * batch_size
    pixels, captions = _preprocessed(clip, pool, distinct)
    pixels, tokens = clip.model_input(pixels).cpu(), clip.tokenizer(captions)  # float, normalised
    if clip.device == "cuda":
        pixels, tokens = pixels.pin_memory(), tokens.pin_memory()
    starts = [(b * batch_size) % len(pixels) for b in range(max(1, images // batch_size))]
    clip.encode(pixels[:batch_size], tokens[:batch_size])  # warm-up: kernels, allocator
    _synchronize(clip.device)
    started, done = time.perf_counter(), 0
    for start in starts:
        clip.encode(pixels[start:start + batch_size], tokens[start:start + batch_size])
        done += min(batch_size, len(pixels) - start)
    _synchronize(clip.device)
    return done / (time.perf_counter() - started)


def _preprocessed(clip, pool: Path, count: int):
    """The first `count` samples of the pool's tars: their images preprocessed as one tensor,
    and their captions."""
    import tarfile

    import torch

    members: dict[str, dict[str, bytes]] = {}
    for path in sorted(pool.glob("*.tar")):
        with tarfile.open(path) as tar:
            for member in tar:
                key, _, ext = member.name.partition(".")
                members.setdefault(key, {})[ext] = tar.extractfile(member).read()
        if len(members) > count:
            break
    samples = [m for m in members.values() if "jpg" in m and "txt" in m][:count]
    pixels = [clip.pixels(Image.open(io.BytesIO(m["jpg"])).convert("RGB")) for m in samples]
    return torch.stack(pixels), [m["txt"].decode() for m in samples]


def _synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
