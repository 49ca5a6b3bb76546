"""The web pool: image files plus URL lists pointing at them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.pools import PoolError, build, web as web_pool
from curate.pools.emoji import EMOJI_PACKAGE, OPENMOJI_PACKAGE, emoji_samples
from curate.pools.flags import flag_files, is_eval
from curate.pools.openclipart import clipart_sample, list_pngs
from curate.pools.sources import VENDOR_ENV, vendor_tarball
from curate.pools.tuxpaint import is_retrieval, list_stamps
from curate.pools.web import SOURCES, URL_FILES, url_file
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
        build("web", out, limit=3)
    return out


def _url_files(root: Path) -> dict[str, str]:
    """key -> the URL list file (stem) that holds its row."""
    return {row["key"]: shard for shard in manifest(root)["shards"]
            for row in pq.read_table(root / "urls" / f"{shard}.parquet").to_pylist()}


def test_every_url_row_has_its_file(web: Path) -> None:
    meta = manifest(web)
    table = rows(web, "urls")
    assert (meta["kind"], meta["format"], meta["files"], meta["base_url"]) == (
        "pool", "urls", "files", "http://127.0.0.1:8765")
    assert meta["n"] == len(table) == 3 * len(SOURCES) and meta["url_files"] == URL_FILES == 16
    assert meta["shards"] == sorted({url_file(r["key"]) for r in table}) and len(meta["shards"]) > 1
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
    assert stamps and not any(is_retrieval(r["caption"]) for r in stamps)
    assert not any(is_eval(r["path"][:2].upper()) for r in table if r["source"] == "flags")
    assert len({r["source"] for r in table[:5]}) > 1  # sources are mixed across shards
    assert len({r["key"] for r in table}) == len(table)
    assert {r["source_key"] for r in table if r["source"] == "emoji"} & {
        r["source_key"] for r in table if r["source"] == "openmoji"}  # same code points, distinct keys


def test_base_url_and_determinism(web: Path, tmp_path: Path) -> None:
    meta = build("web", tmp_path, limit=3, base_url="http://files.example:9000/pool/")
    assert meta["base_url"] == "http://files.example:9000/pool"
    again = {k: v for k, v in tree(tmp_path).items() if k.startswith("files/")}
    assert again == {k: v for k, v in tree(web).items() if k.startswith("files/")}
    assert rows(tmp_path, "urls")[0]["url"].startswith("http://files.example:9000/pool/")
    one = build("web", tmp_path, limit=1, base_url="http://files.example:9000/pool/")
    assert len(list((tmp_path / "files").rglob("*.png"))) == len(SOURCES)
    assert sorted(p.name for p in (tmp_path / "urls").iterdir()) == [f"{s}.parquet" for s in one["shards"]]
    assert one["shards"] == sorted({url_file(r["key"]) for r in rows(tmp_path, "urls")})


def test_an_items_url_file_does_not_depend_on_limit(web: Path, tmp_path: Path) -> None:
    build("web", tmp_path, limit=4)
    three, four = _url_files(web), _url_files(tmp_path)
    assert len(four) == 4 * len(SOURCES) and set(three) < set(four)
    assert {key: four[key] for key in three} == three  # same file, so the same uid at ingest
    assert all(shard == url_file(key) and int(shard) < URL_FILES for key, shard in four.items())
    assert url_file("emoji_1f600") == f"{int(hashlib.sha256(b'emoji_1f600').hexdigest()[:8], 16) % 16:05d}"


def test_web_takes_no_samples_per_shard(tmp_path: Path) -> None:
    with pytest.raises(PoolError, match="web does not take samples_per_shard"):
        build("web", tmp_path, samples_per_shard=4)


def test_flags_of_held_out_countries_are_refused_from_web(web: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    emoji = [s for s in emoji_samples() if s.key in ("1f1e6-1f1ee", "1f1e6-1f1e9")]  # Anguilla (held out), Andorra
    clipart = [clipart_sample("signs_and_symbols/flags/flag_of_poland_marcin_wi_01.png"),
               clipart_sample("animals/2_dead_frogs_lumen_desig_01.png")]
    monkeypatch.setattr(web_pool, "SOURCES", {"emoji": lambda **_: iter(emoji),
                                              "openclipart": lambda **_: iter(clipart)})
    meta = build("web", tmp_path)
    assert meta["refused_keys"] == {"emoji": ["1f1e6-1f1ee"], "openclipart": [clipart[0].key]}
    assert (meta["n"], meta["refused_eval_items"]) == (2, 2)
    assert meta["refused_by"] == {"eval_flag_code": 1, "eval_flag_name": 1}
    assert {r["key"] for r in rows(tmp_path, "urls")} == {"emoji_1f1e6-1f1e9", f"openclipart_{clipart[1].key}"}
