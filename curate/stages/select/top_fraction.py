"""Keep the top fraction of alive samples by a score column, counted over the whole pool."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from curate.io.subset import SUBSET_DTYPE, uids_to_u8u8
from curate.selection_kth import BAND, digit_counts, key_score, kth_smallest, matching_records, order_key
from curate.stage import Collected, GlobalStage, StageParams, Threshold, register
from curate.tree_reduce import TreeReduce


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
        """The threshold, found in this process (see reduce_with)."""
        return self.reduce_with(collected, TreeReduce.in_process(self, collected))

    def reduce_with(self, collected: Collected, tree: TreeReduce) -> dict:
        """The threshold over the whole pool, DataComp's score or the last kept (score, uid),
        found by a radix select (see curate.selection_kth) whose passes run as parallel tasks
        over the shards: no task holds more than one shard's scores and a histogram (or the band
        of candidates, BAND records at most), and the driver holds a histogram."""
        counted, scored = tree.summed(_counts, label="count").tolist() or [0, 0]
        columns = ("score",) if self.params.rule == "datacomp" else ("score", "f0", "f1")
        if self.params.rule == "datacomp":
            position = int(counted * self.params.fraction)
            if position >= scored:  # past the scores: every scored sample is kept
                return {"threshold": -np.inf}
            (key,) = self._kth(tree, columns, position, scored)
            return {"threshold": key_score(_descending(key))}
        keep = min(int(round(self.params.fraction * counted)), scored)
        if keep == 0:
            return {"keep": 0}
        key, f0, f1 = self._kth(tree, columns, keep - 1, scored)
        return {"keep": keep, "score": key_score(_descending(key)), "f0": f0, "f1": f1}

    def _kth(self, tree: TreeReduce, columns: tuple[str, ...], k: int, scored: int) -> tuple[int, ...]:
        """The k-th (score, uid) record of the ranking order over every shard."""
        return kth_smallest(lambda fixed: tree.summed(_digit_counts, (columns, fixed), f"pass {len(fixed) + 1}"),
                            lambda fixed: tree.gathered(_band, (columns, fixed), "band"),
                            len(columns), k, scored, self.band)

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


def _counts(collected: Collected, shard: str, argument: None) -> np.ndarray:
    """A shard's (rows counted in N, rows with a score)."""
    score = collected.column(shard, "score").to_numpy()
    return np.array([len(score), int((~np.isnan(score)).sum())], np.int64)


def _digit_counts(collected: Collected, shard: str, argument: tuple) -> np.ndarray:
    columns, fixed = argument
    return digit_counts(_ranking_records(collected, shard, columns), fixed)


def _band(collected: Collected, shard: str, argument: tuple) -> np.ndarray:
    columns, fixed = argument
    return matching_records(_ranking_records(collected, shard, columns), fixed)


def _ranking_records(collected: Collected, shard: str, columns: tuple[str, ...]) -> list[np.ndarray]:
    """A shard's scored rows as records in ranking order: descending score, then uid."""
    table = pq.read_table(collected.paths[shard], columns=list(columns))
    score = table.column("score").to_numpy()
    scored = ~np.isnan(score)
    return [_descending(order_key(score[scored]))] + [
        table.column(name).to_numpy()[scored].astype(np.uint64) for name in columns[1:]]


def _descending(keys):
    """Order keys reversed (largest score first); an involution."""
    return np.invert(np.asarray(keys, np.uint64))


def _oriented(value: float, descending: bool) -> float | None:
    """A ranking score back in the column's own terms (None when every sample passes)."""
    if not np.isfinite(value):
        return None
    return value if descending else -value
