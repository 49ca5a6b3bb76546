"""metaclip_match's matcher against MetaCLIP's reference semantics: hand-worked cases for every
rule, and the reference's own loop on random captions."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from curate.metaclip.matcher import EntryMatcher

ENTRIES = ["dog", "hot", "hot dog", "hot-dog", "Dog", ",", "dog,", "St. Louis", "café", "hot  dog",
           " dog", "a b c", "b c", "?", "`", "new york city", "new york", "york", "dog"]


def reference(caption: str, entries: list[str]) -> list[int]:
    """MetaCLIP's substr_matching, literally: pad, space the punctuation, blank the whitespace,
    look for " entry "."""
    text = f" {caption} "
    for punct in [",", ".", ";", ":", "?", "!", "`"]:
        text = text.replace(punct, f" {punct} ")
    for char in ["\t", "\n", "\r"]:
        text = text.replace(char, " ")
    return [i for i, entry in enumerate(entries) if f" {entry} " in text]


def matched(captions: list[str | None], entries: list[str] = ENTRIES) -> list[list[str] | None]:
    ids = EntryMatcher(entries).match(pa.array(captions, pa.string())).to_pylist()
    return [None if row is None else [entries[i] for i in row] for row in ids]


@pytest.mark.parametrize("caption, expected", [  # expected in id order; "dog" is entries 0 and 18
    ("a hot dog", ["dog", "hot", "hot dog", "dog"]),             # nested entries all match
    ("hot dog, please", ["dog", "hot", "hot dog", ",", "dog"]),  # the comma is spaced off
    ("my dog.", ["dog", "dog"]),                                 # so is the full stop
    ("dog;dog:dog?dog!dog`", ["dog", "?", "`", "dog"]),
    ("hot\tdog", ["dog", "hot", "hot dog", "dog"]),              # tab, CR, LF become spaces
    ("hot\r\ndog", ["dog", "hot", "hot  dog", " dog", "dog"]),   # ... one space each
    ("Hot Dog", ["Dog"]),                                        # case-sensitive
    ("hot-dog", ["hot-dog"]),                                    # a hyphen joins: no "hot", no "dog"
    ("dogs and hotdogs", []),                                    # plurals and compounds do not match
    ("St. Louis", []),                                           # the entry is not spaced like the caption
    ("un café", ["café"]),
    ("hot  dog", ["dog", "hot", "hot  dog", " dog", "dog"]),     # two spaces: not "hot dog"
    ("a b c", ["a b c", "b c"]),
    ("new york city", ["new york city", "new york", "york"]),
    ("", []),
])
def test_each_rule_by_hand(caption, expected):
    assert [ENTRIES[i] for i in reference(caption, ENTRIES)] == expected  # the hand-worked answer is right
    assert matched([caption])[0] == expected


def test_a_repeated_entry_matches_under_each_id_and_null_stays_null():
    ids = EntryMatcher(ENTRIES).match(pa.array(["the dog", None], pa.string())).to_pylist()
    assert ids == [[0, 18], None]


def test_equals_the_reference_loop_on_random_captions():
    rng = random.Random(3)
    words = ["dog", "hot", "Dog", "new", "york", "city", "a", "b", "c", "café", "St", "Louis", "x-y", ""]
    glue = [" ", " ", " ", "  ", ",", ", ", ".", "\t", "\n", "?", "!", "`", ";", ":", "-"]
    entries = ENTRIES + ["x-y", "c ,", "a b", "york city", ". ", "Louis", ":"]
    captions = ["".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(0, 9)))
                for _ in range(3000)]
    got = EntryMatcher(entries).match(pa.array(captions)).to_pylist()
    assert got == [reference(caption, entries) for caption in captions]


def test_no_entries_or_no_captions():
    assert EntryMatcher([]).match(pa.array(["dog"])).to_pylist() == [[]]
    assert EntryMatcher(["dog"]).match(pa.array([], pa.string())).to_pylist() == []
