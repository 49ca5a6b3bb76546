"""The registry of pools and evaluation sets, and the errors that say what to install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.pools import EVAL_SETS, POOLS, MissingPackageError, PoolError, build, ensure, options
from curate.pools.flags import flag_files
from curate.pools.sources import VENDOR_ENV, apt_path, vendor_tarball
from pool_helpers import need, vendor_env  # noqa: F401  (autouse fixture)


def test_registry_names() -> None:
    assert set(POOLS) == {"synthetic", "tuxpaint", "openclipart", "emoji", "openmoji", "flags", "fashion-mnist",
                          "web", "datacomp-like"}
    assert set(EVAL_SETS) == {"fashion-mnist-test", "mnist-5k", "flags-eval", "tuxpaint-retrieval"}
    for name in [*POOLS, *EVAL_SETS]:
        assert "workers" in options(name) and (name == "web") != ("samples_per_shard" in options(name)), name
        assert name == "synthetic" or "limit" in options(name)


def test_unknown_pool_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(PoolError, match="unknown pool 'nope'.*tuxpaint.*flags-eval"):
        build("nope", tmp_path)


def test_unknown_option_lists_the_accepted_ones(tmp_path: Path) -> None:
    with pytest.raises(PoolError, match="flags does not take colour; its options: limit, workers"):
        build("flags", tmp_path, colour="red")
    with pytest.raises(PoolError, match="synthetic needs n"):
        build("synthetic", tmp_path)


def test_bad_values_are_pool_errors(tmp_path: Path) -> None:
    with pytest.raises(PoolError, match="noise must be in"):
        build("fashion-mnist", tmp_path, noise=1.5)
    with pytest.raises(PoolError, match="limit must be a non-negative integer"):
        build("flags", tmp_path, limit=-1)
    with pytest.raises(PoolError, match="workers must be >= 1"):
        build("tuxpaint", tmp_path, workers=0)
    assert issubclass(PoolError, CurateError) and issubclass(MissingPackageError, PoolError)


def test_missing_debian_package_names_it(tmp_path: Path) -> None:
    with pytest.raises(MissingPackageError, match=r"install the Debian package tuxpaint-stamps-default "
                                                  r"\(apt-get install tuxpaint-stamps-default\)"):
        apt_path(tmp_path / "absent", "tuxpaint-stamps-default")


def test_missing_npm_tarball_says_make_vendor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VENDOR_ENV, str(tmp_path))
    with pytest.raises(MissingPackageError, match="run `make vendor` to fetch emoji-datasource-google"):
        build("emoji", tmp_path / "out", limit=1)
    (tmp_path / "openmoji-9.0.0.tgz").write_bytes(b"")
    (tmp_path / "openmoji-17.0.0.tgz").write_bytes(b"")
    (tmp_path / "openmoji-extra-1.0.0.tgz").write_bytes(b"")
    assert vendor_tarball("openmoji").name == "openmoji-17.0.0.tgz"


def test_vendor_dir_defaults_to_data_vendor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(VENDOR_ENV)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingPackageError, match="data/vendor"):
        vendor_tarball("openmoji")


def test_ensure_builds_only_when_the_options_differ(tmp_path: Path) -> None:
    need(flag_files)
    first, built = ensure("flags-eval", tmp_path, limit=2)
    assert built and first["options"] == {"limit": 2, "samples_per_shard": 1000}
    again, built = ensure("flags-eval", tmp_path, limit=2, workers=3)
    assert not built and again == first
    _, built = ensure("flags-eval", tmp_path, limit=3)
    assert built


def _unrelated(folder: Path) -> dict[str, bytes]:
    """Plant files that no build wrote: a note, a folder, a file named like nothing a pool writes."""
    (folder / "mine").mkdir(parents=True, exist_ok=True)
    planted = {"notes.txt": b"keep me", "mine/data.csv": b"a,b\n", "00000.csv": b"not a shard"}
    for name, data in planted.items():
        (folder / name).write_bytes(data)
    return planted


def _still_there(folder: Path, planted: dict[str, bytes]) -> bool:
    return all((folder / name).is_file() and (folder / name).read_bytes() == data for name, data in planted.items())


def test_a_rebuild_removes_only_what_the_last_build_wrote(tmp_path: Path) -> None:
    need(flag_files)
    build("flags-eval", tmp_path, limit=2, samples_per_shard=1)
    planted = _unrelated(tmp_path)
    meta = build("flags-eval", tmp_path, limit=1)  # was 2 shards, now 1
    task_files = ["classnames.txt", "dataset_type.txt", "zeroshot_classification_templates.txt"]
    assert _still_there(tmp_path, planted) and meta["outputs"] == [*task_files[:2], "test", task_files[2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["00000.csv", "_pool.json", *task_files, "mine",
                                                                 "notes.txt", "test"])
    assert sorted(p.name for p in (tmp_path / "test").iterdir()) == ["0.parquet", "0.tar", "nshards.txt"]
    build("synthetic", tmp_path, n=3, samples_per_shard=2, fmt="folder")  # another pool in the same folder
    assert _still_there(tmp_path, planted) and (tmp_path / "00001").is_dir()
    build("flags-eval", tmp_path, limit=1)
    assert _still_there(tmp_path, planted) and not (tmp_path / "00001").exists()


def test_a_rebuild_in_the_working_directory_keeps_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need(flag_files)
    monkeypatch.chdir(tmp_path)
    planted = _unrelated(tmp_path)
    build("flags-eval", Path("."), limit=1)
    build("flags-eval", Path("."), limit=1)  # `--out .` twice
    assert _still_there(tmp_path, planted) and (tmp_path / "_pool.json").is_file()


def test_an_old_or_hostile_manifest_removes_nothing_else(tmp_path: Path) -> None:
    need(flag_files)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"outside")
    pool = tmp_path / "pool"
    build("flags-eval", pool, limit=1)
    planted = _unrelated(pool)
    old = json.loads((pool / "_pool.json").read_text())
    del old["outputs"]  # written before `outputs` was recorded: shards say what to remove
    (pool / "_pool.json").write_text(json.dumps(old))
    build("flags-eval", pool, limit=1)
    assert _still_there(pool, planted)
    hostile = {**old, "outputs": ["..", "../outside.txt", str(outside), ".", "mine/data.csv", "", 7]}
    (pool / "_pool.json").write_text(json.dumps(hostile))  # names outside the folder, or not one component
    build("flags-eval", pool, limit=1)
    assert outside.read_bytes() == b"outside" and _still_there(pool, planted)
