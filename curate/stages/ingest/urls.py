"""Ingest URL lists: download with img2dataset's downloader, one shard of URLs per task, so the
executor (Ray on a cluster) spreads the downloads. Every URL ends as a row: the image, or why
there is none."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from curate.errors import InputError
from curate.io.inputs import expand_inputs, shard_names
from curate.io.samples import sample_row
from curate.stage import ShardSpec, SourceStage, register
from curate.stages.ingest.common import IngestParams
from curate.stages.ingest.table import read_table

_ROW = "curate_row"  # carried through img2dataset to match its results to our rows
_REASONS = (  # (pattern in img2dataset's message, drop reason); the first match wins
    (r"not an http\(s\) URL", "unsupported_url_scheme"), (r"redirect", "redirect_loop"), (r"HTTP Error (\d+)", "http_{0}"), (r"timed out", "timeout"),
    (r"Connection refused", "connection_refused"), (r"Name or service not known", "unknown_host"),
    (r"Image decoding error", "not_an_image"), (r"image too small", "image_too_small"),
    (r"image area too large", "image_area_too_large"), (r"aspect ratio too large", "aspect_ratio_too_large"),
)


class UrlParams(IngestParams):
    """The URL list's columns, and how to download and resize."""

    url_column: str = Field("url", description="column holding the image URL")
    caption_column: str = Field("caption", description="column holding the caption")
    key_column: str | None = Field("key", description="unique key; without it, the row number in its file")
    urls_per_shard: int = Field(1000, ge=1, description="URLs per shard: the unit of work and of resume")
    thread_count: int = Field(32, ge=1, description="download threads per task")
    timeout: float = Field(10, gt=0, description="seconds per request")
    retries: int = Field(0, ge=0, description="attempts after a failed download")
    resize_mode: Literal["no", "keep_ratio", "center_crop", "border", "keep_ratio_largest"] = Field(
        "no", description="img2dataset's resize mode; no: bytes are kept as downloaded")
    image_size: int = Field(256, ge=1, description="target size for the resize modes")
    encode_format: Literal["jpg", "png", "webp"] = Field("jpg", description="format of resized images")
    min_image_size: int = Field(0, ge=0, description="smallest side, in pixels")
    max_image_area: float = Field(float("inf"), gt=0, description="width x height, in pixels")


@register
class IngestUrls(SourceStage):
    """Download the images of URL lists (Parquet, CSV, TSV or JSONL with url and caption)."""

    name = "ingest_urls"
    Params = UrlParams
    output_schema = "url_sample.v1"

    def list_shards(self) -> list[ShardSpec]:
        """Each list file in chunks of urls_per_shard rows, named <file stem>-<chunk>."""
        listings = expand_inputs(self.params.inputs, self.params.dataset)
        specs, size = [], self.params.urls_per_shard
        for listing, stem in zip(listings, shard_names([f.name for f in listings])):
            rows = self._check_list(listing.url)
            for chunk, start in enumerate(range(0, max(rows, 1), size)):
                specs.append(ShardSpec(f"{stem}-{chunk:05d}", (listing.url, listing.name, start, start + size),
                                       listing.fingerprint))
        return specs

    def _check_list(self, url: str) -> int:
        """A URL list must have its url and caption columns and unique keys; returns its length."""
        p = self.params
        table = self._read(url)
        for column in (p.url_column, p.caption_column):
            if column not in table.column_names:
                raise InputError(f"URL list {url} has no column {column!r} (it has {table.column_names}); "
                                 f"set url_column / caption_column")
        if p.key_column in table.column_names:
            keys = table.column(p.key_column).cast(pa.string())
            if pc.count_distinct(keys).as_py() != len(keys):
                twice = [c["values"] for c in pc.value_counts(keys).to_pylist() if c["counts"] > 1][:3]
                raise InputError(f"URL list {url} repeats keys {twice}; keys must be unique")
        return table.num_rows

    def _read(self, url: str, rows: tuple[int, int] | None = None) -> pa.Table:
        p = self.params
        return read_table(url, p.caption_column, (p.key_column, p.url_column), rows)

    def read_shard(self, spec: ShardSpec, warnings: list[str]) -> Iterator[dict]:
        """Download the shard's URLs; one row per URL, in list order.

        A shard where every URL was refused is not committed: the server was down, and a rerun
        once it is up should download it rather than reuse the failures.
        """
        url, source, start, stop = spec.location
        rows = self._read(url, (start, stop)).to_pylist()
        links = [row.get(self.params.url_column) for row in rows]
        results = self._download([link if _fetchable(link) else "" for link in links])
        samples = [self._row(source, start + offset, row, results.get(offset)) for offset, row in enumerate(rows)]
        if samples and all(sample["drop_reason"] == "connection_refused" for sample in samples):
            raise InputError(f"every URL of shard {spec.shard} was refused (e.g. {links[0]}): is the "
                             f"server up? Nothing was committed; run again once it answers")
        yield from samples

    def _download(self, urls: list[str | None]) -> dict[int, dict]:
        """img2dataset's downloader over one shard: row offset -> its result row."""
        listing = pa.table({"url": [u or "" for u in urls], _ROW: list(range(len(urls)))})
        with tempfile.TemporaryDirectory(prefix="curate-urls-") as tmp:
            with pa.ipc.new_file(f"{tmp}/shard.arrow", listing.schema) as writer:
                writer.write_table(listing)
            self._downloader(tmp).download_shard((0, f"{tmp}/shard.arrow"))
            results = pq.read_table(next(Path(tmp).glob("*.parquet"))).to_pylist()
        return {result[_ROW]: result for result in results}

    def _downloader(self, output_folder: str):
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no update check over the network
        from img2dataset.downloader import Downloader
        from img2dataset.resizer import Resizer
        from img2dataset.writer import ParquetSampleWriter

        p = self.params
        keep_bytes = p.resize_mode == "no"
        resizer = Resizer(image_size=p.image_size, resize_mode=p.resize_mode, resize_only_if_bigger=False,
                          encode_format=p.encode_format, disable_all_reencoding=keep_bytes,
                          min_image_size=p.min_image_size, max_image_area=p.max_image_area)
        return Downloader(
            sample_writer_class=ParquetSampleWriter, resizer=resizer, thread_count=p.thread_count,
            save_caption=False, extract_exif=False, output_folder=output_folder, column_list=["url", _ROW],
            timeout=p.timeout, number_sample_per_shard=max(p.urls_per_shard, 10), oom_shard_count=5,
            compute_hash=None, verify_hash_type=None, encode_format=p.encode_format, retries=p.retries,
            user_agent_token=None, disallowed_header_directives=None)

    def _row(self, source: str, index: int, row: dict, result: dict | None) -> dict:
        p = self.params
        key = row.get(p.key_column) if p.key_column else None
        key = f"{index:09d}" if key is None else str(key)
        extra = {c: v for c, v in row.items() if c not in (p.url_column, p.caption_column, p.key_column)
                 and v is not None}
        if not _fetchable(row.get(p.url_column)):
            result = {"status": "failed_to_download", "error_message": f"not an http(s) URL: {row.get(p.url_column)!r}"}
        result = result or {"status": "failed_to_download", "error_message": "no result from the downloader"}
        status, error = result["status"], result.get("error_message")
        sample = sample_row(source, key, result.get(p.encode_format), row.get(p.caption_column),
                            url=row.get(p.url_column), meta=extra, checks=p.checks,
                            problem=None if status == "success" else _reason(error))
        rejected = self._rejected(sample) if status == "success" else None
        if rejected:
            status, error, sample["drop_reason"] = "rejected", rejected, rejected
        if status != "success":
            sample["image"] = None  # bytes that are no usable image are not kept
        return {**sample, "status": status, "download_error": error}

    def _rejected(self, sample: dict) -> str | None:
        """curate's own checks of a downloaded image: within the limits, decodable, big enough."""
        p = self.params
        if sample["image_format"] is None or sample["drop_reason"]:
            return sample["drop_reason"]
        if min(sample["width"], sample["height"]) < p.min_image_size:
            return "image_too_small"
        if sample["width"] * sample["height"] > p.max_image_area:
            return "image_area_too_large"
        return None


def _fetchable(url: str | None) -> bool:
    """Only http(s) URLs are downloaded: a file:// URL in a list must not read local files."""
    return isinstance(url, str) and url.lower().startswith(("http://", "https://"))


def _reason(message: str | None) -> str:
    """A drop reason from img2dataset's error message."""
    for pattern, reason in _REASONS:
        match = re.search(pattern, message or "", re.IGNORECASE)
        if match:
            return reason.format(*match.groups())
    return "download_failed"
