"""The Tux Paint pool and its held-out retrieval set, from the installed stamps."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import webdataset as wds

from curate.pools import build
from curate.pools.images import image_size
from curate.pools.tuxpaint import caption_of, is_retrieval, list_stamps, stamp_sample
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
    table = {r["key"]: r for r in rows(tmp_path / "a")}
    frog = table["animals_amphibians_frog-1"]
    assert (frog["caption"], frog["category"]) == ("A frog.", "animals")
    assert frog["path"] == "animals/amphibians/frog-1.png"
    assert frog["sha256"] and frog["width"] > 0
    assert "animals_amphibians_frog" not in table  # held out for retrieval
    samples = list(wds.WebDataset(str(tmp_path / "a" / "00000.tar"), shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in samples] == list(table)
    assert all({"png", "txt", "json"} <= set(s) for s in samples)


def test_svg_only_stamps_render_to_256_pixels() -> None:
    stamp = next(s for s in list_stamps() if s.image.endswith(".svg"))
    sample = stamp_sample(stamp)
    assert sample is not None and sample == stamp_sample(stamp)
    assert sample.truth["rendered_from_svg"] and max(image_size(sample.image)) == 256


def test_retrieval_split_is_disjoint_and_about_ten_percent(tmp_path: Path) -> None:
    stems = [s.stem for s in list_stamps()]
    held = [s for s in stems if is_retrieval(s)]
    assert 0.06 < len(held) / len(stems) < 0.14
    meta = build("tuxpaint-retrieval", tmp_path, limit=4)
    assert (meta["kind"], meta["task"], meta["n"]) == ("eval", "retrieval", 4)
    evaluated = rows(tmp_path)
    assert all(is_retrieval(r["path"].rsplit(".", 1)[0]) for r in evaluated)
    assert evaluated[0]["caption"] == "A frog." and evaluated[0]["path"] == "animals/amphibians/frog.png"
    with tarfile.open(tmp_path / "00000.tar") as tar:
        assert tar.getnames()[:3] == ["animals_amphibians_frog.png", "animals_amphibians_frog.txt",
                                      "animals_amphibians_frog.json"]
