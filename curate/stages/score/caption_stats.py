"""Cheap caption statistics for selection predicates (no pixels touched)."""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from curate.stage import ShardStage, register


@register
class CaptionStats(ShardStage):
    """caption_chars, caption_words, caption_alpha_fraction, caption_unique_word_fraction."""

    name = "caption_stats"
    output_schema = "caption_stats.v1"
    input_columns = ("caption",)

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        """Compute the statistics with polars' vectorised string functions."""
        caption = pl.col("caption")
        words = caption.str.extract_all(r"\S+")
        chars = caption.str.len_chars()
        frame = pl.from_arrow(batch).select(
            "uid",
            chars.cast(pl.Int32).alias("caption_chars"),
            words.list.len().cast(pl.Int32).alias("caption_words"),
            (caption.str.count_matches(r"\p{L}") / chars).cast(pl.Float32).alias("caption_alpha_fraction"),
            (words.list.unique().list.len() / words.list.len()).cast(pl.Float32)
            .alias("caption_unique_word_fraction"),
        )
        return frame.with_columns(pl.col(pl.Float32).fill_nan(None)).to_arrow()
