"""Reading an evaluation set: curate's own (`curate pools build fashion-mnist-test --out DIR`)
or a dataset in clip_benchmark's WebDataset layout, the one DataComp's evaluation sets come in:

    DIR/classnames.txt                          one class name per line (classification)
    DIR/zeroshot_classification_templates.txt   one prompt per line, the class name as {c}
    DIR/<split>/*.tar  (clip_benchmark)  or  DIR/*.tar  (curate)

A sample holds its image (webp, png, jpg, ...), its label as `cls` (or `label` in its `.json`,
curate's layout) and its captions as `txt`, one per line (retrieval)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import ConfigError
from curate.pools.writer import CLASSNAMES_FILE, TEMPLATES_FILE
from curate.stages.ingest.webdataset import grouped_members

IMAGE_EXTENSIONS = ("webp", "png", "jpg", "jpeg", "ppm", "bmp", "tif", "tiff")


@dataclass
class EvalSample:
    """One evaluation item: image bytes (None when missing), captions, label and any metadata."""

    key: str
    image: bytes | None
    texts: list[str]
    label: int | None
    extra: dict = field(default_factory=dict)


def shards(folder: Path, split: str = "test") -> list[Path]:
    """The tar shards of a set: FOLDER/<split>/*.tar, else FOLDER/*.tar, in name order."""
    folder = Path(folder)
    for candidate in (folder / split, folder):
        found = sorted(candidate.glob("*.tar"), key=lambda p: (len(p.stem), p.stem))
        if found:
            return found
    raise ConfigError(f"{folder} holds no evaluation shards (looked for {folder / split}/*.tar and {folder}/*.tar)")


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
        texts = [line.strip() for line in _text(members.get("txt")).splitlines() if line.strip()]
        yield EvalSample(key, image, texts, _label(members, extra), extra)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")


def _json(data: bytes | None) -> dict:
    try:
        value = json.loads(data) if data else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _label(members: dict, extra: dict) -> int | None:
    raw = members.get("cls")
    if raw is not None:
        try:
            return int(_text(raw).strip())
        except ValueError:
            return None
    label = extra.get("label")
    return label if isinstance(label, int) else None
