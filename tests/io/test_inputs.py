"""Input names (the source part of every uid) and shard ids stay put when inputs are added."""

from __future__ import annotations

import pytest

from curate import InputError
from curate.io.inputs import expand_inputs, fixed_folder, shard_names


@pytest.fixture
def tree(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for index in range(2):
            (tmp_path / "data" / folder / f"pool-{index:05d}.tar").write_bytes(b"x" * (index + 1))
    return tmp_path / "data"


def test_fixed_folder_stops_at_the_first_wildcard():
    assert fixed_folder("/d/pool/{00000..00009}.tar") == "/d/pool"
    assert fixed_folder("/d/*/images") == "/d"
    assert fixed_folder("/d/a/x.tar") == "/d/a"


def test_adding_a_pattern_does_not_rename_earlier_inputs(tree):
    alone = expand_inputs([str(tree / "a" / "*.tar")])
    (tree / "b" / "extra.tar").write_bytes(b"y")
    more = expand_inputs([str(tree / "a" / "*.tar"), str(tree / "b" / "extra.tar")])
    assert [f.name for f in alone] == ["pool-00000.tar", "pool-00001.tar"]
    assert more[:2] == alone
    (tree / "b" / "extra.tar").unlink()
    braced = expand_inputs([str(tree / "{a,b}" / "*.tar")])
    assert [f.name for f in braced] == ["a/pool-00000.tar", "a/pool-00001.tar", "b/pool-00000.tar", "b/pool-00001.tar"]
    assert shard_names([f.name for f in braced]) == ["a_pool-00000", "a_pool-00001", "b_pool-00000", "b_pool-00001"]


def test_inputs_that_would_share_a_name_are_refused(tree):
    with pytest.raises(InputError, match="would both be named 'pool-00000.tar'"):
        expand_inputs([str(tree / "a" / "*.tar"), str(tree / "b" / "*.tar")])
    named = expand_inputs([str(tree / "a" / "*.tar")], dataset="web")
    assert [f.name for f in named] == ["web/pool-00000.tar", "web/pool-00001.tar"]


def test_fingerprint_follows_the_file(tree):
    before = expand_inputs([str(tree / "a" / "pool-00000.tar")])[0].fingerprint
    (tree / "a" / "pool-00000.tar").write_bytes(b"changed!")
    assert expand_inputs([str(tree / "a" / "pool-00000.tar")])[0].fingerprint != before
