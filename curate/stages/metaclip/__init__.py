"""MetaCLIP curation stages: matching captions to metadata entries, and balancing over them."""

from curate.stages.metaclip import balance, match  # noqa: F401
