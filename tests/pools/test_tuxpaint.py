"""The Tux Paint pool and its held-out retrieval set, from the installed stamps."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import webdataset as wds

from curate.pools import build
from curate.pools.images import image_size
from curate.pools.tuxpaint import (caption_group, caption_of, is_retrieval, list_stamps, retrieval_stamps,
                                   stamp_sample, without_image)
from pool_helpers import need, rows, tree


@pytest.fixture(autouse=True)
def stamps() -> None:
    need(list_stamps)


def test_caption_is_the_first_english_line() -> None:
    text = "A calculator.  6x7=42\naf.utf8='n Sakrekenaar.\nca@valencia.utf8=Una calculadora.\n"
    assert caption_of(text) == "A calculator.  6x7=42"
    assert caption_of("\n  pt_BR.utf8=Um sapo.\nA frog.\n") == "A frog."


def test_pool_layout_captions_and_determinism(tmp_path: Path) -> None:
    meta = build("tuxpaint", tmp_path / "a", limit=6)
    build("tuxpaint", tmp_path / "b", limit=6)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert (meta["name"], meta["kind"], meta["n"], meta["shards"]) == ("tuxpaint", "pool", 6, ["00000"])
    assert meta["refused_eval_items"] == 0 and "tuxpaint-retrieval" in meta["eval_guard"]["checked"]
    assert meta["counts"]["skipped_no_image"] == 2  # seasonal/christmas/gift.txt and gift2.txt
    table = {r["key"]: r for r in rows(tmp_path / "a")}
    frog = table["animals_amphibians_frog-1"]
    assert (frog["caption"], frog["category"]) == ("A frog.", "animals")
    assert frog["path"] == "animals/amphibians/frog-1.png"
    assert frog["sha256"] and frog["width"] > 0
    assert table["animals_amphibians_frog"]["caption"] == "A frog."  # same caption, same side
    assert not any(is_retrieval(r["caption"]) for r in table.values())
    samples = list(wds.WebDataset(str(tmp_path / "a" / "00000.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == list(table)
    assert all({"png", "txt", "json"} <= set(s) for s in samples)


def test_svg_only_stamps_render_to_256_pixels() -> None:
    stamp = next(s for s in list_stamps() if s.image.endswith(".svg"))
    sample = stamp_sample(stamp)
    assert sample is not None and sample == stamp_sample(stamp)
    assert sample.truth["rendered_from_svg"] and max(image_size(sample.image)) == 256


def test_caption_groups() -> None:
    assert caption_group("The letter  P.") == caption_group("the letter p") == "the letter p"
    assert caption_group("Tux—the Linux mascot!") == "tux—the linux mascot"
    assert caption_group(" A rocket ...") == "a rocket"
    assert without_image() == ["seasonal/christmas/gift.txt", "seasonal/christmas/gift2.txt"]


def test_no_caption_is_on_both_sides_and_eval_captions_are_unique(tmp_path: Path) -> None:
    stamps = list_stamps()
    held = {caption_group(s.caption) for s in stamps if is_retrieval(s.caption)}
    kept = {caption_group(s.caption) for s in stamps if not is_retrieval(s.caption)}
    assert held and not held & kept
    assert 0.06 < len(held) / len(held | kept) < 0.14
    side = {s.stem: is_retrieval(s.caption) for s in stamps}
    for group in (["space/rocket1", "space/rocket2", "space/rocket3", "space/rocket4", "space/rocket5"],
                  ["clothes/hats/crown1", "clothes/hats/crown2"],
                  ["seasonal/newyears/party-horn-in", "seasonal/newyears/party-horn-out"],
                  ["seasonal/newyears/fireworks", "seasonal/newyears/fireworks2"]):
        assert len({side[stem] for stem in group}) == 1, group
    meta = build("tuxpaint-retrieval", tmp_path)
    evaluated = rows(tmp_path)
    groups = [caption_group(r["caption"]) for r in evaluated]
    assert len(groups) == len(set(groups)) == len(held) == meta["n"]
    assert meta["counts"]["left_out_same_caption"] == sum(is_retrieval(s.caption) for s in stamps) - len(held) > 0
    assert meta["counts"]["skipped_no_image"] == 2 and set(groups) == held


def test_retrieval_set_layout(tmp_path: Path) -> None:
    meta = build("tuxpaint-retrieval", tmp_path, limit=4)
    assert (meta["kind"], meta["task"], meta["n"]) == ("eval", "retrieval", 4)
    evaluated = rows(tmp_path)
    first = retrieval_stamps()[0]
    assert all(is_retrieval(r["caption"]) for r in evaluated)
    assert (evaluated[0]["caption"], evaluated[0]["path"]) == (first.caption, first.image)
    key = first.stem.replace("/", "_")
    with tarfile.open(tmp_path / "test" / "0.tar") as tar:
        assert tar.getnames()[:3] == [f"{key}.png", f"{key}.txt", f"{key}.json"]
    assert (tmp_path / "dataset_type.txt").read_text() == "retrieval\n"
