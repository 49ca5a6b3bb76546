"""ingested = curated + dropped, no uid twice: the end-of-run check fails loudly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import InvariantError, load_pipeline, register, run_pipeline
from curate.finalize import check_invariant
from curate.io.subset import uids_to_u8u8
from curate.stages.export.webdataset import ExportWebDataset
from conftest import write_pipeline

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
