"""text_class_filter: captions naming a class (ImageNet-1k's by default) as whole words."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate import ConfigError
from curate.stage import stage_class


def _named(captions: list[str], **params) -> list:
    cls = stage_class("text_class_filter")
    stage = cls(cls.Params(**params))
    batch = pa.RecordBatch.from_pydict({"uid": [f"{i:032x}" for i in range(len(captions))], "caption": captions,
                                        "drop_reason": [None] * len(captions)})
    out = stage.process(batch)
    return list(zip(out.column("named_class").to_pylist(), out.column("drop_reason").to_pylist()))


def test_imagenet_names_match_as_whole_words_case_ignored_longest_first():
    assert _named(["A Great White Shark!", "two sharks", "a goldfish bowl", "sunset over the sea", None]) == [
        ("great white shark", None), (None, "names_no_class"), ("goldfish", None), (None, "names_no_class"),
        (None, "names_no_class")]


def test_a_users_file_of_names(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("Red Panda\n\ncat\ncat\n")
    assert _named(["a red panda asleep", "catalogue", "my cat."], classes=str(path)) == [
        ("red panda", None), (None, "names_no_class"), ("cat", None)]


def test_an_empty_or_missing_file_is_a_config_error(tmp_path):
    (tmp_path / "empty.txt").write_text("\n")
    for path in (tmp_path / "empty.txt", tmp_path / "missing.txt"):
        with pytest.raises(ConfigError):
            _named(["x"], classes=str(path))
