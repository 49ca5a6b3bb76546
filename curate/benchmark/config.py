"""A benchmark file (BENCH.yaml) -> typed configuration: the pool, the scores computed once, the
curation strategies, and the training and evaluation every strategy gets alike."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from curate.config import ExecutorConfig, ServeConfig, StageEntry, read_yaml_mapping
from curate.errors import ConfigError
from curate.params import explain
from curate.train.config import DFN_DEFAULTS

_SLUG = re.compile(r"[^a-z0-9]+")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoolBuild(_Strict):
    """A pool or evaluation set built before the benchmark (`curate pools build NAME --out OUT`),
    skipped when OUT already holds it."""

    name: str
    out: Path
    options: dict[str, Any] = Field(default_factory=dict)


class DfnBuild(_Strict):
    """A data-filtering network trained on trusted shards (`curate train-dfn`), reused when trained alike."""

    data: list[str] = Field(min_length=1)
    out: Path
    model: str = DFN_DEFAULTS["model"]
    samples_seen: int = Field(DFN_DEFAULTS["samples_seen"], gt=0)
    batch_size: int = Field(DFN_DEFAULTS["batch_size"], ge=2)
    lr: float = Field(DFN_DEFAULTS["lr"], gt=0)
    warmup: int = Field(DFN_DEFAULTS["warmup"], ge=0)
    seed: int = Field(0, ge=0)


class Prepare(_Strict):
    """What the benchmark builds first."""

    pools: list[PoolBuild] = Field(default_factory=list)
    metadata: Path | None = Field(None, description="a MetaCLIP metadata.json to build when missing "
                                  "(as `curate metadata build --out PATH`)")
    dfn: list[DfnBuild] = Field(default_factory=list)


class Strategy(_Strict):
    """A curation strategy: the stages it adds after the shared scores (none: no filtering)."""

    name: str = Field(min_length=1)
    stages: list[StageEntry] = Field(default_factory=list)

    @property
    def slug(self) -> str:
        """The strategy's folder name."""
        return _SLUG.sub("-", self.name.lower()).strip("-") or "strategy"


class TrainSettings(_Strict):
    """The training every subset gets: same model, same samples seen (DataComp's equal compute)."""

    model: str = "curate-tiny-vit"
    samples_seen: int = Field(gt=0)
    batch_size: int = Field(256, ge=2)
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.2, ge=0)
    warmup: int = Field(100, ge=0)
    loss: Literal["clip", "siglip"] = "clip"
    device: str = "auto"
    decode_threads: int = Field(2, ge=1)


class EvalSettings(_Strict):
    """The suite every trained model is evaluated on."""

    suite: Literal["offline", "datacomp"] = "offline"
    data: Path | None = None
    tasks: list[str] | None = None


class GroundTruth(_Strict):
    """Which pool samples are noisy, for scoring the scorers: Parquet files with a key column
    (the sample's key in the pool's shards) and a boolean column."""

    files: list[str] = Field(min_length=1, description="Parquet files or globs (a pool's NNNNN.parquet)")
    key: str = "key"
    noisy: str = "is_noisy"
    scores: dict[str, Literal["higher_is_clean", "lower_is_clean"]] = Field(
        default_factory=dict, description="score columns of the shared scores to rate, and which end is clean")


class BenchmarkConfig(_Strict):
    """A whole benchmark file."""

    name: str
    out: Path
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    serve: ServeConfig | None = None
    prepare: Prepare = Field(default_factory=Prepare)
    pool: StageEntry = Field(description="the ingest stage every strategy starts from")
    scores: list[StageEntry] = Field(default_factory=list, description="stages run once on the whole pool")
    strategies: list[Strategy] = Field(min_length=2)
    baseline: str | None = Field(None, description="the strategy the others are compared with (default: the first)")
    export: dict[str, Any] = Field(default_factory=lambda: {"samples_per_shard": 1000})
    train: TrainSettings
    seeds: list[int] = Field(min_length=1)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    ground_truth: GroundTruth | None = None

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise ValueError("seeds must be distinct non-negative integers")
        return seeds

    @model_validator(mode="after")
    def _distinct_strategies(self) -> "BenchmarkConfig":
        slugs = [s.slug for s in self.strategies]
        if len(set(slugs)) != len(slugs):
            raise ValueError(f"strategy names must differ in letters and digits: {slugs}")
        if self.baseline is not None and self.baseline not in {s.name for s in self.strategies}:
            raise ValueError(f"baseline {self.baseline!r} is not a strategy name")
        return self

    @property
    def baseline_name(self) -> str:
        """The strategy the others are compared with."""
        return self.baseline or self.strategies[0].name


def load_benchmark(path: str | Path, out: str | Path | None = None) -> BenchmarkConfig:
    """Read and validate a benchmark file; `out` overrides the file's output folder."""
    raw = read_yaml_mapping(path, "benchmark file", "name, out, pool, strategies, train, seeds, ...")
    if out is not None:
        raw["out"] = str(out)
    try:
        return BenchmarkConfig(**raw)
    except ValidationError as error:
        raise ConfigError(f"benchmark file {path} is invalid:\n{explain(error, BenchmarkConfig)}") from None
