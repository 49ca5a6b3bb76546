"""Deduplication groups side by side: what each dedup stage found (report/duplicates.parquet:
uid, group, duplicate_of, similarity), a few groups with their kept member first."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from curate.report.facts import RunFacts
from curate.stages.dedup.common import FOUND

GROUPS = 6
MEMBERS = 6


@dataclass
class Member:
    """One member of a group: the kept one has no duplicate_of."""

    uid: str
    duplicate_of: str | None
    similarity: float | None


@dataclass
class DedupFindings:
    """One stage's groups: figures, group sizes, and the groups shown."""

    stage_id: str
    stage: str
    details: dict
    sizes: dict[int, int]  # group size -> groups of that size
    groups: list[list[Member]]
    more: list[int]  # per group shown, its members not shown
    external: bool  # members duplicate samples outside the pool (evaluation sets)


def dedup_findings(facts: RunFacts) -> list[DedupFindings]:
    """The groups of every stage that wrote report/duplicates.parquet."""
    found = []
    for stage in facts.stages:
        path = facts.root / stage.id / "report" / FOUND
        if path.is_file():
            found.append(_findings(facts, stage, pl.read_parquet(path, columns=["uid", "group", "duplicate_of",
                                                                              "similarity"])))
    return found


def _findings(facts: RunFacts, stage, table: pl.DataFrame) -> DedupFindings:
    sizes = table.group_by("group").len()
    size_counts = dict(sorted(sizes.group_by("len").len(name="groups").iter_rows()))
    external = table.filter(pl.col("duplicate_of").is_not_null()).join(
        table.select(pl.col("uid").alias("duplicate_of")), on="duplicate_of", how="anti").height > 0
    shown = _chosen_groups(sizes)
    size_of = dict(sizes.iter_rows())
    groups = []
    for group in shown:
        rows = table.filter(pl.col("group") == group).sort(
            pl.col("duplicate_of").is_not_null(), pl.col("similarity"), "uid", descending=[False, True, False],
            nulls_last=True)
        groups.append([Member(*row) for row in rows.head(MEMBERS).select("uid", "duplicate_of", "similarity").iter_rows()])
    more = [size_of[group] - len(members) for group, members in zip(shown, groups)]
    return DedupFindings(stage.id, stage.name, facts.details(stage.id) or {}, size_counts, groups, more, external)


def _chosen_groups(sizes: pl.DataFrame) -> list[int]:
    """The largest groups, then others picked by a hash of their id: the big and the typical."""
    largest = sizes.sort("len", "group", descending=[True, False]).head(GROUPS // 2)["group"].to_list()
    rest = sizes.filter(~pl.col("group").is_in(largest))
    typical = rest.sort(pl.col("group").hash(seed=0)).head(GROUPS - len(largest))["group"].to_list()
    return largest + typical
