"""Country flags: the `flags` pool and the held-out `flags-eval` classification set.

Images are the 320x240 PNGs of the Debian package iso-flags-png-320x240, used as they are,
named by ISO 3166-1 alpha-2 code; names come from iso-codes (`common_name` when present, else
`name` in reading order: "Congo, The Democratic Republic of the" reads "the Democratic
Republic of the Congo"). The caption is "the flag of <name>". Files whose name is no ISO
code (`_basque`, `eu`, `eo`, `zz`, ...) are skipped and listed in `_pool.json` under
`skipped_no_iso_code`: a caption for them would have to be invented.

Split rule: a country belongs to `flags-eval` when the first byte of sha256 of its upper-case
alpha-2 code (e.g. "FR") is below 77, about 30% of the countries; the others form the pool.
Some flags are byte-identical under several codes (FR, GF, GP, TF, WF; BL, NC, PM, RE, YT;
US, UM; VG, VI). With this rule each such group lies wholly in the pool; were one member held
out, the contamination guard would refuse the others from the pool. The guard also refuses
flag depictions of held-out countries from the other pools, by code (`flag_alpha_2`) or by
name (`name_variants`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from curate.pools.guard import write_guarded_pool
from curate.pools.sources import ISO_3166, ISO_FLAGS, apt_path
from curate.pools.writer import PoolSample, classification_files, write_pool

EVAL_BELOW = 77  # first sha256 byte < 77 of 256: about 30% held out
COLUMNS = {"alpha_2": pa.string(), "alpha_3": pa.string(), "name": pa.string(), "path": pa.string()}
EVAL_COLUMNS = {**COLUMNS, "label": pa.int32(), "label_name": pa.string()}
TEMPLATES = ("the flag of {c}.", "a photo of the flag of {c}.", "the national flag of {c}.",
             "a flag of {c}.")  # zero-shot prompts of flags-eval, written beside it
# English names iso-codes no longer gives but titles still use (for the guard's name matching)
FORMER_NAMES = {"CI": ("Ivory Coast",), "CV": ("Cape Verde",), "CZ": ("Czech Republic",), "MK": ("Macedonia",),
                "MM": ("Burma",), "MO": ("Macau",), "NL": ("Holland",), "SZ": ("Swaziland",),
                "TL": ("East Timor",), "TR": ("Turkey",)}
_INVERTED = re.compile(r"^(?P<head>[^,]+), (?P<tail>[^,]+)$")
_QUALIFIER_OF = re.compile(r"\bof(?: the)?$")
_REGIONAL_A = 0x1F1E6  # REGIONAL INDICATOR SYMBOL LETTER A; ... Z is 0x1F1FF


def countries() -> dict[str, dict]:
    """ISO 3166-1 entries by upper-case alpha-2 code."""
    entries = json.loads(apt_path(ISO_3166, "iso-codes").read_text(encoding="utf-8"))["3166-1"]
    return {entry["alpha_2"]: entry for entry in entries}


def natural_name(name: str) -> str:
    """An ISO name in reading order: "X, Y of [the]" and "X, Qualifier" become "Y of [the] X", "Qualifier X".

    "Congo, The Democratic Republic of the" -> "the Democratic Republic of the Congo",
    "Palestine, State of" -> "State of Palestine", "Virgin Islands, U.S." -> "U.S. Virgin Islands".
    Lists ("Bonaire, Sint Eustatius and Saba") and other names are kept as they are.
    """
    match = _INVERTED.match(name)
    if match is None:
        return name
    head, tail = match.group("head"), match.group("tail")
    if _QUALIFIER_OF.search(tail) or (len(tail.split()) == 1 and tail[:1].isupper()):
        return f"{tail[0].lower()}{tail[1:]} {head}" if tail.startswith("The ") else f"{tail} {head}"
    return name


def country_name(entry: dict) -> str:
    """The name people use: `common_name` when iso-codes gives one, else `name` in reading order."""
    return entry.get("common_name") or natural_name(entry["name"])


def name_variants(entry: dict) -> list[str]:
    """Every name a title may use for the country: common, ISO (both orders), official, former."""
    names = [country_name(entry), entry["name"], natural_name(entry["name"]), entry.get("common_name"),
             entry.get("official_name"), *FORMER_NAMES.get(entry["alpha_2"], ())]
    stripped = (re.sub(r"^the ", "", n, flags=re.I) for n in names if n)
    return list(dict.fromkeys(stripped))


def flag_alpha_2(code_points: str | None) -> str | None:
    """The alpha-2 code of a flag emoji given as hex code points ("1F1E6-1F1EE" -> "AI"), else None.

    A flag emoji is a pair of regional indicator symbols; subdivision flags (England, ...) and
    other sequences are not country flags and give None.
    """
    parts = [p for p in re.split(r"[-_ ]", (code_points or "").upper()) if p and p != "FE0F"]
    try:
        points = [int(p, 16) for p in parts]
    except ValueError:
        return None
    if len(points) != 2 or not all(_REGIONAL_A <= p <= _REGIONAL_A + 25 for p in points):
        return None
    return "".join(chr(ord("A") + p - _REGIONAL_A) for p in points)


def flag_files() -> tuple[list[tuple[str, Path]], list[str]]:
    """([(alpha-2, PNG path)] sorted by code, [file names with no ISO code])."""
    known = countries()
    found, skipped = [], []
    for path in sorted(apt_path(ISO_FLAGS, "iso-flags-png-320x240").glob("*.png")):
        code = path.stem.upper()
        if code in known:
            found.append((code, path))
        else:
            skipped.append(path.name)
    return found, skipped


def is_eval(alpha_2: str) -> bool:
    """Whether the country with this upper-case alpha-2 code is held out for evaluation."""
    return hashlib.sha256(alpha_2.encode()).digest()[0] < EVAL_BELOW


def _sample(code: str, path: Path, entry: dict) -> PoolSample:
    name = country_name(entry)
    truth = {"alpha_2": code, "alpha_3": entry.get("alpha_3"), "name": name, "path": path.name}
    return PoolSample(code.lower(), path.read_bytes(), "png", f"the flag of {name}", truth)


def _samples(held_out: bool, limit: int | None) -> Iterator[PoolSample]:
    known = countries()
    chosen = [(code, path) for code, path in flag_files()[0] if is_eval(code) == held_out][:limit]
    return (_sample(code, path, known[code]) for code, path in chosen)


def pool_samples(*, limit: int | None = None, workers: int = 1, counts: dict | None = None) -> Iterator[PoolSample]:
    """The flags not held out, by code. (`workers` and `counts` are accepted for a uniform call.)"""
    return _samples(False, limit)


def held_out_countries() -> dict[str, dict]:
    """The ISO entries of the `flags-eval` classes, by code (what the guard keeps out of every pool)."""
    known = countries()
    return {code: known[code] for code, _ in flag_files()[0] if is_eval(code)}


def eval_inputs() -> list[Path]:
    """The files the evaluation set is read from (for the guard's cache key)."""
    return [ISO_3166] + [path for code, path in flag_files()[0] if is_eval(code)]


def eval_samples(*, limit: int | None = None) -> Iterator[PoolSample]:
    """The held-out flags by code, labelled by their index in `eval_classnames()`."""
    samples = list(_samples(True, limit))
    for label, sample in enumerate(samples):
        yield sample._replace(truth={**sample.truth, "label": label, "label_name": sample.truth["name"]})


def _manifest_extra() -> dict:
    return {"skipped_no_iso_code": flag_files()[1],
            "source": {"package": "iso-flags-png-320x240, iso-codes", "path": str(ISO_FLAGS),
                       "split": "sha256(alpha_2)[0] < 77 -> flags-eval"}}


def build_flags(out: Path, *, limit: int | None = None, workers: int = 1, samples_per_shard: int = 1000) -> dict:
    """The pool of flags not held out, caption "the flag of <name>"."""
    return write_guarded_pool(pool_samples(limit=limit), out, name="flags", columns=COLUMNS,
                              samples_per_shard=samples_per_shard, manifest=_manifest_extra())


def build_flags_eval(out: Path, *, limit: int | None = None, workers: int = 1, samples_per_shard: int = 1000) -> dict:
    """The held-out flags as a zero-shot classification set; classnames are the country names."""
    samples = list(eval_samples(limit=limit))
    classnames = [s.truth["label_name"] for s in samples]
    return write_pool(samples, out, name="flags-eval", kind="eval", columns=EVAL_COLUMNS,
                      samples_per_shard=samples_per_shard,
                      manifest={**_manifest_extra(), "task": "classification", "classnames": classnames},
                      files=classification_files(classnames, TEMPLATES))
