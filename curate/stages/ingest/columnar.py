"""Sample rows built column at a time: the same sample.v1 values `sample_row` gives row by row
(uids, keys, caption checks, drop reasons), computed over whole Arrow columns, so a table of
metadata is ingested at Arrow speed. Only what has no vectorised form runs per row: a uid's
hash, an image's header and its sha256, and the rare caption Python must strip itself."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.io.samples import Checks, inspect_image

# a caption that starts and ends with printable, non-space ASCII is one neither Python's strip nor
# any other changes; only the others are stripped in Python, so both paths strip alike
_MAY_NEED_STRIP = r"^[^\x21-\x7e]|[^\x21-\x7e]$"
_HEX32 = r"^[0-9a-fA-F]{32}$"
_NULL_STRING = pa.scalar(None, pa.string())


def keys(column: pa.ChunkedArray | None, rows: int) -> pa.Array:
    """Each row's key as text; a missing one (or no key column) is the row number, 9 digits."""
    numbers = None
    if column is None or column.null_count:
        numbers = pc.utf8_lpad(pa.array(np.arange(rows)).cast(pa.string()), 9, "0")
    if column is None:
        return numbers
    column = column.combine_chunks()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_integer(column.type):
        text = column.cast(pa.string())
    else:  # what str() of the value gives, as the row path does
        text = pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
    return pc.coalesce(text, numbers) if numbers is not None else text


def made_uids(source: str, keys: pa.Array) -> pa.Array:
    """make_uid(source, key) of every key."""
    prefix = hashlib.sha256(f"{source}\x1f".encode())

    def uid(key: str) -> str:
        digest = prefix.copy()
        digest.update(key.encode())
        return digest.hexdigest()[:32]

    return pa.array([uid(key) for key in keys.to_pylist()], pa.string())


def given_uids(column: pa.ChunkedArray, source: str, keys: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(uid, problem) from a uid column, as given_uid judges each value: 32 hex digits, kept in
    lower case; a missing (missing_uid) or malformed (bad_uid) one gets the uid made from the key."""
    column = column.combine_chunks()
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        good = pa.array(np.zeros(len(column), bool))
    else:
        column = column.cast(pa.string())
        good = pc.fill_null(pc.match_substring_regex(column, _HEX32), False)
    problem = pc.if_else(column.is_null(), "missing_uid", pc.if_else(good, _NULL_STRING, "bad_uid"))
    uids = pc.utf8_lower(pc.if_else(good, column, _NULL_STRING)) if column.type == pa.string() else pa.nulls(
        len(column), pa.string())
    if not good.to_numpy(zero_copy_only=False).all():
        uids = pc.coalesce(uids, made_uids(source, keys))
    return uids, problem


def clean_captions(column: pa.ChunkedArray, max_bytes: int = Checks.max_caption_bytes) -> tuple[pa.Array, pa.Array]:
    """(caption, problem) of every row, as clean_caption judges each one: missing_caption,
    caption_too_long (over max_bytes UTF-8 bytes), caption_not_utf8, empty_caption."""
    given = column.combine_chunks()
    raw = given.cast(pa.binary()) if not pa.types.is_binary(given.type) else given
    too_long = pc.fill_null(pc.greater(pc.binary_length(raw), max_bytes), False)
    raw = pc.if_else(too_long, pa.scalar(None, pa.binary()), raw)
    text, not_utf8 = _as_text(raw)
    strip = pc.fill_null(pc.match_substring_regex(text, _MAY_NEED_STRIP), False)
    if pc.any(strip).as_py():
        rows = np.flatnonzero(strip.to_numpy(zero_copy_only=False))
        stripped = [value.strip() for value in text.take(pa.array(rows)).to_pylist()]
        text = _put(text, rows, pa.array(stripped, pa.string()))
    empty = pc.fill_null(pc.equal(text, ""), False)
    problem = pc.if_else(given.is_null(), "missing_caption",
                         pc.if_else(too_long, "caption_too_long",
                                    pc.if_else(not_utf8, "caption_not_utf8",
                                               pc.if_else(empty, "empty_caption", _NULL_STRING))))
    return pc.if_else(problem.is_valid(), _NULL_STRING, text), problem


def _as_text(raw: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(text, not_utf8): the bytes as strings, null where they are not UTF-8. Arrow checks a
    whole column at once; only a column holding a bad value is decoded row by row."""
    try:
        return raw.cast(pa.string()), pa.array(np.zeros(len(raw), bool))
    except pa.ArrowInvalid:
        decoded, bad = [], []
        for value in raw.to_pylist():
            try:
                decoded.append(None if value is None else value.decode("utf-8"))
                bad.append(False)
            except UnicodeDecodeError:
                decoded.append(None)
                bad.append(True)
        return pa.array(decoded, pa.string()), pa.array(bad)


def _put(array: pa.Array, rows: np.ndarray, values: pa.Array) -> pa.Array:
    """`array` with the values at `rows` replaced."""
    mask = np.zeros(len(array), bool)
    mask[rows] = True
    positions = np.cumsum(mask) - 1
    spread = values.take(pa.array(np.where(mask, positions, 0)))
    return pc.if_else(pa.array(mask), spread, array)


def image_columns(images: pa.ChunkedArray, skip: pa.Array, checks: Checks) -> dict[str, pa.Array]:
    """image (empty and over-the-byte-limit ones removed), image_format, width, height, sha256
    and the image's problem, as sample_row gives them; rows in `skip` (a problem known before
    looking) are not inspected."""
    values = images.combine_chunks()
    skipped = skip.to_numpy(zero_copy_only=False)
    formats, widths, heights, digests, problems = [], [], [], [], []
    for data, known in zip(values.to_pylist(), skipped):
        info, problem = ({}, None) if known else inspect_image(data, checks)
        if problem == "image_too_many_bytes":
            data = None
        formats.append(info.get("image_format"))
        widths.append(info.get("width"))
        heights.append(info.get("height"))
        digests.append(hashlib.sha256(data).hexdigest() if data else None)
        problems.append(problem)
    problem = pa.array(problems, pa.string())
    gone = pc.or_(pc.equal(problem, "image_too_many_bytes").fill_null(False),
                  pc.equal(pc.binary_length(values), 0).fill_null(False))
    return {"image": pc.if_else(gone, pa.scalar(None, values.type), values),
            "image_format": pa.array(formats, pa.string()), "width": pa.array(widths, pa.int32()),
            "height": pa.array(heights, pa.int32()), "sha256": pa.array(digests, pa.string()), "problem": problem}


def first_problem(*problems: pa.Array) -> pa.Array:
    """Per row, the first problem of those given, in order (null: none)."""
    return pc.coalesce(*problems)
