"""Warnings at the end of a run that went wrong in a way no single sample shows: nothing was
curated, or one drop reason took more than 90% of what reached its stage (a missing caption file,
a filter that does not suit the pool). Each names the reason and says what to check."""

from __future__ import annotations

DOMINANT = 0.9  # a reason dropping more than this share of what reached its stage is warned about

HINTS = {
    "missing_caption": "expected IMAGE.txt beside each image (ingest_folder), a .txt member per sample "
                       "(ingest_webdataset) or the caption_column of a table",
    "empty_caption": "the captions are empty: check caption_column or the .txt files",
    "missing_image": "expected an image member per sample (jpg, png, webp, ...) or image_column / image_path_column",
    "not_an_image": "the image bytes are HTML, SVG or text: check the URLs or the image column",
    "corrupt_image": "the images do not decode: check the files were copied whole",
    "failed_to_download": "the downloads failed: check the URLs and that the server is reachable",
    "not_english": "the basic filter keeps English captions only: set `languages`",
    "image_too_small": "the images are smaller than min_side (DataComp's 200 px): set min_side",
    "caption_too_few_words": "the captions are shorter than min_words (DataComp's 3): set min_words",
    "metaclip_no_match": "few captions contain a metadata entry: check the metadata's language and size",
}


def drop_warnings(ingested: int, curated: int, stages: list[dict], intended: dict[str, float]) -> list[str]:
    """The run's warnings, from its per-stage figures (stage_id, alive_in, drop_counts, as the
    summary has them). `intended`: per stage id, the share it is set to drop (a top fraction of
    5% drops 95% on purpose); a reason is warned about above max(90%, intended + 5%)."""
    found = []
    if ingested and not curated:
        found.append("nothing was curated" + _largest(stages))
    for stage in stages:
        reached = stage.get("alive_in", 0)
        limit = max(DOMINANT, intended.get(stage["stage_id"], 0.0) + 0.05)
        for reason, count in stage.get("drop_counts", {}).items():
            if reached and count / reached > limit:
                hint = HINTS.get(reason)
                found.append(f"{stage['stage_id']}: `{reason}` dropped {count:,} of the {reached:,} samples that "
                             f"reached it ({count / reached:.0%})" + (f"; {hint}" if hint else ""))
    return found


def _largest(stages: list[dict]) -> str:
    """", mostly `reason` (N)" for the reason that dropped the most, if any."""
    counts = [(count, reason) for stage in stages for reason, count in stage.get("drop_counts", {}).items()]
    if not counts:
        return ""
    count, reason = max(counts)
    return f": the most samples were dropped as `{reason}` ({count:,})"
