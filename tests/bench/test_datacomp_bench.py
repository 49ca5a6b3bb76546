"""`curate bench datacomp`'s two sides curate the same uids; each reports its figures."""

from __future__ import annotations

from curate.bench.datacomp import Clustering, run_side, same_uids


def test_curate_and_plain_polars_curate_the_same_uids(datacomp_pool, tmp_path):
    clustering = Clustering(clusters=10, train_fraction=0.5)
    curate = run_side("curate", datacomp_pool, tmp_path, clustering)
    plain = run_side("polars", datacomp_pool, tmp_path, clustering)
    assert curate["rows"] == 2500 and 0 < curate["curated"] == plain["curated"] < 2500
    assert same_uids(curate, plain)
    assert list(curate["stages"]) == ["ingest_datacomp", "basic_filter", "select_top_fraction",
                                      "image_cluster_filter", "export_subset"]
    assert curate["peak_mib"] > 0 and plain["peak_mib"] > 0
