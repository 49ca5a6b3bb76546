"""The web pool: image files plus URL lists pointing at them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from curate.pools import build
from curate.pools.emoji import EMOJI_PACKAGE, OPENMOJI_PACKAGE
from curate.pools.flags import flag_files, is_eval
from curate.pools.openclipart import list_pngs
from curate.pools.sources import VENDOR_ENV, vendor_tarball
from curate.pools.tuxpaint import is_retrieval, list_stamps
from curate.pools.web import SOURCES
from pool_helpers import REPO, manifest, need, rows, tree, vendor_env  # noqa: F401


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("web")
    # module-scoped, so it sets the vendor folder itself rather than through `vendor_env`
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(VENDOR_ENV, str(REPO / "data" / "vendor"))
        for check in (list_stamps, list_pngs, flag_files, lambda: vendor_tarball(EMOJI_PACKAGE),
                      lambda: vendor_tarball(OPENMOJI_PACKAGE)):
            need(check)
        build("web", out, limit=3, samples_per_shard=4)
    return out


def test_every_url_row_has_its_file(web: Path) -> None:
    meta = manifest(web)
    table = rows(web, "urls")
    assert (meta["kind"], meta["format"], meta["files"], meta["base_url"]) == (
        "pool", "urls", "files", "http://127.0.0.1:8765")
    assert meta["n"] == len(table) == 3 * len(SOURCES) and meta["shards"] == ["00000", "00001", "00002", "00003"]
    assert {s: c["written"] for s, c in meta["counts"].items()} == {s: 3 for s in SOURCES}
    assert not list(web.glob("*.tar"))
    for row in table:
        relative = row["url"].removeprefix(meta["base_url"] + "/")
        assert relative == f"{row['source']}/{row['key']}.png"
        assert row["key"] == f"{row['source']}_{row['source_key']}"
        data = (web / "files" / relative).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert row["caption"] == row["original_caption"] and row["trusted"] == (row["source"] == "tuxpaint")
    files = {p.relative_to(web / "files").as_posix() for p in (web / "files").rglob("*") if p.is_file()}
    assert files == {r["url"].removeprefix(meta["base_url"] + "/") for r in table}


def test_only_pool_parts_are_mixed_in(web: Path) -> None:
    table = rows(web, "urls")
    stamps = [r for r in table if r["source"] == "tuxpaint"]
    assert stamps and not any(is_retrieval(r["path"].rsplit(".", 1)[0]) for r in stamps)
    assert not any(is_eval(r["path"][:2].upper()) for r in table if r["source"] == "flags")
    assert len({r["source"] for r in table[:5]}) > 1  # sources are mixed across shards
    assert len({r["key"] for r in table}) == len(table)
    assert {r["source_key"] for r in table if r["source"] == "emoji"} & {
        r["source_key"] for r in table if r["source"] == "openmoji"}  # same code points, distinct keys


def test_base_url_and_determinism(web: Path, tmp_path: Path) -> None:
    meta = build("web", tmp_path, limit=3, samples_per_shard=4, base_url="http://files.example:9000/pool/")
    assert meta["base_url"] == "http://files.example:9000/pool"
    again = {k: v for k, v in tree(tmp_path).items() if k.startswith("files/")}
    assert again == {k: v for k, v in tree(web).items() if k.startswith("files/")}
    assert rows(tmp_path, "urls")[0]["url"].startswith("http://files.example:9000/pool/")
    build("web", tmp_path, limit=1, samples_per_shard=4, base_url="http://files.example:9000/pool/")
    assert len(list((tmp_path / "files").rglob("*.png"))) == len(SOURCES)
    assert sorted(p.name for p in (tmp_path / "urls").iterdir()) == ["00000.parquet", "00001.parquet"]
