"""The built wheel is complete: an installed curate (not this checkout) finds its schemas."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_schemas_and_runs_outside_the_checkout(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("curate-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    assert "curate/schemas/sample.v1.json" in names and "curate/report/templates/run.html.j2" in names
    probe = ("import curate, curate.schema as s; print(curate.__file__); "
             "print(sorted(curate.registered_stages())); print(s.load_schema('sample.v1').names[0])")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    where, stages, first = result.stdout.split("\n")[:3]
    assert where.startswith(str(tmp_path / "site")) and first == "uid" and "caption_stats" in stages
