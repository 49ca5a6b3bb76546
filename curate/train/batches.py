"""Model-ready micro-batches, prepared ahead of the model: this rank's share of each batch of the
stream decoded on worker threads, stacked (pinned for the GPU) and tokenised, in stream order."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from curate.errors import ConfigError
from curate.stages.score.model_batches import BatchFeeder, clip_pixels
from curate.train.config import TrainConfig
from curate.train.data import Position, ShardStream, find_shards
from curate.train.distributed import Distributed

AHEAD = 4  # micro-batches prepared before the model asks for them


@dataclass
class MicroBatch:
    """Pixels and tokens of this rank's share, and where the stream stands after the batch."""

    pixels: Any
    tokens: Any
    position: Position
    undecodable: int


def micro_batches(config: TrainConfig, start: Position, clip: Any, dist: Distributed,
                  threads: int) -> Iterator[MicroBatch]:
    """Endless micro-batches from `start`, AHEAD of the caller (nothing is read before the
    first is asked for; closing the generator stops the preparing threads)."""
    stream = ShardStream(find_shards(config.data), config.seed).batches(start, config.micro_batch)
    feeder = BatchFeeder(threads, "train")

    def prepare_next() -> MicroBatch:
        samples, position = next(stream)
        return _prepare(dist.share(samples), position, clip, feeder)

    pending = deque(feeder.ahead.submit(prepare_next) for _ in range(AHEAD))
    try:
        while True:
            ready = pending.popleft().result()
            pending.append(feeder.ahead.submit(prepare_next))
            yield ready
    finally:
        feeder.close()


def _prepare(samples: list[tuple[bytes, str]], position: Position, clip: Any, feeder: BatchFeeder) -> MicroBatch:
    """Decode and tokenise. An image that does not decode is replaced by another of the share
    with its caption, so every rank keeps its share's size (all-gather needs equal sizes)."""
    import torch

    pixels = feeder.map(lambda sample: clip_pixels(clip, sample[0]), samples)
    good = [i for i, p in enumerate(pixels) if p is not None]
    if not good:
        raise ConfigError(f"no image of a batch decodes (shard draw {position.draw}); check the shards")
    chosen = [i if pixels[i] is not None else good[0] for i in range(len(samples))]
    stacked = torch.stack([pixels[i] for i in chosen])
    if clip.device == "cuda":
        stacked = stacked.pin_memory()
    tokens = clip.tokenizer([samples[i][1] for i in chosen])
    return MicroBatch(stacked, tokens, position, len(samples) - len(good))
