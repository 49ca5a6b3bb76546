"""curate: dataset curation and data filtering for image-text (CLIP) pretraining data."""

from curate.config import PipelineConfig, load_pipeline
from curate.errors import ConfigError, CurateError, InputError, InvariantError, ResumeError, SchemaError
from curate.pipeline import run_pipeline
from curate.scan import scan
from curate.stage import (
    GlobalStage,
    Resources,
    ShardSpec,
    ShardStage,
    SinkStage,
    SourceStage,
    Stage,
    StageParams,
    register,
    registered_stages,
)
from curate.status import run_status

__all__ = [
    "ConfigError", "CurateError", "GlobalStage", "InputError", "InvariantError", "PipelineConfig",
    "Resources", "ResumeError", "SchemaError", "ShardSpec", "ShardStage", "SinkStage", "SourceStage",
    "Stage", "StageParams", "load_pipeline", "register", "registered_stages", "run_pipeline",
    "run_status", "scan",
]
