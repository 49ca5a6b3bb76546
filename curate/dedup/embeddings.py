"""Embeddings as the scoring stages write them (float16 little-endian bytes, one vector a row),
decoded to float32 and L2-normalised for cosine similarity by inner product."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.errors import InputError


def decode(column: pa.ChunkedArray | pa.Array, where: str = "", normalise: bool = True) -> np.ndarray:
    """An (n, d) float32 matrix from a binary column of float16 vectors with no nulls; every row
    is normalised (the stored vectors are unit length before rounding to float16), unless not
    asked to (DataComp's filters use the stored values as they are)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.zeros((0, 0), np.float32)
    array = array.cast(pa.large_binary()) if array.type == pa.binary() else array
    offsets = np.frombuffer(array.buffers()[1], np.int64)[array.offset: array.offset + len(array) + 1]
    lengths = np.diff(offsets)
    if lengths.min() != lengths.max() or lengths[0] % 2 or lengths[0] == 0:
        raise InputError(f"embeddings{where} have different lengths ({lengths.min()} to {lengths.max()} bytes); "
                         f"they must all come from one model")
    values = np.frombuffer(array.buffers()[2], np.uint8)[offsets[0]: offsets[-1]]
    matrix = values.view("<f2").reshape(len(array), -1).astype(np.float32)
    return normalised(matrix) if normalise else matrix


def normalised(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), in place."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


def encode(matrix: np.ndarray) -> pa.ChunkedArray:
    """The stored form of an (n, d) matrix: float16 bytes per row, sharing the matrix's memory
    (in chunks, as a binary array's offsets reach 2 GiB)."""
    rows = np.ascontiguousarray(matrix, dtype="<f2").reshape(len(matrix), -1)
    width = rows.shape[1] * 2
    per_chunk = max(1, (2**31 - 1) // max(width, 1))
    chunks = []
    for start in range(0, len(rows), per_chunk):
        part = rows[start: start + per_chunk]
        offsets = np.arange(len(part) + 1, dtype=np.int32) * width
        chunks.append(pa.Array.from_buffers(pa.binary(), len(part), [None, pa.py_buffer(offsets), pa.py_buffer(part)]))
    return pa.chunked_array(chunks, pa.binary())
