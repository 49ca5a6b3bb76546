"""The one build setting pyproject.toml cannot say: the top-level schemas/ folder ships inside the
wheel as curate/schemas/ (every other package is found as usual)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["curate*"]), "curate.schemas"], package_dir={"curate.schemas": "schemas"})
