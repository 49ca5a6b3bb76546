"""Caption junk: each kind caught, ordinary captions left alone."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate.stages.select.caption_junk import CaptionJunk

CASES = [
    ("IMG_4821.JPG", "caption_is_filename"), ("DSC0042", "caption_is_filename"),
    ("holiday photo.png", "caption_is_filename"), ("a dog, more at www.example.com", "caption_has_url"),
    ("see https://x.io/a/b", "caption_has_url"), ("a3f9b2c4d5e6f7a8b9c0d1e2", "caption_has_hash"),
    ("upload Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==", "caption_has_hash"),
    ("write to a.b@example.org", "caption_has_email"), ("Untitled", "caption_is_boilerplate"),
    ("  image.  ", "caption_is_boilerplate"), ("click here", "caption_is_boilerplate"),
    ("a red circle on a blue background", None), ("the flag of Norway", None), ("grinning face", None),
    ("Sunset over Paris in 2019", None), ("supercalifragilisticexpialidocious nonsense", None),
    ("an image of a cat", None), ("photo of a dog", None),
]


def _process(captions, **params):
    stage = CaptionJunk(CaptionJunk.Params(**params), "junk")
    batch = pa.RecordBatch.from_pydict({"uid": [f"{i:032x}" for i in range(len(captions))], "caption": captions})
    return stage.process(batch).to_pylist()


@pytest.mark.parametrize("caption, reason", CASES, ids=[c for c, _ in CASES])
def test_each_kind_of_junk_and_clean_captions(caption, reason):
    assert _process([caption])[0]["drop_reason"] == reason


def test_every_kind_is_measured_even_when_it_does_not_drop():
    rows = _process(["IMG_1.jpg at www.example.com", "my logo"], drop=["junk_url"], boilerplate=["My Logo"])
    assert rows[0]["junk_filename"] is False and rows[0]["junk_url"] is True
    assert rows[0]["drop_reason"] == "caption_has_url"
    assert rows[1]["junk_boilerplate"] is True and rows[1]["drop_reason"] is None
