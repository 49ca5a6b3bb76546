"""CLIP scores with open_clip: image-text cosine similarity and normalised embeddings. Images
are decoded and preprocessed on other threads while the model encodes the previous batch, so the
model is not left waiting."""

from __future__ import annotations

import re
from typing import Literal

import pyarrow as pa
from pydantic import Field

from curate.run import file_sha256
from curate.schema import load_schema
from curate.stage import Resources, ShardStage, StageParams, register
from curate.stages.score.model_batches import BatchFeeder, clip_pixels, scorable_rows


class ClipScoreParams(StageParams):
    """Which model, which weights, and how to run it."""

    model: str = Field("curate-tiny-vit", description="an open_clip architecture: ViT-B-32, ViTamin-S, curate-tiny-vit, ...")
    weights: str | None = Field(None, description="absolute path to a checkpoint (file or folder), or a pretrained tag")
    name: str | None = Field(None, description="column prefix (default clip_ + the model, e.g. clip_vit_b_32)")
    batch_size: int = Field(64, ge=1, description="images per forward pass")
    decode_threads: int = Field(2, ge=1, description="threads decoding and preprocessing images ahead of the model")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: a GPU when one is visible")


@register
class ClipScore(ShardStage):
    """<name>_score, <name>_image_embedding, <name>_text_embedding per sample."""

    name = "clip_score"
    Params = ClipScoreParams
    output_schema = "clip_score.v1"
    input_columns = ("image", "caption")

    @property
    def resources(self) -> Resources:
        """One CPU per task, and with `device: cuda` one GPU: Ray hides the GPUs from a task
        that reserves none, so a GPU scorer must say it needs one."""
        return Resources(cpus=1, gpus=1.0 if self.params.device == "cuda" else 0.0)

    @property
    def prefix(self) -> str:
        """The column prefix, from `name` or the model."""
        return self.params.name or "clip_" + re.sub(r"[^a-z0-9]+", "_", self.params.model.lower()).strip("_")

    def schema(self) -> pa.Schema:
        """clip_score.v1 with its columns named after the scorer."""
        base = load_schema(self.output_schema)
        names = [n if n == "uid" else f"{self.prefix}_{n}" for n in base.names]
        return pa.schema([field.with_name(n) for field, n in zip(base, names)], metadata=base.metadata)

    def content_digest(self) -> str | None:
        """The local weights file's sha256: a checkpoint rewritten at the same path is new weights."""
        from curate.models.clip import is_local, weights_file

        return file_sha256(weights_file(self.params.weights)) if is_local(self.params.weights) else None

    def setup(self) -> None:
        """Load the model once per worker."""
        from curate.models.clip import load_clip

        self.clip = load_clip(self.params.model, self.params.weights, self.params.device)
        self.feeder = BatchFeeder(self.params.decode_threads, "clip")

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        """Score the rows still alive that have an image and a caption; the rest get nulls."""
        rows = batch.num_rows
        images, captions = batch.column("image").to_pylist(), batch.column("caption").to_pylist()
        scores, image_emb, text_emb = [None] * rows, [None] * rows, [None] * rows

        def prepare(chunk: list[int]):
            return self._prepare(chunk, images, captions)

        for _, prepared in self.feeder.batches(scorable_rows(batch, self.input_columns), self.params.batch_size, prepare):
            self._encode(prepared, scores, image_emb, text_emb)
        names = self.schema().names
        return pa.table({"uid": batch.column("uid"), names[1]: pa.array(scores, pa.float32()),
                         names[2]: pa.array(image_emb, pa.binary()), names[3]: pa.array(text_emb, pa.binary())})

    def _prepare(self, chunk: list[int], images: list, captions: list):
        """Row indices that decoded, their pixels and their tokenised captions (None: none decoded)."""
        import torch

        pixels = self.feeder.map(lambda data: clip_pixels(self.clip, data), [images[i] for i in chunk])
        ok = [i for i, p in zip(chunk, pixels) if p is not None]
        if not ok:
            return None
        return ok, torch.stack([p for p in pixels if p is not None]), self.clip.tokenizer([captions[i] for i in ok])

    def _encode(self, prepared, scores, image_emb, text_emb) -> None:
        if prepared is None:
            return
        ok, pixels, tokens = prepared
        image, text = self.clip.encode(pixels, tokens)
        score = (image * text).sum(-1).cpu().numpy()
        image, text = image.cpu().numpy().astype("<f2"), text.cpu().numpy().astype("<f2")
        for row, i in enumerate(ok):
            scores[i], image_emb[i], text_emb[i] = float(score[row]), image[row].tobytes(), text[row].tobytes()
