"""Reading an evaluation set in clip_benchmark's WebDataset layout, the one DataComp's evaluation
sets come in and `curate pools build fashion-mnist-test --out DIR` writes:

    DIR/classnames.txt                          one class name per line (classification)
    DIR/zeroshot_classification_templates.txt   one prompt per line, the class name as {c}
    DIR/dataset_type.txt                        retrieval, or classification (the default)
    DIR/<split>/nshards.txt                     N: the shards are 0.tar ... N-1.tar
    DIR/<split>/*.tar  or  DIR/*.tar            (sets without nshards.txt, as curate wrote them before)

A sample holds its image (webp, png, jpg, ...), its label as `cls` (or `label` in its `.json`,
older curate sets), its captions as `txt`, one per line (retrieval), a metadata vector as `npy`
(DataComp's WILDS and fairness sets) and, for WinoGAViL, its candidate images as `<i>.<ext>`
(member `KEY.3.png` is candidate 3)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curate.errors import ConfigError, InputError
from curate.pools.writer import CLASSNAMES_FILE, NSHARDS_FILE, TEMPLATES_FILE
from curate.stages.ingest.webdataset import grouped_members

IMAGE_EXTENSIONS = ("webp", "png", "jpg", "jpeg", "ppm", "bmp", "tif", "tiff")


@dataclass
class EvalSample:
    """One evaluation item: image bytes (None when missing), captions, label, any metadata (its
    `.json`, and its `npy` vector under "npy") and candidate images by index (WinoGAViL)."""

    key: str
    image: bytes | None
    texts: list[str]
    label: int | None
    extra: dict = field(default_factory=dict)
    candidates: dict[int, bytes] = field(default_factory=dict)


def shards(folder: Path, split: str = "test") -> list[Path]:
    """The tar shards of a set: those FOLDER/<split>/nshards.txt lists, else FOLDER/<split>/*.tar,
    else FOLDER/*.tar, in name order."""
    folder = Path(folder)
    if (folder / split / NSHARDS_FILE).is_file():
        return listed_shards(folder / split / NSHARDS_FILE)
    for candidate in (folder / split, folder):
        found = sorted(candidate.glob("*.tar"), key=lambda p: (len(p.stem), p.stem))
        if found:
            return found
    raise ConfigError(f"{folder} holds no evaluation shards (looked for {folder / split}/*.tar and {folder}/*.tar)")


def listed_shards(listed: Path) -> list[Path]:
    """0.tar ... N-1.tar beside `listed`, an nshards.txt holding N; every one must exist."""
    text = listed.read_text(encoding="utf-8").strip()
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{listed} should hold the number of shards (a positive integer), not {text!r}")
    found = [listed.parent / f"{i}.tar" for i in range(int(text))]
    missing = [p for p in found if not p.is_file()]
    if missing:
        # InputError, not ConfigError: the set is there but incomplete, and the error must name
        # the shard rather than be reported as a missing set
        raise InputError(f"{listed} lists {len(found)} shards but {missing[0]} is missing"
                         f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; "
                         f"download the set again")
    return found


def read_lines(path: Path) -> list[str]:
    """The non-empty lines of a text file; a missing file is an error naming it."""
    if not path.is_file():
        raise ConfigError(f"{path} is missing; an evaluation set keeps its {path.name} beside its shards")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def class_prompts(folder: Path) -> tuple[list[str], list[str]]:
    """(class names, prompt templates) of a classification set."""
    classnames = read_lines(Path(folder) / CLASSNAMES_FILE)
    templates = read_lines(Path(folder) / TEMPLATES_FILE)
    bad = [t for t in templates if "{c}" not in t]
    if bad:
        raise ConfigError(f"{Path(folder) / TEMPLATES_FILE}: every template needs {{c}} for the class name; not {bad[0]!r}")
    return classnames, templates


def samples(shard: Path, warnings: list[str]) -> Iterator[EvalSample]:
    """The samples of one shard, in order."""
    for key, members, _ in grouped_members(str(shard), warnings):
        image = next((members[ext] for ext in IMAGE_EXTENSIONS if ext in members), None)
        extra = _json(members.get("json"))
        label = _label(members, extra)
        metadata = _npy(members.get("npy"))
        if metadata is not None:
            extra["npy"] = metadata
        texts = [line.strip() for line in _text(members.get("txt")).splitlines() if line.strip()]
        yield EvalSample(key, image, texts, label, extra, _candidates(members))


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")


def _json(data: bytes | None) -> dict:
    try:
        value = json.loads(data) if data else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _npy(data: bytes | None) -> np.ndarray | None:
    """A .npy member's array; None when there is none or it does not load (pickles refused)."""
    if not data:
        return None
    try:
        value = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        return None
    return value if isinstance(value, np.ndarray) else None


def _candidates(members: dict) -> dict[int, bytes]:
    """Images stored as `<i>.<ext>` members, by index i."""
    found = {}
    for ext, data in members.items():
        index, _, image_ext = ext.partition(".")
        if index.isdigit() and image_ext in IMAGE_EXTENSIONS:
            found[int(index)] = data
    return found


def _label(members: dict, extra: dict) -> int | None:
    raw = members.get("cls")
    if raw is not None:
        try:
            return int(_text(raw).strip())
        except ValueError:
            return None
    label = extra.get("label")
    return label if isinstance(label, int) else None
