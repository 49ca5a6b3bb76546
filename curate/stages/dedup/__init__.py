"""Deduplication stages: exact, near-duplicate, semantic (SemDeDup), and decontamination."""

from curate.stages.dedup import decontaminate, exact, near, semantic  # noqa: F401
