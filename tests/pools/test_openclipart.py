"""The Open Clip Art pool: titles from the SVG metadata, noise kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.pools import build
from curate.pools.openclipart import clipart_sample, list_pngs, svg_metadata
from pool_helpers import need, rows, tree

SVG = b"""<?xml version="1.0"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [
  <!ENTITY ns_svg "http://www.w3.org/2000/svg">
]>
<svg xmlns="&ns_svg;" xmlns:cc="http://web.resource.org/cc/" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><metadata><rdf:RDF><cc:Work rdf:about="">
  %s
  <dc:creator><cc:Agent><dc:title>Agent Name</dc:title></cc:Agent></dc:creator>
  <dc:subject><rdf:Bag><rdf:li>cat</rdf:li><rdf:li></rdf:li><rdf:li> pet </rdf:li></rdf:Bag></dc:subject>
</cc:Work></rdf:RDF></metadata><rect width="1" height="1"/></svg>"""


def test_metadata_is_the_works_not_the_agents() -> None:
    meta = svg_metadata(SVG % b"<dc:title> A cat </dc:title><dc:description>sits</dc:description>")
    assert meta == {"title": "A cat", "description": "sits", "keywords": ["cat", "pet"]}
    assert svg_metadata(SVG % b"")["title"] is None
    assert svg_metadata(b"<svg><metadata>") is None
    bomb = b'<!DOCTYPE x [<!ENTITY a "&b;&b;"><!ENTITY b "x">]><svg>&a;</svg>'
    assert svg_metadata(bomb) is None


@pytest.fixture(autouse=True)
def installed() -> None:
    need(list_pngs)


def test_known_titles_and_duplicates() -> None:
    frogs = clipart_sample("animals/2_dead_frogs_lumen_desig_01.png")
    assert (frogs.key, frogs.caption, frogs.truth["description"]) == (
        "animals_2_dead_frogs_lumen_desig_01", "2 dead frogs", "2 dead frogs... nothing more...")
    assert "frog" in frogs.truth["keywords"] and frogs.truth["duplicate_of"] is None
    copy = clipart_sample("animals/amphibian/2_dead_frogs_lumen_desig_01.png")
    assert copy.image == frogs.image and copy.truth["duplicate_of"] == "animals/2_dead_frogs_lumen_desig_01.png"
    floppy = clipart_sample("office/floppy_frederic_moser_01.png")  # Illustrator SVG that declares entities
    assert floppy.caption == "Floppy" and not floppy.truth["metadata_error"]


def test_pool_layout_and_determinism(tmp_path: Path) -> None:
    meta = build("openclipart", tmp_path / "a", limit=5, samples_per_shard=2)
    build("openclipart", tmp_path / "b", limit=5, samples_per_shard=2)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert (meta["n"], meta["shards"], meta["refused_eval_items"]) == (5, ["00000", "00001", "00002"], 0)
    table = rows(tmp_path / "a")
    assert [r["caption"] for r in table[:2]] == ["2 dead frogs", "2 dead frogs"]
    assert table[2]["caption"] == "Architetto Francesco Rollandin"  # the work's own (noisy) title
    assert {"title", "description", "keywords", "category", "path", "duplicate_of"} <= set(table[0])
