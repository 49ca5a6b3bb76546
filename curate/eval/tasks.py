"""Evaluation tasks: zero-shot classification and image-text retrieval on one set each, streamed
shard by shard (only embeddings are kept), with their metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ConfigError
from curate.eval import metrics
from curate.eval.data import EvalSample, class_prompts, samples, shards
from curate.eval.embed import embed_images, embed_texts, zero_shot_classifier
from curate.stages.score.model_batches import BatchFeeder


@dataclass
class Classified:
    """A classification set after the model: logits and labels of the samples that decoded."""

    logits: np.ndarray
    labels: np.ndarray
    extras: list[dict]
    counts: dict[str, int]


@dataclass(frozen=True)
class Task:
    """One task of a suite: its folder under the suite's data root, the name shown, its kind
    ("classification" or "retrieval"), the metric it is ranked by, and for tasks with their own
    metrics (DataComp's WILDS and fairness sets) the function computing them from a Classified."""

    key: str
    name: str
    kind: str
    main_metric: str
    extra_metrics: Callable[[Classified], dict[str, float]] | None = field(default=None, compare=False)


def classification_metrics(result: Classified) -> dict[str, float]:
    """acc1, acc5 and mean per-class recall."""
    predictions = result.logits.argmax(axis=1)
    return {"acc1": metrics.accuracy(result.logits, result.labels, 1),
            "acc5": metrics.accuracy(result.logits, result.labels, 5),
            "mean_per_class_recall": metrics.mean_per_class_recall(predictions, result.labels)}


def classify(clip: Any, folder: Path, feeder: BatchFeeder, on_shard: Callable[[int], None]) -> Classified:
    """Zero-shot logits (cosine similarity to every class's prompt ensemble, x100 as CLIP scales
    them) of every labelled image of a set that decodes."""
    classnames, templates = class_prompts(folder)
    classifier = zero_shot_classifier(clip, classnames, templates)
    logits, labels, extras = [], [], []
    counts = {"samples": 0, "undecodable": 0, "unlabelled": 0}
    for shard, items in _shards(folder):
        labelled = [s for s in items if s.label is not None and 0 <= s.label < len(classnames)]
        counts["unlabelled"] += len(items) - len(labelled)
        embeddings, decoded = embed_images(clip, [s.image for s in labelled], feeder)
        counts["undecodable"] += int((~decoded).sum())
        kept = [s for s, ok in zip(labelled, decoded) if ok]
        if kept:
            logits.append(100.0 * embeddings @ classifier.T)
        labels += [s.label for s in kept]
        extras += [s.extra for s in kept]
        counts["samples"] += len(kept)
        on_shard(len(items))
    if not labels:
        raise ConfigError(f"{folder}: no labelled image decodes; nothing to evaluate")
    return Classified(np.concatenate(logits), np.array(labels), extras, counts)


def retrieve(clip: Any, folder: Path, feeder: BatchFeeder, on_shard: Callable[[int], None]) -> tuple[dict, dict]:
    """(recall@1/5/10 both ways and their means, counts) over every image that decodes and has captions."""
    images, texts, text_image = [], [], []
    counts = {"samples": 0, "texts": 0, "undecodable": 0, "uncaptioned": 0}
    for shard, items in _shards(folder):
        captioned = [s for s in items if s.texts]
        counts["uncaptioned"] += len(items) - len(captioned)
        embeddings, decoded = embed_images(clip, [s.image for s in captioned], feeder)
        counts["undecodable"] += int((~decoded).sum())
        for sample in (s for s, ok in zip(captioned, decoded) if ok):
            text_image += [counts["samples"]] * len(sample.texts)
            texts += sample.texts
            counts["samples"] += 1
        if len(embeddings):
            images.append(embeddings)
        on_shard(len(items))
    if not texts:
        raise ConfigError(f"{folder}: no captioned image decodes; nothing to evaluate")
    counts["texts"] = len(texts)
    recalls = metrics.retrieval_recall(np.concatenate(images), embed_texts(clip, texts), np.array(text_image))
    for k in (1, 5, 10):
        recalls[f"mean_recall@{k}"] = (recalls[f"image_retrieval_recall@{k}"] + recalls[f"text_retrieval_recall@{k}"]) / 2
    return recalls, counts


def run_task(task: Task, clip: Any, folder: Path, feeder: BatchFeeder,
             on_shard: Callable[[int], None]) -> tuple[dict[str, float], dict[str, int]]:
    """(metrics, counts) of one task on its set."""
    if task.kind == "retrieval":
        return retrieve(clip, folder, feeder, on_shard)
    result = classify(clip, folder, feeder, on_shard)
    found = classification_metrics(result)
    if task.extra_metrics is not None:
        found.update(task.extra_metrics(result))
    return found, result.counts


def shard_count(folder: Path) -> int:
    """How many shards a set has (for progress)."""
    return len(shards(folder))


def _shards(folder: Path):
    for shard in shards(folder):
        warnings: list[str] = []
        yield shard, list(samples(shard, warnings))
