"""Built-in stages; importing this package registers them."""

from curate.stages import dedup, export, ingest, metaclip, score, select  # noqa: F401
