"""Text in images with RapidOCR's detector (PP-OCRv4 det, ONNX): the number of text boxes and the
fraction of the image they cover. Only detection runs; recognising the text is not needed to
filter images that are mostly text (T-MARS-style) and would cost several times more."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field

from curate.stage import ShardStage, StageParams, register
from curate.stages.score.model_batches import BatchFeeder, decoded_rgb, scorable_rows


class TextInImageParams(StageParams):
    """Detector settings and threads."""

    detection_side: int = Field(320, ge=32, description="the shorter image side is scaled to this before detection; "
                                "RapidOCR's own default, 736, finds smaller text and is about 8x slower")
    box_threshold: float = Field(0.5, gt=0, lt=1, description="minimum detector confidence of a text box")
    threads: int | None = Field(None, ge=1, description="ONNX Runtime threads (default: all cores)")
    decode_threads: int = Field(1, ge=1, description="threads decoding images ahead of the detector")


@register
class TextInImage(ShardStage):
    """text_boxes and text_area_fraction per sample."""

    name = "text_in_image"
    Params = TextInImageParams
    output_schema = "text_in_image.v1"
    input_columns = ("image",)

    def setup(self) -> None:
        """Open the detector's ONNX session once per worker."""
        from rapidocr_onnxruntime import RapidOCR

        options = {"det_limit_side_len": self.params.detection_side, "det_box_thresh": self.params.box_threshold}
        if self.params.threads:
            options["intra_op_num_threads"] = self.params.threads
        self.ocr = RapidOCR(**options)
        self.feeder = BatchFeeder(self.params.decode_threads, "text")

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        """Detect text in the rows still alive that have an image; the rest get nulls."""
        images = batch.column("image").to_pylist()
        boxes: list[int | None] = [None] * batch.num_rows
        covered: list[float | None] = [None] * batch.num_rows

        def prepare(chunk: list[int]) -> list:
            return self.feeder.map(_bgr_pixels, [images[i] for i in chunk])

        for chunk, pixels in self.feeder.batches(scorable_rows(batch, self.input_columns), 16, prepare):
            for i, bgr in zip(chunk, pixels):
                if bgr is not None:
                    boxes[i], covered[i] = self.detect(bgr)
        return pa.table({"uid": batch.column("uid"), "text_boxes": pa.array(boxes, pa.int32()),
                         "text_area_fraction": pa.array(covered, pa.float32())})

    def detect(self, bgr: np.ndarray) -> tuple[int, float]:
        """(number of text boxes, fraction of the image they cover) for one BGR image."""
        found, _ = self.ocr(bgr, use_det=True, use_cls=False, use_rec=False)
        if not found:
            return 0, 0.0
        return len(found), covered_fraction(found, bgr.shape[:2])


def covered_fraction(quadrilaterals: list, shape: tuple[int, int]) -> float:
    """Fraction of an image of `shape` (height, width) inside at least one quadrilateral."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    for quadrilateral in quadrilaterals:  # one at a time: fillPoly over several uses even-odd, so overlaps cancel
        cv2.fillPoly(mask, [np.rint(np.asarray(quadrilateral)).astype(np.int32)], 1)
    return float(mask.mean())


def _bgr_pixels(data: bytes) -> np.ndarray | None:
    """An encoded image as a BGR uint8 array (the detector's input), or None when it does not decode."""
    image = decoded_rgb(data)
    return None if image is None else np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
