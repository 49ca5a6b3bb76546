"""`curate metadata build` and reading metadata files."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from curate import InputError, ResumeError, load_pipeline, run_pipeline
from curate.cli import app
from curate.metaclip.metadata import WORDNET_DIR, build_metadata, load_metadata
from conftest import write_pipeline, write_pool


def _fake_wordnet(folder):
    folder.mkdir()
    header = "  1 This software and database is being provided to you, the LICENSEE, by\n"
    files = {"index.noun": ["hot_dog n 1 ...", "dog n 7 ...", "St._Louis n 1 ..."],
             "index.verb": ["dog v 1 ...", "run v 40 ..."], "index.adj": ["hot a 21 ..."], "index.adv": []}
    for name, lines in files.items():
        (folder / name).write_text(header + "".join(line + "\n" for line in lines))
    return folder


def test_wordnet_then_unigrams_then_extras_without_repeats(tmp_path):
    (tmp_path / "titles.txt").write_text("Star Wars\n\ndog\nhot dog\n")
    (tmp_path / "mine.json").write_text(json.dumps(["Star Wars", "the Beatles"]))
    entries = build_metadata(min_frequency=1e-3, wordnet_dir=_fake_wordnet(tmp_path / "wn"),
                             extra=[tmp_path / "titles.txt", tmp_path / "mine.json"])
    assert entries[:5] == ["hot dog", "dog", "St. Louis", "run", "hot"]  # licence lines skipped, _ -> space
    unigrams = entries[5:-2]
    assert unigrams[:3] == ["the", "to", "and"] and "run" not in unigrams  # most frequent first, no repeats
    assert not any(ch.isdigit() for word in unigrams for ch in word)
    assert entries[-2:] == ["Star Wars", "the Beatles"]
    assert len(entries) == len(set(entries))


@pytest.mark.skipif(not (WORDNET_DIR / "index.noun").is_file(), reason="apt wordnet-base (make setup installs it)")
def test_cli_builds_from_the_real_wordnet(tmp_path):
    result = CliRunner().invoke(app, ["metadata", "build", "--out", str(tmp_path / "m.json"), "--no-unigrams"])
    assert result.exit_code == 0, result.output
    entries = json.loads((tmp_path / "m.json").read_text())
    assert 140_000 < len(entries) < 160_000 and "hot dog" in entries and not any("_" in e for e in entries)
    assert f"{len(entries):,} entries" in result.output


def test_bad_metadata_files_are_clear_errors(tmp_path):
    (tmp_path / "dict.json").write_text('{"dog": 1}')
    with pytest.raises(InputError, match="JSON list of strings"):
        load_metadata(tmp_path / "dict.json")
    with pytest.raises(InputError, match="must be a .json list"):
        (tmp_path / "m.txt").write_text("dog\n")
        load_metadata(tmp_path / "m.txt")
    with pytest.raises(InputError, match="No WordNet|wordnet-base"):
        build_metadata(wordnet_dir=tmp_path / "nowhere")
    write_pool(tmp_path / "pool", 1, 5)
    path = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run",
                          stages=[{"stage": "metaclip_match", "params": {"metadata": str(tmp_path / "no.json")}}])
    with pytest.raises(InputError, match="curate metadata build --out"):
        run_pipeline(load_pipeline(path))


def test_a_changed_metadata_file_is_a_changed_configuration(tmp_path):
    write_pool(tmp_path / "pool", 1, 6)
    metadata = tmp_path / "m.json"
    metadata.write_text(json.dumps(["red", "circle"]))
    path = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run",
                          stages=[{"stage": "metaclip_match", "params": {"metadata": str(metadata)}}])
    assert run_pipeline(load_pipeline(path))["curated"] == 1  # "a red circle on a blue background"
    metadata.write_text(json.dumps(["red", "circle", "square"]))
    with pytest.raises(ResumeError, match="a file its params point to changed"):
        run_pipeline(load_pipeline(path))
    assert run_pipeline(load_pipeline(path), force=True)["curated"] == 2  # and "a small green square ..."
