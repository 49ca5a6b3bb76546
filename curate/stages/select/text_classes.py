"""DataComp's text-based filter: keep the captions that name a class of a list (ImageNet-1k's
class names by default, as open_clip ships them, or a file of names, one a line).

A class is named when its words stand in the caption as whole words, case ignored ("Great White
Shark!" names "great white shark"; "sharks" does not name "shark"). DataComp matches each
whitespace token's first WordNet synset against ImageNet-21k synset ids, a list that cannot be
had offline; the rule here is its plain-text counterpart, and its drops say which class matched."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

import polars as pl
import pyarrow as pa
from pydantic import Field

from curate.errors import ConfigError
from curate.run import file_sha256
from curate.stage import ShardStage, StageParams, register


class TextClassParams(StageParams):
    """Which class names count."""

    classes: str | None = Field(None, description="a text file of class names, one a line (null: ImageNet-1k's "
                                "1,000 names from open_clip)")


def class_names(path: str | None) -> list[str]:
    """The class names, lower case, without blanks and repeats (longest first: the match
    reported is then the longest name at the first place any matches)."""
    if path is None:
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

        names = list(IMAGENET_CLASSNAMES)
    else:
        try:
            names = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read the class names in {path}: {error}") from None
    unique = {name.strip().lower() for name in names if name.strip()}
    if not unique:
        raise ConfigError(f"{path} lists no class names")
    return sorted(unique, key=lambda name: (-len(name), name))


def class_pattern(names: list[str]) -> str:
    """A regex matching any of the names as whole words (Python's re and polars' read it alike)."""
    return r"\b(" + "|".join(re.escape(name) for name in names) + r")\b"


@register
class TextClassFilter(ShardStage):
    """named_class per sample; captions naming no class are dropped as names_no_class."""

    name = "text_class_filter"
    Params = TextClassParams
    output_schema = "text_classes.v1"
    input_columns = ("caption",)

    @cached_property
    def _pattern(self) -> str:
        return class_pattern(class_names(self.params.classes))

    def content_digest(self) -> str | None:
        """The class file's sha256: a changed list is a changed configuration."""
        return file_sha256(Path(self.params.classes)) if self.params.classes else None

    def check_view(self, schema: pa.Schema) -> None:
        """Read the class names before any shard runs (a missing file fails here)."""
        self._pattern  # noqa: B018

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        """The first class each caption names, and the drop of those that name none."""
        named = pl.col("caption").str.to_lowercase().str.extract(self._pattern, 1)
        return pl.from_arrow(batch).select(
            "uid", named.alias("named_class"),
            pl.when(named.is_null()).then(pl.lit("names_no_class")).alias("drop_reason")).to_arrow()

    def limitations(self, details: dict | None) -> list[str]:
        """Only captions naming a listed class are kept."""
        listed = self.params.classes or "ImageNet-1k's class names"
        return [f"- {self.id}: only captions naming a class of {listed} were kept: the set leans to those classes."]
