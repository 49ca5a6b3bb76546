"""Row-aligned .npz arrays (DataComp's embeddings beside each metadata file): their shapes read
from the archive's headers alone, and an array read as a column of float16 vectors."""

from __future__ import annotations

import io
import struct
import zipfile

import fsspec
import numpy as np
import pyarrow as pa

from curate.dedup.embeddings import encode_where
from curate.errors import InputError


def npz_shapes(path: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """key -> (shape, dtype) of every array of an .npz, from the headers only (no data read)."""
    try:
        with fsspec.open(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
            shapes = {}
            for name in archive.namelist():
                with archive.open(name) as member:
                    shape, _, dtype = _header(member)
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


def npz_column(path: str, key: str, rows: np.ndarray, alive: np.ndarray) -> pa.Array:
    """Rows `rows` of one array of an .npz as a column of float16 vectors, null where `alive`
    (one flag per row asked for) is false. A local, uncompressed .npz (np.savez's, DataComp's) is
    memory-mapped, so only the alive rows are read."""
    try:
        matrix = _mapped(path, key)
        if matrix is None:
            with fsspec.open(path, "rb") as handle:
                matrix = np.load(io.BytesIO(handle.read()), allow_pickle=False)[key]
        vectors = np.asarray(matrix[rows[alive]], dtype="<f2")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read array {key!r} of {path}: {error}; the run reads the pool's embeddings "
                         f"where it found them: restore the file, or ingest again") from None
    return encode_where(vectors.reshape(len(vectors), -1), alive)


def _mapped(path: str, key: str) -> np.ndarray | None:
    """The array, memory-mapped, when the .npz is a local file that stores it uncompressed."""
    local = path.removeprefix("file://")
    if "://" in local:
        return None
    with zipfile.ZipFile(local) as archive:
        info = archive.getinfo(f"{key}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(local, "rb") as handle:
        handle.seek(info.header_offset)
        name_length, extra_length = struct.unpack("<HH", handle.read(30)[26:30])
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        shape, fortran, dtype = _header(handle)
        offset = handle.tell()
    return np.memmap(local, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _header(handle) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(handle)
