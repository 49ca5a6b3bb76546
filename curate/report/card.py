"""The dataset card: a Markdown file beside the curated shards, in the spirit of the Hugging
Face dataset card and the Dataset Nutrition Label: what is in the set, where it came from and
under which licences, how it was filtered, what it is likely to lack, and how to load it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl

from curate.pools.licences import licence_of
from curate.report.facts import RunFacts
from curate.report.funnel import FunnelStep
from curate.run import read_json

CARD = "README.md"


def origins(facts: RunFacts) -> pl.DataFrame:
    """Samples ingested and curated per origin: the `source` a sample's meta names (the web
    pool's openclipart, emoji, ...), else its input's folder (`fashion/00001.tar` -> fashion)."""
    origin = pl.coalesce(pl.col("meta").str.json_path_match("$.source"), pl.col("source").str.split("/").list.first())
    return (facts.samples().group_by(origin.alias("origin"))
            .agg(pl.len().alias("ingested"), pl.col("kept").sum().alias("curated")).sort("origin").collect())


def card_path(facts: RunFacts) -> Path:
    """Beside the curated shards when the run exported them, else in the run directory."""
    shards = facts.summary.get("outputs", {}).get("curated_shards")
    return Path(shards) / CARD if shards and Path(shards).is_dir() else facts.root / "DATASET_CARD.md"


SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
                   (10_000_000_000, "1B<n<10B")]


def dataset_card(facts: RunFacts, steps: list[FunnelStep]) -> str:
    """The card's Markdown, with the Hugging Face hub's YAML front matter; every path in it is
    relative to the card's own folder, so the card stays true wherever the set is copied."""
    table = origins(facts)
    here = card_path(facts).parent
    parts = [_front_matter(facts, steps, table), _overview(facts, steps, here), _sources(facts, table),
             _curation(facts, steps), _limits(facts, steps, table), _loading(facts, here), _provenance(facts)]
    return "\n\n".join(part.strip() for part in parts) + "\n"


def _relative(path: str | Path, here: Path) -> str:
    """A path as seen from the card's folder."""
    return os.path.relpath(Path(path).resolve(), here.resolve())


def _stated_licence(facts: RunFacts) -> str | None:
    return getattr(facts.source.params, "licence", None)


def _front_matter(facts: RunFacts, steps: list[FunnelStep], table: pl.DataFrame) -> str:
    """The hub's metadata: licence ids of the curated origins, size category, tasks."""
    curated = steps[-1].kept if steps else 0
    ids = sorted({licence_of(origin or "", _stated_licence(facts)).hub_id
                  for origin, _, kept in table.iter_rows() if kept})
    size = next((name for limit, name in SIZE_CATEGORIES if curated < limit), "n>10B")
    lines = ["---", f"pretty_name: {json.dumps(facts.summary.get('pipeline', facts.root.name) + ' (curated)')}"]
    lines += ["license:", *(f"- {hub_id}" for hub_id in ids)] if len(ids) > 1 else [f"license: {(ids or ['unknown'])[0]}"]
    lines += ["size_categories:", f"- {size}", "task_categories:", "- zero-shot-image-classification",
              "- image-to-text", "- text-to-image", "tags:", "- clip", "- webdataset", "- curate", "---"]
    return "\n".join(lines)


def _overview(facts: RunFacts, steps: list[FunnelStep], here: Path) -> str:
    ingested, curated = steps[0].alive_in, steps[-1].kept
    share = f"{100 * curated / ingested:.1f}%" if ingested else "none"
    outputs = facts.summary.get("outputs", {})
    subset = _relative(outputs["subset"], here) if "subset" in outputs else None
    dropped = _relative(outputs.get("dropped", facts.root / "dropped.parquet"), here)
    return f"""# {facts.summary.get('pipeline', facts.root.name)}: a curated image-text set

{curated:,} image-text pairs, curated by `curate` from {ingested:,} ingested samples ({share} kept) for
contrastive (CLIP) pretraining. Run directory: `{_relative(facts.root, here)}`. Every path in this
card is relative to the card's own folder.

## Files

{_carried(facts, outputs, here)}
- `{subset or 'no subset file'}`: the curated uids as a DataComp subset file (sorted uint64 pairs).
- `{dropped}`: every dropped sample with its drop reason and the
  stage that dropped it. Ingested = curated + dropped, each uid exactly once (checked at the end of the run)."""


def _carried(facts: RunFacts, outputs: dict, here: Path) -> str:
    """What the set holds besides its uids: shards with images, or (metadata-only) Parquet."""
    if "curated_metadata" in outputs:
        return (f"- Curated metadata: `{_relative(outputs['curated_metadata'], here)}`, a Parquet file per input "
                f"shard. No images: the run was metadata-only; DataComp's `resharder.py` makes the shards from the "
                f"pool's own with the subset file.")
    shards = _relative(outputs["curated_shards"], here) if "curated_shards" in outputs else None
    return f"""- WebDataset shards: {_shards_place(shards)}: per sample
  `<uid>.<image extension>`, `<uid>.txt` (the caption) and `<uid>.json` (uid, key, source, url, size, sha256 and the source's metadata);
  `sizes.json` gives the samples per shard, as open_clip's trainer reads it.
- Images: {_images(facts, outputs)}
- Per shard, a Parquet file with the same samples' metadata."""


def _images(facts: RunFacts, outputs: dict) -> str:
    """How the export wrote the images (its parameters), and how many it encoded again."""
    export = facts.stages_named("export")
    if not export:
        return "as ingested."
    params = export[0].params
    if params.keep_alpha:
        return ("as ingested, transparency kept (`keep_alpha`): readers that drop the alpha channel (webdataset's "
                "`decode(\"pil\")`, open_clip) see the colour stored under it, not the pixels curate scored.")
    return (f"RGB as curate scored them, transparency on white (`image_format: {params.image_format}`): every "
            f"reader sees the pixels curate scored. {outputs.get('images_converted', 0):,} were decoded and encoded "
            f"again (the column `image_converted` of the shards' Parquet says which); the others are the ingested "
            f"bytes.")


def _shards_place(shards: str | None) -> str:
    if shards is None:
        return "none (this run exported no shards)"
    return "this folder" if shards == "." else f"`{shards}`"


def _sources(facts: RunFacts, table: pl.DataFrame) -> str:
    lines = ["## Sources and licences", "", "| origin | ingested | curated | licence | where from |",
             "| --- | ---: | ---: | --- | --- |"]
    for origin, ingested, curated in table.iter_rows():
        licence = licence_of(origin or "", _stated_licence(facts))
        lines.append(f"| {origin} | {ingested:,} | {curated:,} | {licence.licence} | {licence.origin} |")
    return "\n".join(lines)


def _curation(facts: RunFacts, steps: list[FunnelStep]) -> str:
    lines = ["## Curation", "", "Stages in order, with samples in, dropped by reason, and kept:", "",
             "| stage | in | dropped (by reason) | kept |", "| --- | ---: | --- | ---: |"]
    for step in steps:
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in step.dropped.items()) or "none"
        lines.append(f"| {step.stage_id} | {step.alive_in:,} | {reasons} | {step.kept:,} |")
    lines += ["", "Every filter, threshold, balancing and deduplication parameter, as run:", ""]
    for stage in facts.stages:
        params = stage.params.model_dump(mode="json", exclude_none=True)
        shown = "; ".join(f"{key}: {json.dumps(value)}" for key, value in params.items()) or "defaults"
        details = facts.details(stage.id)
        found = "; ".join(f"{k} {v}" for k, v in (details or {}).items() if not isinstance(v, dict))
        lines.append(f"- **{stage.id}** (`{stage.name}`): {shown}" + (f". Found: {found}" if found else ""))
    return "\n".join(lines)


def _limits(facts: RunFacts, steps: list[FunnelStep], table: pl.DataFrame) -> str:
    lines = ["## Known biases and limits", ""]
    ingested, curated = steps[0].alive_in, steps[-1].kept
    for origin, n_in, n_out in table.iter_rows():
        before, after = n_in / max(ingested, 1), n_out / max(curated, 1)
        if abs(after - before) >= 0.05:
            lines.append(f"- {origin} is {100 * before:.0f}% of the ingested samples but {100 * after:.0f}% of "
                         f"the curated set: the filters favour some origins over others.")
    for stage in facts.stages:
        lines += stage.limitations(facts.details(stage.id))
    lines += ["- Every filter keeps what its rule or model prefers; a model's preferences come from the data it "
              "was trained on. Check the thumbnails of each drop reason in the run report before relying on a "
              "filter.",
              "- Licences of sources marked unknown above have not been checked."]
    return "\n".join(lines)


def _loading(facts: RunFacts, here: Path) -> str:
    outputs = facts.summary.get("outputs", {})
    if "curated_metadata" in outputs:
        return _loading_subset(facts, outputs, here)
    found = outputs.get("curated_shards")
    shards = _relative(found, here) if found else "SHARDS"
    names = sorted(read_json(Path(found) / "sizes.json") or {}) if found else []
    pattern = f"{shards}/{{{names[0][:-4]}..{names[-1][:-4]}}}.tar" if names else f"{shards}/{{00000..NNNNN}}.tar"
    count = facts.summary.get("curated", 0)
    return f"""## How to load

webdataset:

```python
import webdataset as wds
dataset = wds.WebDataset("{pattern}").decode("pil").to_tuple("jpg;png;jpeg;webp", "txt")
```

open_clip (training):

```bash
python -m open_clip_train.main --train-data "{pattern}" --dataset-type webdataset --train-num-samples {count}
```

polars (the curated samples' metadata; every sample of the run with its scores):

```python
import polars as pl
curated = pl.read_parquet("{shards}/*.parquet")
import curate
everything = curate.scan("{_relative(facts.root, here)}").collect()  # kept, drop_reason, dropped_by, every score
```

curate's own trainer: `curate train --data {shards} --out MODEL --samples-seen N`."""


def _loading_subset(facts: RunFacts, outputs: dict, here: Path) -> str:
    """A metadata-only run: the pool's own shards, resharded with the subset file."""
    subset, metadata = _relative(outputs["subset"], here), _relative(outputs["curated_metadata"], here)
    return f"""## How to load

The images stay in the pool's own shards; DataComp's resharder writes the curated ones:

```bash
python resharder.py -i POOL_SHARDS -o CURATED_SHARDS -s {subset}
```

polars (the curated samples' metadata; every sample of the run with its scores):

```python
import polars as pl
curated = pl.read_parquet("{metadata}/*.parquet")
import curate
everything = curate.scan("{_relative(facts.root, here)}").collect()  # kept, drop_reason, dropped_by, every score
```"""


def _provenance(facts: RunFacts) -> str:
    versions = facts.summary.get("versions", {})
    listed = ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"
    pipeline = facts.pipeline_text.strip()
    return f"""## Provenance

Versions: {listed}.

The pipeline as run:

```yaml
{pipeline}
```"""
