"""The registry of pools and evaluation sets, and the errors that say what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.pools import EVAL_SETS, POOLS, MissingPackageError, PoolError, build, ensure, options
from curate.pools.flags import flag_files
from curate.pools.sources import VENDOR_ENV, apt_path, vendor_tarball
from pool_helpers import need, vendor_env  # noqa: F401  (autouse fixture)


def test_registry_names() -> None:
    assert set(POOLS) == {"synthetic", "tuxpaint", "openclipart", "emoji", "openmoji", "flags", "fashion-mnist",
                          "web"}
    assert set(EVAL_SETS) == {"fashion-mnist-test", "mnist-5k", "flags-eval", "tuxpaint-retrieval"}
    for name in [*POOLS, *EVAL_SETS]:
        assert {"workers", "samples_per_shard"} <= set(options(name)), name
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
