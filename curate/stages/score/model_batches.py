"""Feeding a model in batches: pick the rows worth scoring, and prepare the next batch (decode,
preprocess) on other threads while the model works on this one, so the model is not left waiting."""

from __future__ import annotations

import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Literal

import pyarrow as pa
from PIL import Image

Alpha = Literal["white", "black", "drop"]  # how transparent pixels are shown (see decoded_rgb)
# PIL's advice for palette images with a transparent colour, given at every such convert: it is
# what on_colour does already, and the "drop" convert is meant to drop that transparency
warnings.filterwarnings("ignore", message="Palette images with Transparency", category=UserWarning)

def scorable_rows(batch: pa.RecordBatch, columns: tuple[str, ...]) -> list[int]:
    """Indices of the rows not dropped yet whose `columns` are all present."""
    alive = batch.column("drop_reason").is_null().to_numpy(zero_copy_only=False)
    present = [batch.column(name).is_valid().to_numpy(zero_copy_only=False) for name in columns]
    return [i for i in range(batch.num_rows) if alive[i] and all(column[i] for column in present)]


def decoded_rgb(data: bytes, alpha: Alpha = "white") -> Image.Image | None:
    """An encoded image decoded to RGB, transparent pixels shown on white, or None when it does
    not decode (an image that passed a header-only check at ingest may still fail here).

    alpha "black" shows them on black; "drop" converts to RGB as webdataset's `decode("pil")`
    does, dropping the alpha channel so that the colour stored under it shows (what open_clip's
    trainer, clip_benchmark and DataComp's evaluation see)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB") if alpha == "drop" else on_colour(image, alpha)
    except Exception:  # PIL raises many types for bad bytes; all mean the same here
        return None


def on_colour(image: Image.Image, colour: str = "white") -> Image.Image:
    """RGB as a viewer shows the image: a plain convert would keep the colour under transparent
    pixels, mostly black, so black clip art on a transparent background became a black square."""
    if image.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and "transparency" not in image.info:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, colour), rgba).convert("RGB")


def clip_pixels(clip: Any, data: bytes, alpha: Alpha = "white") -> Any:
    """An encoded image as a LoadedClip takes it (see LoadedClip.pixels), or None when it does
    not decode."""
    image = decoded_rgb(data, alpha)
    return None if image is None else clip.pixels(image)


class BatchFeeder:
    """Prepares model batches ahead of the model: one thread runs the next batch's `prepare`,
    which may spread its items over `threads` decoding threads (PIL and torch release the GIL
    while they decode and resize)."""

    def __init__(self, threads: int, name: str):
        self.ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-ahead")
        self.workers = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"{name}-decode")

    def close(self) -> None:
        """Stop both pools; work not started yet is dropped."""
        self.ahead.shutdown(wait=False, cancel_futures=True)
        self.workers.shutdown(wait=False, cancel_futures=True)

    def map(self, function: Callable[[Any], Any], items: list) -> list:
        """function(item) for every item, on the decoding threads, in order."""
        return list(self.workers.map(function, items))

    def batches(self, rows: list[int], size: int, prepare: Callable[[list[int]], Any]) -> Iterator[tuple[list[int], Any]]:
        """(chunk, prepare(chunk)) for consecutive chunks of `rows`, the next chunk being
        prepared while the caller uses this one."""
        chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
        pending = self.ahead.submit(prepare, chunks[0]) if chunks else None
        for index, chunk in enumerate(chunks):
            prepared = pending.result()
            if index + 1 < len(chunks):
                pending = self.ahead.submit(prepare, chunks[index + 1])
            yield chunk, prepared
