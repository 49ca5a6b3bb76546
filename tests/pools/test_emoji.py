"""The emoji pools, from the vendored npm tarballs."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.pools import build
from curate.pools.emoji import EMOJI_PACKAGE, OPENMOJI_PACKAGE, emoji_samples
from curate.pools.images import image_size
from curate.pools.sources import vendor_tarball
from pool_helpers import need, rows, tree, vendor_env  # noqa: F401


def test_emoji_captions_are_lower_case_names(tmp_path: Path) -> None:
    need(lambda: vendor_tarball(EMOJI_PACKAGE))
    counts: dict = {}
    samples = {s.key: s for s in emoji_samples(counts=counts)}
    assert len(samples) > 1800 and counts == {"skipped_missing_image": 0}
    grinning = samples["1f600"]
    assert grinning.caption == "grinning face" and image_size(grinning.image) == (64, 64)
    assert grinning.truth["short_name"] == "grinning" and grinning.truth["category"] == "Smileys & Emotion"
    meta = build("emoji", tmp_path / "a", limit=4)
    build("emoji", tmp_path / "b", limit=4)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert meta["source"]["tarball"].startswith("emoji-datasource-google-") and meta["n"] == 4
    assert rows(tmp_path / "a")[0]["caption"] == "hash key"


def test_openmoji_renders_svgs_with_annotations(tmp_path: Path) -> None:
    need(lambda: vendor_tarball(OPENMOJI_PACKAGE))
    meta = build("openmoji", tmp_path / "a", limit=3)
    build("openmoji", tmp_path / "b", limit=3)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert meta["n"] == 3 and meta["counts"]["skipped_missing_svg"] == 0
    first = rows(tmp_path / "a")[0]
    assert (first["key"], first["caption"], first["group"], first["tags"]) == (
        "0023-fe0f-20e3", "keycap: #", "symbols", ["keycap"])
    assert (first["width"], first["height"]) == (128, 128)


@pytest.mark.slow
def test_openmoji_is_identical_with_workers(tmp_path: Path) -> None:
    need(lambda: vendor_tarball(OPENMOJI_PACKAGE))
    build("openmoji", tmp_path / "serial", limit=40, samples_per_shard=16)
    build("openmoji", tmp_path / "parallel", limit=40, samples_per_shard=16, workers=2)
    assert tree(tmp_path / "serial") == tree(tmp_path / "parallel")
