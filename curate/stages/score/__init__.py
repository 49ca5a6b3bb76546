"""Scorers: stages that add columns and drop nothing."""

from curate.stages.score import caption_stats, clip_score, nsfw_score, text_in_image  # noqa: F401
