"""Security checks on what curate reads: pipeline files cannot run code, stages come only from
the registry, checkpoints cannot run code when loaded, and a caption cannot script the report.
(URL schemes, image limits and paths out of a table's folder: tests/hostile.)"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from curate import ConfigError, PipelineConfig, load_pipeline


def test_a_pipeline_file_with_python_tags_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "p.yaml").write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n"
                                     "run_dir: run\nstages: []\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_pipeline(tmp_path / "p.yaml")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["os.system", "curate.run.RunDir", "subprocess:Popen"])
def test_a_stage_is_only_ever_a_registered_name(tmp_path, name):
    config = PipelineConfig(name="x", run_dir=str(tmp_path / "run"), stages=[{"stage": name}])
    with pytest.raises(ConfigError, match=r"unknown stage .*known stages: .*ingest_webdataset"):
        config.build_stages()


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    pytest.importorskip("torch")
    from curate.models.clip import load_clip

    payload = _Payload()
    payload.marker = str(tmp_path / "ran")
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"state_dict": payload}, handle)
    with pytest.raises(ConfigError, match="cannot load weights"):
        load_clip("curate-tiny-vit", str(tmp_path / "evil.pt"), "cpu")
    assert not (tmp_path / "ran").exists()


def test_a_caption_cannot_script_the_report(small_run, tmp_path):
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.report import write_run_report

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    attack = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    for path in sorted((run / "ingest_webdataset").glob("*.parquet")):
        table = pq.read_table(path)
        captions = pa.array([attack] * table.num_rows, table.schema.field("caption").type)
        pq.write_table(table.set_column(table.column_names.index("caption"), "caption", captions), path)
    html = write_run_report(run).report.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html and "<img src=x" not in html
    assert "default-src 'none'" in html
