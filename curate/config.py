"""Pipeline YAML -> typed configuration. Stages are named by registry key, never import path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curate.errors import ConfigError
from curate.params import explain
from curate.stage import Stage, stage_class

_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class ExecutorConfig(BaseModel):
    """Where stages run: `local` (in process) or `ray` (local instance or a cluster address)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["local", "ray"] = "local"
    workers: int | None = Field(default=None, ge=1)
    address: str | None = None
    check_partitions: int | None = Field(default=None, ge=1, description="partitions of the end-of-run check "
                                         "(default: one per 8M samples); the outputs are the same for any")


class ServeConfig(BaseModel):
    """A folder served on 127.0.0.1:port while the run lasts (for pools ingested by URL). The
    port must be the one the pool's URL lists point at."""

    model_config = ConfigDict(extra="forbid")
    root: Path
    port: int = Field(8765, ge=1, le=65535)


class StageEntry(BaseModel):
    """One stage of a pipeline: its registry name, an optional id, and its parameters."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")  # .inf survives a reload
    stage: str
    id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _snake_id(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError(f"stage id {value!r} must be snake_case (it names a folder)")
        return value


class PipelineConfig(BaseModel):
    """A whole pipeline file."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")
    name: str
    run_dir: Path
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    serve: ServeConfig | None = None
    stages: list[StageEntry] = Field(min_length=1)

    def build_stages(self) -> list[Stage]:
        """Instantiate every stage with validated parameters; ids must be unique."""
        stages, seen = [], set()
        for index, entry in enumerate(self.stages):
            cls = stage_class(entry.stage)
            stage_id = entry.id or entry.stage
            if stage_id in seen:
                raise ConfigError(
                    f"stage #{index + 1} ({entry.stage}) reuses id {stage_id!r}; "
                    f"give it a distinct `id:`"
                )
            seen.add(stage_id)
            try:
                params = cls.Params(**entry.params)
            except ValidationError as error:
                raise ConfigError(f"stage {stage_id!r} ({entry.stage}): invalid params "
                                  f"(`curate stages {entry.stage}` lists them):\n{explain(error, cls.Params)}") from None
            stages.append(cls(params, stage_id))
        return stages


def read_yaml_mapping(path: str | Path, what: str, fields: str) -> dict:
    """A YAML file that must hold a mapping (`what` names the file in errors, `fields` its keys)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{what} {path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must be a mapping with {fields}")
    return raw


def load_pipeline(path: str | Path, run_dir: str | Path | None = None) -> PipelineConfig:
    """Read and validate a pipeline file; `run_dir` overrides the file's run_dir."""
    raw = read_yaml_mapping(path, "pipeline file", "name, run_dir and stages")
    if run_dir is not None:
        raw["run_dir"] = str(run_dir)
    try:
        return PipelineConfig(**raw)
    except ValidationError as error:
        raise ConfigError(f"pipeline file {path} is invalid:\n{explain(error, PipelineConfig)}") from None
