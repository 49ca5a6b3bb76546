"""ingested = curated + dropped, no uid twice: the end-of-run check fails loudly."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from curate import InvariantError, load_pipeline, register, run_pipeline
from curate.run import output_digests
from curate.accounting import check_invariant
from curate.io.subset import uids_to_u8u8
from curate.stages.export.webdataset import ExportWebDataset
from conftest import jpeg_bytes, write_pipeline

UIDS = [f"{i:032x}" for i in range(1, 7)]


def _pairs(indices) -> np.ndarray:
    return uids_to_u8u8([UIDS[i] for i in indices])


@pytest.mark.parametrize("curated, dropped, message", [
    ([0, 1], [3, 4], "lost or invented"),
    ([0, 1, 2, 5], [3], r"0000006 was curated or dropped but never ingested"),
    ([0, 1, 2, 2], [3], r"0000003 was curated more than once"),
    ([0, 1, 2, 3], [3, 4], "both curated and dropped"),
])
def test_check_invariant_names_what_went_wrong(curated, dropped, message):
    check_invariant(_pairs(range(5)), _pairs([0, 1, 2]), _pairs([3, 4]))
    with pytest.raises(InvariantError, match=message):
        check_invariant(_pairs(range(5)), _pairs(curated), _pairs(dropped))


class _FaultyExport(ExportWebDataset):
    """An export whose first shard's metadata is then corrupted by `corrupt`."""

    def corrupt(self, table: pa.Table) -> pa.Table:
        return table

    def write_unit(self, unit, state, out_dir, view):
        written = super().write_unit(unit, state, out_dir, view)
        if unit == "00000":
            path = out_dir / "shards" / "00000.parquet"
            pq.write_table(self.corrupt(pq.read_table(path)), path)
        return written


@register
class _ExportThatRepeats(_FaultyExport):
    """Lists one sample twice."""

    name = "test_export_that_repeats"

    def corrupt(self, table):
        return pa.concat_tables([table, table.slice(0, 1)])


@register
class _ExportThatLoses(_FaultyExport):
    """Loses its last sample."""

    name = "test_export_that_loses"

    def corrupt(self, table):
        return table.slice(0, table.num_rows - 1)


@pytest.mark.parametrize("sink, message", [("test_export_that_repeats", "curated more than once"),
                                           ("test_export_that_loses", "lost or invented")])
def test_a_faulty_sink_fails_the_run(tmp_path, pool, sink, message):
    stages = [{"stage": sink, "params": {"samples_per_shard": 10}}]
    pipeline = write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"), tmp_path / "run", stages=stages)
    with pytest.raises(InvariantError, match=message):
        run_pipeline(load_pipeline(pipeline))


def test_a_run_that_curates_nothing_or_loses_most_to_one_reason_warns_with_a_hint(tmp_path):
    from curate.drop_warnings import drop_warnings

    stages = [{"stage_id": "ingest_folder", "alive_in": 100, "drop_counts": {"missing_caption": 95}},
              {"stage_id": "top", "alive_in": 5, "drop_counts": {"below_top_fraction": 5}}]
    found = drop_warnings(100, 0, stages, {"top": 0.99})
    assert found[0] == "nothing was curated: the most samples were dropped as `missing_caption` (95)"
    assert found[1].startswith("ingest_folder: `missing_caption` dropped 95 of the 100 samples that reached it (95%)")
    assert "expected IMAGE.txt beside each image" in found[1] and len(found) == 2  # the top fraction meant it
    assert drop_warnings(100, 20, [{"stage_id": "s", "alive_in": 100, "drop_counts": {"x": 80}}], {}) == []


def test_strict_makes_the_warnings_an_error(tmp_path):
    from typer.testing import CliRunner

    from curate.cli import app

    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(20):
        (folder / f"{index}.jpg").write_bytes(jpeg_bytes(index))
    (folder / "0.txt").write_text("the only image with a caption")
    config = {"name": "folder", "run_dir": str(tmp_path / "run"),
              "stages": [{"stage": "ingest_folder", "params": {"inputs": [str(folder)]}}]}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(config))
    lenient = CliRunner().invoke(app, ["run", str(tmp_path / "p.yaml"), "--quiet", "--no-report"])
    assert lenient.exit_code == 0 and "`missing_caption` dropped 19 of the 20" in " ".join(lenient.output.split())
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["warnings"][0].startswith("ingest_folder: `missing_caption` dropped 19 of the 20 samples")
    strict = CliRunner().invoke(app, ["run", str(tmp_path / "p.yaml"), "--quiet", "--no-report", "--strict"])
    assert strict.exit_code == 2 and "--strict" in strict.output


def test_the_check_gives_the_same_outputs_for_any_number_of_partitions(tmp_path, pool):
    """The check's partitions are ranges of uids: dropped.parquet, the export and its sorted
    subset.npy are byte-identical for 1, 8 or 64 of them."""
    digests = {}
    for partitions in (1, 8, 64):
        path = write_pipeline(tmp_path / f"p{partitions}.yaml", str(pool / "*.tar"), tmp_path / f"run{partitions}")
        config = yaml.safe_load(path.read_text())
        config["executor"]["check_partitions"] = partitions
        path.write_text(yaml.safe_dump(config))
        summary = run_pipeline(load_pipeline(path))
        assert summary["curated"] > 0 and summary["ingested"] == summary["curated"] + summary["dropped"]
        digests[partitions] = output_digests(tmp_path / f"run{partitions}")
        assert not (tmp_path / f"run{partitions}" / "_final").exists()
    assert "export/subset.npy" in digests[1] and "dropped.parquet" in digests[1]
    assert digests[1] == digests[8] == digests[64]
