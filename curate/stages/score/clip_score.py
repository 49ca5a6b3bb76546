"""CLIP scores with open_clip: image-text cosine similarity and normalised embeddings. Images
are decoded and preprocessed on a thread while the model encodes the previous batch, so the
model is not left waiting."""

from __future__ import annotations

import io
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import pyarrow as pa
from PIL import Image
from pydantic import Field

from curate.schema import load_schema
from curate.stage import Resources, ShardStage, StageParams, register


class ClipScoreParams(StageParams):
    """Which model, which weights, and how to run it."""

    model: str = Field("curate-tiny-vit", description="an open_clip architecture: ViT-B-32, ViTamin-S, curate-tiny-vit, ...")
    weights: str | None = Field(None, description="absolute path to a checkpoint (file or folder), or a pretrained tag")
    name: str | None = Field(None, description="column prefix (default clip_ + the model, e.g. clip_vit_b_32)")
    batch_size: int = Field(64, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"


@register
class ClipScore(ShardStage):
    """<name>_score, <name>_image_embedding, <name>_text_embedding per sample."""

    name = "clip_score"
    Params = ClipScoreParams
    output_schema = "clip_score.v1"
    input_columns = ("image", "caption")
    resources = Resources(cpus=1)

    @property
    def prefix(self) -> str:
        """The column prefix, from `name` or the model."""
        return self.params.name or "clip_" + re.sub(r"[^a-z0-9]+", "_", self.params.model.lower()).strip("_")

    def schema(self) -> pa.Schema:
        """clip_score.v1 with its columns named after the scorer."""
        base = load_schema(self.output_schema)
        names = [n if n == "uid" else f"{self.prefix}_{n}" for n in base.names]
        return pa.schema([field.with_name(n) for field, n in zip(base, names)], metadata=base.metadata)

    def setup(self) -> None:
        """Load the model once per worker."""
        from curate.models.clip import load_clip

        self.clip = load_clip(self.params.model, self.params.weights, self.params.device)
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-preprocess")

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        """Score the rows still alive that have an image and a caption; the rest get nulls."""
        rows = batch.num_rows
        alive = batch.column("drop_reason").is_null().to_numpy(zero_copy_only=False)
        todo = [i for i in range(rows) if alive[i] and batch.column("image")[i].is_valid
                and batch.column("caption")[i].is_valid]
        images, captions = batch.column("image").to_pylist(), batch.column("caption").to_pylist()
        scores, image_emb, text_emb = [None] * rows, [None] * rows, [None] * rows
        size = self.params.batch_size
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        pending = self._loader.submit(self._prepare, chunks[0], images, captions) if chunks else None
        for index, chunk in enumerate(chunks):
            prepared = pending.result()
            if index + 1 < len(chunks):  # decode the next chunk while this one is encoded
                pending = self._loader.submit(self._prepare, chunks[index + 1], images, captions)
            self._encode(chunk, prepared, scores, image_emb, text_emb)
        names = self.schema().names
        return pa.table({"uid": batch.column("uid"), names[1]: pa.array(scores, pa.float32()),
                         names[2]: pa.array(image_emb, pa.binary()), names[3]: pa.array(text_emb, pa.binary())})

    def _prepare(self, chunk: list[int], images: list, captions: list):
        """Decoded, preprocessed images and tokenised captions of one chunk (None: undecodable)."""
        import torch

        pixels, ok = [], []
        for i in chunk:
            try:
                with Image.open(io.BytesIO(images[i])) as image:
                    pixels.append(self.clip.preprocess(image.convert("RGB")))
                ok.append(i)
            except Exception:  # an image that passed a header-only check may still not decode
                continue
        if not ok:
            return None
        return ok, torch.stack(pixels), self.clip.tokenizer([captions[i] for i in ok])

    def _encode(self, chunk, prepared, scores, image_emb, text_emb) -> None:
        import torch

        if prepared is None:
            return
        ok, pixels, tokens = prepared
        device = self.clip.device
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
        with torch.no_grad(), autocast:
            image = self.clip.model.encode_image(pixels.to(device), normalize=True).float()
            text = self.clip.model.encode_text(tokens.to(device), normalize=True).float()
        score = (image * text).sum(-1).cpu().numpy()
        image, text = image.cpu().numpy().astype("<f2"), text.cpu().numpy().astype("<f2")
        for row, i in enumerate(ok):
            scores[i], image_emb[i], text_emb[i] = float(score[row]), image[row].tobytes(), text[row].tobytes()


