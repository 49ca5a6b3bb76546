"""What a training run is: data, model, budget, optimisation. Saved beside the checkpoints, so a
resume with other settings is refused instead of mixing two runs."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
        """Optimiser steps the budget buys."""
        return math.ceil(self.samples_seen / self.batch_size)

    @property
    def micro_batch(self) -> int:
        """Samples per forward pass."""
        return max(1, self.batch_size // self.accumulate)

    def learning_rate(self, step: int) -> float:
        """Linear warmup, then cosine decay to zero at the last step (a function of the step,
        so a resumed run follows the same schedule)."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        span = max(1, self.steps - self.warmup)
        return 0.5 * self.lr * (1 + math.cos(math.pi * (step - self.warmup) / span))


# A data-filtering network's defaults, for a small trusted set (a few thousand samples) on CPU
DFN_DEFAULTS = {"model": "curate-tiny-vit", "samples_seen": 57_600, "batch_size": 128, "lr": 1e-3, "warmup": 50,
                "checkpoint_every": 50}
