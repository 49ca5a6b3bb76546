"""Which member of a duplicate group is kept: the highest priority first, ties by uid."""

from __future__ import annotations

import numpy as np
import polars as pl


def keep_order(uids: pl.Series, priority: np.ndarray) -> np.ndarray:
    """rank[i]: the position of item i when items are ordered to be kept first: higher priority
    first, a missing (NaN) priority last, equal priorities by uid ascending."""
    frame = pl.DataFrame({"uid": uids, "priority": pl.Series(priority).fill_nan(None)}).with_row_index("item")
    order = frame.sort(["priority", "uid"], descending=[True, False], nulls_last=True)["item"].to_numpy()
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return rank
