"""Caption junk: file names, URLs, hashes, e-mail addresses and boilerplate, each its own
column, the first found naming the drop."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
from pydantic import Field

from curate.stage import ShardStage, StageParams, register

_FILE_NAME = (r"(?i)^\s*(?:[\w\-.() ]{0,60}\.(?:jpe?g|png|gif|bmp|tiff?|webp|heic|svg|raw|cr2|nef)"
              r"|(?:img|dsc|dscn|dscf|pict|p|mvimg|pxl|screenshot|image|photo)[\s_\-]*\d{2,}[\w\-]*)\s*$")
_URL = r"(?i)(?:https?://|ftp://|www\.)\S+|\b[\w-]+\.(?:com|net|org|io|co|de|uk|ru|jp|cn|html?|php|aspx?)\b(?:/\S*)?"
_HEX = r"\b[0-9a-fA-F]{16,}\b"
_TOKEN = r"[A-Za-z0-9+/_\-]{24,}"  # a base64-like token is a hash when it mixes digits and letters
_EMAIL = r"(?i)\b[\w.+\-]+@[\w\-]+\.[\w.\-]+\b"
_BOILERPLATE = ("untitled", "no title", "no description", "image", "photo", "picture", "img", "thumbnail",
                "click here", "click to enlarge", "stock photo", "default", "placeholder", "null", "none",
                "n/a", "unknown", "loading", "logo", "icon", "banner", "test")
# in the order they are tested: an e-mail address also looks like a domain name
REASONS = {"junk_filename": "caption_is_filename", "junk_email": "caption_has_email", "junk_url": "caption_has_url",
           "junk_hash": "caption_has_hash", "junk_boilerplate": "caption_is_boilerplate"}


class CaptionJunkParams(StageParams):
    """Which kinds drop a sample (all are always measured); extra boilerplate phrases."""

    drop: list[str] = Field(list(REASONS), description="kinds that drop: junk_filename, junk_url, ...")
    boilerplate: list[str] = Field([], description="more whole-caption placeholders (case-insensitive)")


@register
class CaptionJunk(ShardStage):
    """One boolean column per kind of junk; drop_reason names the first kind (in `drop`) found."""

    name = "caption_junk"
    Params = CaptionJunkParams
    output_schema = "caption_junk.v1"
    input_columns = ("caption",)

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        """Regular expressions over the captions, vectorised by polars."""
        caption = pl.col("caption")
        placeholders = [p.lower() for p in (*_BOILERPLATE, *self.params.boilerplate)]
        normalised = caption.str.to_lowercase().str.strip_chars(" \t\n.!?:;-_*\"'")
        frame = pl.from_arrow(batch).select(
            "uid",
            caption.str.contains(_FILE_NAME).alias("junk_filename"),
            caption.str.contains(_URL).alias("junk_url"),
            _has_hash(caption).alias("junk_hash"),
            caption.str.contains(_EMAIL).alias("junk_email"),
            normalised.is_in(placeholders).alias("junk_boilerplate"),
        )
        reason = pl.lit(None, dtype=pl.String)
        for column in reversed([c for c in REASONS if c in self.params.drop]):
            reason = pl.when(pl.col(column).fill_null(False)).then(pl.lit(REASONS[column])).otherwise(reason)
        return frame.with_columns(reason.alias("drop_reason")).to_arrow()


def _has_hash(caption: pl.Expr) -> pl.Expr:
    """A long hex run, or a long token mixing letters and digits (a long word is no hash)."""
    mixed = pl.element().str.contains(r"\d") & pl.element().str.contains(r"[A-Za-z]")
    return caption.str.contains(_HEX) | caption.str.extract_all(_TOKEN).list.eval(mixed).list.any()
