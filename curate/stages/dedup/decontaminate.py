"""decontaminate: drop pool samples whose image is too close to an image of an evaluation set.

The evaluation images are embedded once (prepare) by the same model, weights and preprocessing
as the pool's clip_score stage (same parameters), and every partition's pool embeddings are
searched against them exactly, partitions side by side."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
from pydantic import Field

from curate.dedup.embeddings import decode
from curate.errors import ConfigError
from curate.run import file_sha256, read_json, stable_hash, write_atomic, write_json_atomic
from curate.stage import Collected, register
from curate.stages.dedup.common import DuplicateStage, unpack
from curate.stages.ingest.webdataset import grouped_members
from curate.stages.score.clip_score import ClipScore, ClipScoreParams

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
_BATCH = 1024
EVAL_EMBEDDINGS, EVAL_IDS, EVAL_RECORD = "eval_embeddings.npy", "eval_ids.json", "eval_embeddings.json"


class DecontaminateParams(ClipScoreParams):
    """The evaluation sets, the threshold, and the model of the pool's clip_score stage."""

    eval_sets: list[str] = Field(min_length=1, description="evaluation sets: folders of WebDataset shards (as "
                                 "`curate pools build fashion-mnist-test --out DIR` writes) or .tar files")
    threshold: float = Field(0.95, gt=0, le=1, description="cosine similarity to an evaluation image at or above "
                             "which a sample is dropped")
    embedding: str | None = Field(None, description="the pool's image embedding column, made by this model (null: "
                                  "the clip_score stage's; a DataComp pool's l14_img with model ViT-L-14 and "
                                  "OpenAI's weights)")


@register
class Decontaminate(DuplicateStage):
    """Samples near any evaluation image are dropped as eval_contamination."""

    name = "decontaminate"
    Params = DecontaminateParams
    reason = "eval_contamination"

    @property
    def scorer(self) -> ClipScore:
        """The clip_score stage whose embeddings this stage reads."""
        fields = {name: getattr(self.params, name) for name in ClipScoreParams.model_fields}
        return ClipScore(ClipScoreParams(**fields))

    def compared_columns(self) -> tuple[str, ...]:
        """The embedding column named, or <name>_image_embedding of the clip_score stage with the
        same model parameters."""
        return (self.params.embedding or f"{self.scorer.prefix}_image_embedding",)

    def _keep_column(self) -> str | None:
        return None

    def limitations(self, details: dict | None) -> list[str]:
        """Only the named evaluation sets were checked."""
        p = self.params
        return [f"- Copies of the evaluation sets {', '.join(Path(s).name for s in p.eval_sets)} (image similarity "
                f">= {p.threshold}) were removed; no other benchmark was checked."]

    def eval_files(self) -> list[tuple[str, Path]]:
        """(set name, tar) of every evaluation shard, in order."""
        found = []
        for entry in self.params.eval_sets:
            path = Path(entry).resolve()
            tars = _set_shards(path) if path.is_dir() else [path] if path.is_file() else []
            if not tars:
                raise ConfigError(f"stage {self.id!r}: evaluation set {entry} has no .tar shards; build it with "
                                  f"`curate pools build <name> --out {entry}` (see `curate pools list`)")
            found += [(path.name if path.is_dir() else path.stem, tar) for tar in tars]
        return found

    def content_digest(self) -> str:
        """The evaluation shards and the model weights: either changing is a new configuration."""
        return stable_hash([self.scorer.content_digest(), [file_sha256(tar) for _, tar in self.eval_files()]])

    def prepare(self, collected: Collected) -> dict:
        """Embed the evaluation images once (report/eval_embeddings.npy and their ids), reused
        while the evaluation sets and the model are the same."""
        key = stable_hash([self.content_digest(), self.params.deciding()])
        record = collected.report_dir / EVAL_RECORD
        cached = read_json(record)
        if cached and cached["key"] == key and Path(cached["prepared"]["embeddings"]).is_file():
            return cached["prepared"]
        with self.phase("embed evaluation sets"):
            ids, vectors = self._eval_embeddings()
        path = collected.report_dir / EVAL_EMBEDDINGS
        buffer = io.BytesIO()
        np.save(buffer, vectors)
        write_atomic(path, buffer.getvalue())
        write_json_atomic(collected.report_dir / EVAL_IDS, ids)
        prepared = {"embeddings": str(path), "ids": str(collected.report_dir / EVAL_IDS),
                    "sha256": file_sha256(path), "dimensions": int(vectors.shape[1])}
        write_json_atomic(record, {"key": key, "prepared": prepared})
        return prepared

    def row_bytes(self, prepared: dict | None) -> float:
        """The embedding as stored (2 bytes a dimension) and decoded (4), and the uid."""
        return 6.0 * prepared["dimensions"] + 96

    def find(self, rows: pa.Table, prepared: dict | None) -> tuple[pa.Table, dict]:
        """Search every embedding of the partition against the evaluation images'."""
        import faiss

        queries, ids = np.load(prepared["embeddings"]), read_json(Path(prepared["ids"]))
        uids, _, embeddings = unpack(rows, self.compared_columns()[0])
        table = _empty()
        if len(uids):
            index = faiss.IndexFlatIP(queries.shape[1])
            index.add(queries)
            sims, nearest = index.search(embeddings, 1)
            hit = np.flatnonzero(sims[:, 0] >= self.params.threshold)
            table = pa.table({"uid": uids.take(pa.array(hit)), "group": pa.array(nearest[hit, 0], pa.int64()),
                              "duplicate_of": pa.array([ids[i] for i in nearest[hit, 0]], pa.string()),
                              "similarity": pa.array(sims[hit, 0], pa.float32())})
        by_set = Counter(name.split("/")[0] for name in table.column("duplicate_of").to_pylist())
        details = {"eval_images": len(ids), "removed": table.num_rows, "by_eval_set": dict(sorted(by_set.items()))}
        return table.sort_by([("group", "ascending"), ("uid", "ascending")]), details

    def eval_rows(self) -> Iterator[list[tuple[str, bytes | None, str]]]:
        """(id `set/key`, image bytes, caption) of every evaluation sample, a shard at a time."""
        warnings: list[str] = []
        for set_name, tar in self.eval_files():
            yield [(f"{set_name}/{key}", _image(members), (members.get("txt") or b"").decode("utf-8", "replace"))
                   for key, members, _ in grouped_members(str(tar), warnings)]

    def _eval_embeddings(self) -> tuple[list[str], np.ndarray]:
        scorer = self.scorer
        scorer.setup()
        column = f"{scorer.prefix}_image_embedding"
        ids, vectors = [], []
        for rows in self.eval_rows():
            rows = [row for row in rows if row[1] is not None]
            for start in range(0, len(rows), _BATCH):
                chunk = rows[start:start + _BATCH]
                batch = pa.record_batch({"uid": [r[0] for r in chunk], "image": pa.array([r[1] for r in chunk], pa.binary()),
                                         "caption": [r[2] for r in chunk], "drop_reason": pa.nulls(len(chunk), pa.string())})
                embedded = scorer.process(batch).column(column)
                ok = embedded.is_valid().to_numpy(zero_copy_only=False)
                ids += [r[0] for r, good in zip(chunk, ok) if good]
                vectors.append(decode(embedded.filter(embedded.is_valid())))
        if not ids:
            raise ConfigError(f"stage {self.id!r}: no image of the evaluation sets could be embedded")
        return ids, np.concatenate([v for v in vectors if len(v)])


def _set_shards(folder: Path) -> list[Path]:
    """An evaluation set's shards, in clip_benchmark's layout or curate's older flat one."""
    from curate.eval.data import shards  # curate.eval.data reads samples with the ingest stage's reader

    try:
        return shards(folder)
    except ConfigError:
        return []


def _image(members: dict[str, bytes]) -> bytes | None:
    return next((members[ext] for ext in IMAGE_EXTENSIONS if ext in members), None)


def _empty() -> pa.Table:
    return pa.table({"uid": pa.array([], pa.string()), "group": pa.array([], pa.int64()),
                     "duplicate_of": pa.array([], pa.string()), "similarity": pa.array([], pa.float32())})
