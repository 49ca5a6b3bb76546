"""Scorers: stages that add columns and drop nothing."""

from curate.stages.score import caption_stats  # noqa: F401
