"""The MetaCLIP entry distribution before and after balancing, from what metaclip_balance wrote
(report/entry_counts.parquet: per matched entry, its count before and after, and p)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.report.facts import RunFacts

TOP = 20


@dataclass
class EntryDistribution:
    """One balancing stage's effect on the entries."""

    stage_id: str
    t: float
    details: dict
    before: np.ndarray  # counts of the matched entries, largest first
    after: np.ndarray  # the same entries' counts after balancing, in the same order
    top: list[dict]  # the most matched entries: entry, count_before, count_after, p


def entry_distributions(facts: RunFacts) -> list[EntryDistribution]:
    """One distribution per metaclip_balance stage that wrote its entry counts."""
    found = []
    for stage in facts.stages_named("metaclip_balance"):
        path = facts.root / stage.id / "report" / "entry_counts.parquet"
        details = facts.details(stage.id) or {}
        if not path.is_file() or "t" not in details:
            continue
        counts = pl.read_parquet(path).sort("count_before", "entry_id", descending=[True, False])
        if "entry" not in counts.columns:
            counts = counts.with_columns(pl.lit(None, pl.String).alias("entry"))
        named = counts.with_columns(pl.coalesce("entry", pl.format("entry #{}", "entry_id")).alias("entry"))
        top = named.head(TOP).select("entry", "count_before", "count_after", "p").to_dicts()
        found.append(EntryDistribution(stage.id, details["t"], details, counts["count_before"].to_numpy(),
                                       counts["count_after"].to_numpy(), top))
    return found
