"""Keep the top fraction of alive samples by a score column, counted over the whole pool."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.io.subset import SUBSET_DTYPE, uids_to_u8u8
from curate.selection_kth import BAND, key_score, kth_smallest, order_key
from curate.stage import Collected, GlobalStage, StageParams, Threshold, register


class TopFractionParams(StageParams):
    """column: the score; fraction: the share of the alive samples to keep.

    rule "datacomp" (DataComp's baselines): the threshold is the score at position int(N * f)
    of the descending order over the whole pool, and every sample scoring >= it is kept (ties
    included). rule "exact": exactly round(N * f) samples, ties broken by uid.

    Samples whose score is null or NaN are dropped as missing_score. missing "count" (DataComp's
    `get_threshold`): they count in N and sort last, so one NaN in 6 at f = 0.5 keeps 4 (the
    threshold is the 4th score); "exclude": N counts only scored samples (keeps 3). When the
    position falls among the missing scores (f = 1.0 among them) every scored sample is kept,
    where DataComp raises (f = 1.0) or, its threshold being NaN, keeps none.
    """

    column: str = Field(description="the score column to rank by")
    fraction: float = Field(gt=0, le=1, description="share of the alive samples to keep")
    rule: Literal["datacomp", "exact"] = Field("datacomp", description="datacomp: keep scores >= the one at "
                                              "int(N * fraction), ties included; exact: round(N * fraction)")
    missing: Literal["count", "exclude"] = Field("count", description="whether samples without a score count in "
                                                 "N (DataComp) or not")
    descending: bool = Field(True, description="true: keep the highest scores")
    drop_reason: str = Field("below_top_fraction", description="the reason recorded for the samples dropped")


@register
class SelectTopFraction(GlobalStage):
    """A global threshold: exactly round(fraction * alive) samples are kept, whatever the sharding."""

    name = "select_top_fraction"
    Params = TopFractionParams
    output_schema = "decision.v1"
    band: ClassVar[int] = BAND  # scores gathered and sorted at once by the reduce

    def needed_columns(self) -> tuple[str, ...]:
        """The score column (uid and drop_reason come with every view)."""
        return (self.params.column,)

    def needed_for_collect(self) -> tuple[str, ...]:
        """The score column."""
        return self.needed_columns()

    def _ranked(self, view: pa.Table) -> np.ndarray:
        """(score, uid high, uid low) of rows, scores oriented so that larger is better;
        a null score reads as NaN. The uid parts are filled for the exact rule only."""
        score = pc.fill_null(view.column(self.params.column).cast(pa.float64()), np.nan).to_numpy()
        ranked = np.zeros(len(score), dtype=[("score", "f8")] + SUBSET_DTYPE.descr)
        ranked["score"] = score if self.params.descending else -score
        if self.params.rule == "exact":
            pairs = uids_to_u8u8(view.column("uid").to_pylist())
            ranked["f0"], ranked["f1"] = pairs["f0"], pairs["f1"]
        return ranked

    def collect(self, view: pa.Table) -> pa.Table:
        """The ranking keys of this shard's alive rows, those without a score (NaN) included when
        they count (DataComp's rule needs the scores alone: 8 bytes a sample in the reduce,
        against 24 with the uid)."""
        ranked = self._ranked(view.filter(view.column("drop_reason").is_null()))
        if self.params.missing == "exclude":
            ranked = ranked[~np.isnan(ranked["score"])]
        names = ("score",) if self.params.rule == "datacomp" else ranked.dtype.names
        return pa.table({name: ranked[name] for name in names})

    def reduce(self, collected: Collected) -> dict:
        """The threshold over the whole pool, DataComp's score or the last kept (score, uid),
        found shard by shard (see curate.selection_kth): the task holds one shard's scores at
        a time, never the pool's."""
        counted = sum(collected.rows(shard) for shard in collected)  # N: missing scores too, with "count"
        scored = sum(int((~np.isnan(collected.column(shard, "score").to_numpy())).sum()) for shard in collected)
        if self.params.rule == "datacomp":
            position = int(counted * self.params.fraction)
            if position >= scored:  # past the scores: every scored sample is kept
                return {"threshold": -np.inf}
            (key,) = kth_smallest(lambda: _ranking_records(collected, ("score",)), 1, position, self.band)
            return {"threshold": key_score(_descending(key))}
        keep = min(int(round(self.params.fraction * counted)), scored)
        if keep == 0:
            return {"keep": 0}
        key, f0, f1 = kth_smallest(lambda: _ranking_records(collected, ("score", "f0", "f1")), 3, keep - 1, self.band)
        return {"keep": keep, "score": key_score(_descending(key)), "f0": f0, "f1": f1}

    def finish(self, state: dict, stage_dir, view, outputs) -> dict:
        """The cut in the column's own terms, for the run summary and report."""
        value = state["threshold"] if "threshold" in state else state.get("score", np.inf)
        return {"threshold": _oriented(value, self.params.descending), "rule": self.params.rule}

    def thresholds(self, details: dict | None) -> list[Threshold]:
        """The realised cut on the score column."""
        if not details or details.get("threshold") is None:
            return []
        keeps = ">=" if self.params.descending else "<="
        return [Threshold(self.params.column, details["threshold"], keeps, self.params.drop_reason)]

    def intended_drop_share(self) -> float:
        """All but the fraction kept."""
        return 1.0 - self.params.fraction

    def limitations(self, details: dict | None) -> list[str]:
        """The set inherits the scoring model's preferences."""
        p = self.params
        return [f"- Only the {100 * p.fraction:g}% of samples scoring highest on `{p.column}` were kept: the set "
                f"inherits the preferences (and the training data's biases) of the model that gave that score."]

    def apply(self, view: pa.Table, state: dict, shard: str) -> pa.Table:
        """Drop every row ranked after the last kept one, and every row without a score."""
        ranked = self._ranked(view)
        if "threshold" in state:
            kept = ranked["score"] >= state["threshold"]
        elif state["keep"] == 0:
            kept = np.zeros(len(ranked), dtype=bool)
        else:
            better = ranked["score"] > state["score"]
            tie = ranked["score"] == state["score"]
            uid_first = (ranked["f0"] < state["f0"]) | ((ranked["f0"] == state["f0"]) & (ranked["f1"] <= state["f1"]))
            kept = better | (tie & uid_first)
        reason = np.where(kept, None, self.params.drop_reason).astype(object)
        reason[np.isnan(ranked["score"])] = "missing_score"
        return pa.table({"uid": view.column("uid"), "drop_reason": pa.array(reason, pa.string())})


def _ranking_records(collected: Collected, columns: tuple[str, ...]) -> Iterator[list[np.ndarray]]:
    """Each shard's scored rows as records in ranking order: descending score, then uid."""
    for shard in collected:
        table = collected[shard].select(list(columns))
        score = table.column("score").to_numpy()
        scored = ~np.isnan(score)
        yield [_descending(order_key(score[scored]))] + [
            table.column(name).to_numpy()[scored].astype(np.uint64) for name in columns[1:]]


def _descending(keys):
    """Order keys reversed (largest score first); an involution."""
    return np.invert(np.asarray(keys, np.uint64))


def _oriented(value: float, descending: bool) -> float | None:
    """A ranking score back in the column's own terms (None when every sample passes)."""
    if not np.isfinite(value):
        return None
    return value if descending else -value
