"""The funnel: samples alive into each stage, dropped there by reason, and kept, counted from
the run's Parquet (the ingest stage's output and dropped.parquet), not from its logs."""

from __future__ import annotations

from dataclasses import dataclass

from curate.report.facts import RunFacts


@dataclass(frozen=True)
class FunnelStep:
    """One stage of the funnel."""

    stage_id: str
    stage: str
    alive_in: int
    dropped: dict[str, int]  # drop reason -> samples, largest first
    kept: int

    @property
    def dropped_total(self) -> int:
        """Samples this stage dropped, all reasons together."""
        return sum(self.dropped.values())


def funnel(facts: RunFacts) -> list[FunnelStep]:
    """Per stage, in pipeline order: alive in, dropped by reason, kept."""
    counts = facts.dropped().group_by("dropped_by", "drop_reason").len().collect()
    by_stage: dict[str, dict[str, int]] = {}
    for stage_id, reason, n in counts.sort("len", "drop_reason", descending=[True, False]).iter_rows():
        by_stage.setdefault(stage_id, {})[reason] = n
    steps, alive = [], facts.ingested()
    for stage in facts.stages:
        dropped = by_stage.get(stage.id, {})
        steps.append(FunnelStep(stage.id, stage.name, alive, dropped, alive - sum(dropped.values())))
        alive = steps[-1].kept
    return steps


def reason_totals(steps: list[FunnelStep]) -> list[tuple[str, str, int]]:
    """(drop reason, stage id, samples) over the whole run, largest first."""
    rows = [(reason, step.stage_id, n) for step in steps for reason, n in step.dropped.items()]
    return sorted(rows, key=lambda row: (-row[2], row[0]))

