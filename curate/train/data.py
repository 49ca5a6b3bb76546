"""The training stream: shards drawn with replacement (DataComp's resampling), each read whole
and its samples visited in a seeded order. Where the stream stands is a Position, so a resumed
run reads exactly what the interrupted one would have read next."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from curate.errors import ConfigError
from curate.stages.ingest.webdataset import grouped_members

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


@dataclass(frozen=True)
class Position:
    """The draw-th shard drawn, and the next sample's index in its seeded order."""

    draw: int = 0
    offset: int = 0

    def as_dict(self) -> dict:
        """For a checkpoint."""
        return asdict(self)


def find_shards(patterns: list[str]) -> list[str]:
    """The .tar shards named by paths, globs or folders, sorted; an error when there are none."""
    found = []
    for pattern in patterns:
        path = Path(pattern)
        found += sorted(str(p) for p in path.glob("*.tar")) if path.is_dir() else sorted(glob.glob(pattern))
    if not found:
        raise ConfigError(f"no .tar shards in {', '.join(patterns)}; give WebDataset shards (a folder, a glob or files)")
    return found


class ShardStream:
    """Samples (image bytes, caption) in the seeded order of drawn shards."""

    def __init__(self, shards: list[str], seed: int):
        self.shards, self.seed = shards, seed
        self._cache: tuple[int, list] | None = None

    def _draw(self, draw: int) -> list[tuple[bytes, str]]:
        if self._cache and self._cache[0] == draw:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, draw])
        shard = self.shards[int(rng.integers(len(self.shards)))]
        samples = _read_shard(shard)
        order = rng.permutation(len(samples))
        self._cache = (draw, [samples[i] for i in order])
        return self._cache[1]

    def batches(self, start: Position, size: int) -> Iterator[tuple[list[tuple[bytes, str]], Position]]:
        """Batches of `size` samples from `start`, each with the position after it."""
        draw, offset, batch = start.draw, start.offset, []
        empty_draws = 0
        while True:
            samples = self._draw(draw)
            empty_draws = 0 if samples else empty_draws + 1
            if empty_draws > 100:
                raise ConfigError("the shards hold no sample with both an image and a caption")
            while offset < len(samples):
                batch.append(samples[offset])
                offset += 1
                if len(batch) == size:
                    at = Position(draw, offset) if offset < len(samples) else Position(draw + 1, 0)
                    yield batch, at
                    batch = []
            draw, offset = draw + 1, 0


def _read_shard(path: str) -> list[tuple[bytes, str]]:
    """(image, caption) of every sample of a shard that has both."""
    samples, warnings = [], []
    for _, members, problem in grouped_members(path, warnings):
        image = next((members[ext] for ext in IMAGE_EXTENSIONS if ext in members), None)
        caption = members.get("txt", b"").decode("utf-8", "replace").strip()
        if problem is None and image is not None and caption:
            samples.append((image, caption))
    return samples
