"""Row-aligned .npz arrays (DataComp's embeddings beside each metadata file): their shapes read
from the archive's headers alone, and an array read as a column of float16 vectors."""

from __future__ import annotations

import io
import zipfile

import fsspec
import numpy as np
import pyarrow as pa

from curate.dedup.embeddings import encode
from curate.errors import InputError


def npz_shapes(path: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """key -> (shape, dtype) of every array of an .npz, from the headers only (no data read)."""
    try:
        with fsspec.open(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
            shapes = {}
            for name in archive.namelist():
                with archive.open(name) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                shapes[name.removesuffix(".npy")] = (shape, dtype)
            return shapes
    except FileNotFoundError:
        raise InputError(f"{path} is missing: DataComp's embeddings lie beside each metadata file, with the same "
                         f"stem; fetch it, or set embeddings: [] to ingest the metadata alone") from None
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read {path} as an .npz: {error}") from None


def check_npz(path: str, keys: list[str], rows: int, table_url: str) -> None:
    """Each named array must hold one float vector per row of the table it lies beside."""
    shapes = npz_shapes(path)
    missing = [key for key in keys if key not in shapes]
    if missing:
        raise InputError(f"{path} has no array {missing[0]!r} (it holds {', '.join(shapes)}); "
                         f"list the keys to read in embeddings")
    for key in keys:
        shape, dtype = shapes[key]
        if len(shape) != 2 or shape[0] != rows or dtype.kind != "f":
            raise InputError(f"{path}: array {key!r} is {dtype} {shape}, but {table_url} has {rows} rows: an .npz "
                             f"must hold one float vector per row, in the table's order")


def npz_column(path: str, key: str, rows: np.ndarray | None = None) -> pa.ChunkedArray:
    """One array of an .npz as a column of float16 vectors (only `rows`, when given)."""
    try:
        with fsspec.open(path, "rb") as handle:
            local = "://" not in path or path.startswith("file://")
            matrix = np.load(handle if local else io.BytesIO(handle.read()), allow_pickle=False)[key]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read array {key!r} of {path}: {error}; the run reads the pool's embeddings "
                         f"where it found them: restore the file, or ingest again") from None
    return encode(matrix if rows is None else matrix[rows])
