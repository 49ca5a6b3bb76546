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
    matrix = _float16(array, where).astype(np.float32)
    return normalised(matrix) if normalise else matrix


def stored(column: pa.ChunkedArray, where: str = "") -> np.ndarray:
    """The (n, d) float16 matrix of a binary column as stored, read a chunk at a time (a column
    past 2 GiB is never concatenated); decode rows of it with normalised(rows.astype(float32))."""
    parts = [_float16(chunk, where) for chunk in column.chunks if len(chunk)]
    if len({part.shape[1] for part in parts}) > 1:
        raise InputError(f"embeddings{where} have different lengths; they must all come from one model")
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float16)


def _float16(array: pa.Array, where: str) -> np.ndarray:
    """A view of a binary array of float16 vectors as an (n, d) matrix."""
    array = array.cast(pa.large_binary()) if array.type == pa.binary() else array
    offsets = np.frombuffer(array.buffers()[1], np.int64)[array.offset: array.offset + len(array) + 1]
    lengths = np.diff(offsets)
    if lengths.min() != lengths.max() or lengths[0] % 2 or lengths[0] == 0:
        raise InputError(f"embeddings{where} have different lengths ({lengths.min()} to {lengths.max()} bytes); "
                         f"they must all come from one model")
    values = np.frombuffer(array.buffers()[2], np.uint8)[offsets[0]: offsets[-1]]
    return values.view("<f2").reshape(len(array), -1)


def normalised(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), in place."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


def encode(matrix: np.ndarray) -> pa.Array:
    """The stored form of an (n, d) matrix: float16 bytes per row."""
    return encode_where(np.asarray(matrix).reshape(len(matrix), -1), np.ones(len(matrix), bool))


def encode_where(vectors: np.ndarray, present: np.ndarray) -> pa.Array:
    """A binary column of float16 vectors: the rows of `vectors` in order where `present` is
    true, null elsewhere (sharing the vectors' memory)."""
    width = vectors.shape[1] * 2 if vectors.ndim == 2 else 0
    lengths = np.where(present, width, 0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    if offsets[-1] >= 2**31:
        raise InputError(f"{len(vectors):,} vectors of {width} bytes exceed one column chunk; use smaller shards")
    validity = None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))
    data = np.ascontiguousarray(vectors, dtype="<f2")
    return pa.Array.from_buffers(pa.binary(), len(present), [validity, pa.py_buffer(offsets.astype(np.int32)),
                                                            pa.py_buffer(data)])
