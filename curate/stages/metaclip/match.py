"""metaclip_match: the metadata entries each caption matches, by MetaCLIP's reference rules."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.metaclip.matcher import EntryMatcher
from curate.metaclip.metadata import load_metadata, metadata_file
from curate.run import file_sha256
from curate.stage import ShardStage, StageParams, register

NO_MATCH = "metaclip_no_match"


class MetaclipMatchParams(StageParams):
    """Which metadata."""

    metadata: Path = Field(..., description="MetaCLIP metadata.json: a JSON list of entry strings "
                           "(`curate metadata build`, or MetaCLIP's own); entry id = position")


@register
class MetaclipMatch(ShardStage):
    """metaclip_entry_ids per caption; captions matching nothing are dropped (metaclip_no_match)."""

    name = "metaclip_match"
    Params = MetaclipMatchParams
    output_schema = "metaclip_match.v1"
    input_columns = ("caption",)
    batch_size = 32768  # matching is vectorised over a batch; large batches amortise its fixed cost

    def limitations(self, details: dict | None) -> list[str]:
        """Captions naming no entry are gone."""
        return ["- Captions naming no metadata entry were dropped (metaclip_no_match)."]

    def content_digest(self) -> str:
        """The metadata file's sha256: new entries, or the same ones reordered, are new ids."""
        return file_sha256(metadata_file(self.params.metadata))

    def setup(self) -> None:
        """Build the entry table once per worker."""
        self.matcher = EntryMatcher(load_metadata(self.params.metadata))

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        """Match the captions of rows still alive; the others get null."""
        alive = pc.is_null(batch.column("drop_reason"))
        ids = self.matcher.match(pc.if_else(alive, batch.column("caption"), pa.scalar(None, pa.string())))
        unmatched = pc.and_(alive, pc.equal(pc.list_value_length(ids).fill_null(0), 0))  # no caption: no match
        reason = pc.if_else(unmatched, pa.scalar(NO_MATCH), pa.scalar(None, pa.string()))
        return pa.table({"uid": batch.column("uid"), "metaclip_entry_ids": ids, "drop_reason": reason})
