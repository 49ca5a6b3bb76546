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
    schemas = sorted(p.name for p in (ROOT / "schemas").glob("*.json"))  # the one source, at the top level
    assert [n.removeprefix("curate/schemas/") for n in names if n.startswith("curate/schemas/")] == schemas
    assert "curate/report/templates/run.html.j2" in names
    probe = ("import curate, curate.schema as s; print(curate.__file__); print(sorted(curate.registered_stages())); "
             "print(s.SCHEMA_DIR); print(','.join(s.load_schema(n.removesuffix('.json')).names[0] "
             "for n in sorted(p.name for p in s.SCHEMA_DIR.iterdir())))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    where, stages, folder, firsts = result.stdout.split("\n")[:4]
    assert where.startswith(str(tmp_path / "site")) and folder.startswith(str(tmp_path / "site"))
    assert firsts.split(",") == ["uid"] * len(schemas) and "caption_stats" in stages
