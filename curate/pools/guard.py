"""Contamination guard: no pool may hold an evaluation item, nor a flag of a held-out country.

Each evaluation set is encoded from its package exactly as its builder encodes it (the very
same sample functions), hashed, and never written. Pool builders refuse any item whose image
bytes hash into this set. The `flags-eval` classes are also refused by what an item depicts,
since an emoji or a clip-art flag is a different image of the same class:

- emoji and openmoji: an item whose code points (`unified`, `hexcode`) are a pair of regional
  indicators ("1F1E6-1F1EE") naming a held-out country's alpha-2 code ("AI");
- openclipart: an item that says it is a flag ("flag", "flags" or a common translation, in its
  title, description, keywords or path) and names a held-out country in its title or path
  (any of its `flags.name_variants`, also run together as file names write them, case- and
  accent-insensitive, on word boundaries; a longer name wins, so "Papua New Guinea" does not
  name "Guinea").

The hashes and the held-out flags are cached in memory per process, keyed by the size and
mtime of the files each evaluation set is read from, so a changed package is re-read.
Evaluation sets whose package is not installed are skipped and named in the manifest.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from curate.pools.sources import MissingPackageError
from curate.pools.writer import PoolSample, image_sha256, write_pool

FLAG_CODE_COLUMNS = {"emoji": "unified", "openmoji": "hexcode"}  # source -> ground truth holding its code points
FLAG_TEXT_SOURCES = frozenset({"openclipart"})  # sources refused by "flag" + a held-out country's name
_FLAG_WORD = re.compile(r"\b(?:flags?|flagge|flaggen|drapeau|drapeaux|bandera|banderas|bandeira|bandiera|vlag)\b")


def fold(text: str) -> str:
    """Lower case, accents dropped, every run of non-alphanumerics (underscores included) one space."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[\W_]+", " ", plain.lower()).split())


@dataclass(frozen=True)
class HeldOutFlags:
    """The `flags-eval` countries: their codes, and a matcher of every country's names."""

    codes: frozenset[str]
    names: re.Pattern  # every country's folded names, longest first
    owner: Mapping[str, str]  # folded name -> alpha-2 code

    @classmethod
    def from_countries(cls, held_out: Iterable[str], variants: Mapping[str, list[str]]) -> HeldOutFlags:
        """`held_out`: the codes to refuse; `variants`: code -> names of every country (so the longest name wins).

        A name two countries share names the held-out one.
        """
        codes, owner = frozenset(held_out), {}
        for code, names in sorted(variants.items()):
            for name in map(fold, names):  # also run together, as file names write them ("capeverde")
                for form in {name, name.replace(" ", "")} - {""}:
                    if owner.get(form) not in codes:
                        owner[form] = code
        alternatives = "|".join(map(re.escape, sorted(owner, key=lambda n: (-len(n), n))))
        return cls(codes, re.compile(rf"\b(?:{alternatives})\b"), owner)

    def named(self, text: str) -> set[str]:
        """The held-out countries `text` names."""
        return {self.owner[m.group(0)] for m in self.names.finditer(fold(text))} & self.codes


@dataclass(frozen=True)
class EvalGuard:
    """The image hashes of all evaluation items that could be read, the held-out flags, and what was checked."""

    hashes: frozenset[str]
    checked: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    flags: HeldOutFlags | None = None

    def summary(self) -> dict:
        """What `_pool.json` records: items hashed per evaluation set, the sets not readable, the held-out flags."""
        return {"checked": dict(sorted(self.checked.items())), "unavailable": dict(sorted(self.unavailable.items())),
                "held_out_flags": sorted(self.flags.codes) if self.flags else []}

    def reason(self, sample: PoolSample, source: str) -> str | None:
        """Why `sample` of pool `source` is refused ("eval_image", "eval_flag_code", "eval_flag_name"), or None."""
        if self.hashes and image_sha256(sample) in self.hashes:
            return "eval_image"
        if self.flags is None:
            return None
        if source in FLAG_CODE_COLUMNS:
            from curate.pools.flags import flag_alpha_2

            if flag_alpha_2(sample.truth.get(FLAG_CODE_COLUMNS[source])) in self.flags.codes:
                return "eval_flag_code"
        if source in FLAG_TEXT_SOURCES and _names_held_out_flag(sample, self.flags):
            return "eval_flag_name"
        return None

    def rule(self, source: str) -> Callable[[PoolSample], str | None]:
        """`reason` for the samples of one pool: the `exclude` that `write_pool` and `refuse` take."""
        return lambda sample: self.reason(sample, source)


def _names_held_out_flag(sample: PoolSample, flags: HeldOutFlags) -> bool:
    """Whether the item says it is a flag and names a held-out country (in its title or path)."""
    truth = sample.truth
    named_by = f"{sample.caption} {truth.get('title') or ''} {truth.get('path') or ''}"
    said = " ".join([named_by, str(truth.get("description") or ""), *(str(k) for k in truth.get("keywords") or ())])
    return bool(_FLAG_WORD.search(fold(said))) and bool(flags.named(named_by))


_CACHE: dict[tuple, object] = {}


def _eval_sources() -> dict[str, tuple[Callable[[], list[Path]], Callable[[], Iterable[PoolSample]]]]:
    """Evaluation set -> (its input files, its samples)."""
    # Imported here: these modules import this one to guard their pools.
    from curate.pools import fashion_mnist, flags, mnist, tuxpaint

    return {
        "fashion-mnist-test": (fashion_mnist.eval_inputs, fashion_mnist.eval_samples),
        "flags-eval": (flags.eval_inputs, flags.eval_samples),
        "mnist-5k": (mnist.eval_inputs, mnist.eval_samples),
        "tuxpaint-retrieval": (tuxpaint.eval_inputs, tuxpaint.eval_samples),
    }


def _fingerprint(paths: list[Path]) -> tuple:
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)


def _hashes(name: str, inputs: Callable[[], list[Path]],
            samples: Callable[[], Iterable[PoolSample]]) -> frozenset[str]:
    key = (name, _fingerprint(inputs()))
    if key not in _CACHE:
        _CACHE[key] = frozenset(hashlib.sha256(s.image).hexdigest() for s in samples())
    return _CACHE[key]


def held_out_flags() -> HeldOutFlags:
    """The `flags-eval` countries and the names of every country (raises MissingPackageError without them)."""
    from curate.pools import flags

    key = ("held-out-flags", _fingerprint(flags.eval_inputs()))
    if key not in _CACHE:
        variants = {code: flags.name_variants(entry) for code, entry in flags.countries().items()}
        _CACHE[key] = HeldOutFlags.from_countries(flags.held_out_countries(), variants)
    return _CACHE[key]


def eval_guard() -> EvalGuard:
    """The sha256s of every readable evaluation item and the held-out flags (once per process and package state)."""
    hashes: set[str] = set()
    checked, unavailable = {}, {}
    for name, (inputs, samples) in _eval_sources().items():
        try:
            found = _hashes(name, inputs, samples)
        except MissingPackageError as error:
            unavailable[name] = str(error)
            continue
        checked[name] = len(found)
        hashes |= found
    flags = held_out_flags() if "flags-eval" in checked else None
    return EvalGuard(frozenset(hashes), checked, unavailable, flags)


def write_guarded_pool(samples: Iterable[PoolSample], out: Path, *, name: str, columns: dict,
                       samples_per_shard: int, manifest: dict) -> dict:
    """`write_pool` for a pool: evaluation items are refused and the guard is recorded in `_pool.json`.

    Call it after the samples' sources are located, so a missing package fails before the
    guard spends time hashing evaluation sets.
    """
    guard = eval_guard()
    return write_pool(samples, out, name=name, columns=columns, samples_per_shard=samples_per_shard,
                      exclude=guard.rule(name), manifest={**manifest, "eval_guard": guard.summary()})
