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


def test_flags_of_flags_eval_countries_are_refused(tmp_path: Path) -> None:
    from curate.pools.flags import flag_files
    from curate.pools.guard import eval_guard, write_guarded_pool
    from curate.pools.openclipart import COLUMNS

    need(flag_files)
    paths = {
        "signs_and_symbols/flags/america/national_flag_of_canada1.png": "eval_flag_name",  # "National Flag of Canada"
        "signs_and_symbols/flags/flag_of_poland_marcin_wi_01.png": "eval_flag_name",  # "Flag of Poland"
        "signs_and_symbols/flags/africa/togo.png": "eval_flag_name",  # no title: the path names it
        "signs_and_symbols/flag_of_brazil_rodrigo_t1.png": None,  # Brazil is in the flags pool
        "recreation/sports/golf_flag_in_hole_on_gr_01.png": None,  # a flag, no country
        "animals/2_dead_frogs_lumen_desig_01.png": None,
    }
    samples = [clipart_sample(p) for p in paths]
    assert samples[1].caption == "Flag of Poland"
    current = eval_guard()
    assert [current.reason(s, "openclipart") for s in samples] == list(paths.values())
    meta = write_guarded_pool(samples, tmp_path, name="openclipart", columns=COLUMNS, samples_per_shard=10,
                              manifest={})
    assert meta["refused_keys"] == [s.key for s, why in zip(samples, paths.values()) if why]
    assert (meta["n"], meta["refused_eval_items"], meta["refused_by"]) == (3, 3, {"eval_flag_name": 3})
