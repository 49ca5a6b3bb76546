"""What a training run is: data, model, budget, optimisation. Saved beside the checkpoints, so a
resume with other settings is refused instead of mixing two runs."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

WARMUP_CAP = 0.25  # the largest share of a run's steps its warmup may take

class TrainConfig(BaseModel):
    """Every setting of a run (the output folder and device are where and how, not what)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: list[str] = Field(min_length=1, description="WebDataset shards: folders, globs or files")
    model: str = Field("curate-tiny-vit", description="an open_clip architecture")
    init: str | None = Field(None, description="starting weights: an absolute path or a pretrained tag")
    samples_seen: int = Field(gt=0, description="training samples, whatever the size of the data")
    batch_size: int = Field(256, ge=2, description="samples per step (after accumulation)")
    accumulate: int = Field(1, ge=1, description="micro-batches per step")
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.2, ge=0)
    warmup: int = Field(100, ge=0, description="steps of linear warmup before the cosine decay")
    loss: Literal["clip", "siglip"] = "clip"
    seed: int = Field(0, ge=0, description="seed of the initial weights, the shard draws and the sample order")
    checkpoint_every: int = Field(100, ge=1, description="steps between checkpoints")

    @property
    def steps(self) -> int:
        """Optimiser steps the budget buys (whole batches: samples_seen rounded up)."""
        return math.ceil(self.samples_seen / self.batch_size)

    @property
    def warmup_steps(self) -> int:
        """The warmup, at most WARMUP_CAP of the steps (rounded up), so that a short run still
        reaches its peak learning rate and decays."""
        return min(self.warmup, math.ceil(WARMUP_CAP * self.steps))

    def notes(self) -> list[str]:
        """What the run does other than asked, for the user: the budget rounded to whole
        batches, a warmup capped."""
        found = []
        trained = self.steps * self.batch_size
        if trained != self.samples_seen:
            found.append(f"samples seen: {self.samples_seen:,} asked, {trained:,} trained "
                         f"({self.steps:,} whole batches of {self.batch_size:,})")
        if self.warmup_steps < self.warmup:
            found.append(f"warmup: {self.warmup:,} steps asked, {self.warmup_steps:,} used "
                         f"(at most {WARMUP_CAP:.0%} of the {self.steps:,} steps)")
        return found

    @property
    def micro_batch(self) -> int:
        """Samples per forward pass."""
        return max(1, self.batch_size // self.accumulate)

    def learning_rate(self, step: int) -> float:
        """Linear warmup, then cosine decay to zero at the last step (a function of the step,
        so a resumed run follows the same schedule)."""
        warmup = self.warmup_steps
        if step < warmup:
            return self.lr * (step + 1) / warmup
        span = max(1, self.steps - warmup)
        return 0.5 * self.lr * (1 + math.cos(math.pi * (step - warmup) / span))


# A data-filtering network's defaults, for a small trusted set (a few thousand samples) on CPU
DFN_DEFAULTS = {"model": "curate-tiny-vit", "samples_seen": 57_600, "batch_size": 128, "lr": 1e-3, "warmup": 50,
                "checkpoint_every": 50}
