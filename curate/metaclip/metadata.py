"""Building MetaCLIP metadata: a JSON list of entry strings from WordNet 3.0 lemmas, English
unigrams from wordfreq, and extra lists (titles, a user's own file). Deduplicated, first
occurrence wins, so the order (and so every entry id) is stable for the same inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from curate.errors import InputError

WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_INDEXES = ("index.noun", "index.verb", "index.adj", "index.adv")
# MetaCLIP took unigrams seen at least 100 times in English Wikipedia (about 4 billion words)
DEFAULT_MIN_FREQUENCY = 2.5e-8


def wordnet_lemmas(folder: Path = WORDNET_DIR) -> Iterator[str]:
    """Every lemma of WordNet's index files (nouns, verbs, adjectives, adverbs, in that order,
    each as the file orders it), underscores turned into spaces."""
    missing = [name for name in WORDNET_INDEXES if not (folder / name).is_file()]
    if missing:
        raise InputError(f"WordNet index files {', '.join(missing)} not found in {folder}; "
                         f"install them with `apt-get install wordnet-base` (or `make setup`)")
    for name in WORDNET_INDEXES:
        with open(folder / name, encoding="utf-8") as lines:
            for line in lines:
                if line.startswith(" "):  # the licence header: each of its lines starts with spaces
                    continue
                yield line.split(" ", 1)[0].replace("_", " ")


def wordfreq_unigrams(min_frequency: float = DEFAULT_MIN_FREQUENCY) -> Iterator[str]:
    """English words from wordfreq's large list with at least `min_frequency`, most frequent
    first. Words with digits are left out: wordfreq folds every digit to 0, so "00" stands for
    any two-digit number and is no word of its own."""
    from wordfreq import get_frequency_dict

    frequencies = get_frequency_dict("en", wordlist="large")
    words = [w for w, f in frequencies.items() if f >= min_frequency and not any(c.isdigit() for c in w)]
    yield from sorted(words, key=lambda w: (-frequencies[w], w))


def read_entry_list(path: Path) -> list[str]:
    """Entries from a file: a JSON list of strings (MetaCLIP's metadata.json), or plain text
    with one entry per line (blank lines skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read entry list {path}: {error}") from None
    if path.suffix == ".json":
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise InputError(f"{path} must hold a JSON list of strings, as MetaCLIP's metadata.json does")
        return entries
    return [line for line in text.splitlines() if line.strip()]


def unique_in_order(entries: Iterable[str]) -> list[str]:
    """Entries without repeats or empty strings, first occurrence kept."""
    return [e for e in dict.fromkeys(entries) if e]


def build_metadata(*, wordnet: bool = True, min_frequency: float | None = DEFAULT_MIN_FREQUENCY,
                   extra: Iterable[Path] = (), wordnet_dir: Path = WORDNET_DIR) -> list[str]:
    """The entry list: WordNet lemmas, then wordfreq unigrams (None: none), then each extra
    list, deduplicated in that order."""
    sources: list[Iterable[str]] = []
    if wordnet:
        sources.append(wordnet_lemmas(wordnet_dir))
    if min_frequency is not None:
        sources.append(wordfreq_unigrams(min_frequency))
    sources.extend(read_entry_list(Path(path)) for path in extra)
    return unique_in_order(entry for source in sources for entry in source)


def write_metadata(out: Path, entries: list[str]) -> None:
    """metadata.json: the entries as a JSON list (entry id = position), written atomically."""
    from curate.run import write_atomic

    write_atomic(Path(out), json.dumps(entries, ensure_ascii=False).encode())


def metadata_file(path: Path) -> Path:
    """`path` if it is a .json file, else an InputError that says how to make one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"metadata file {path} does not exist; build one with `curate metadata build --out {path}`")
    if path.suffix != ".json":
        raise InputError(f"metadata file {path} must be a .json list of strings, as MetaCLIP's metadata.json is")
    return path


def load_metadata(path: Path) -> list[str]:
    """A metadata.json as is: entry id = position in the list (repeats keep their own ids)."""
    return read_entry_list(metadata_file(path))
