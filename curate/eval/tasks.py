"""Evaluation tasks: zero-shot classification, image-text retrieval and WinoGAViL's cue-image
association on one set each, streamed shard by shard (only embeddings are kept), with their metrics."""

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
from curate.stages.score.model_batches import Alpha, BatchFeeder


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
    ("classification", "retrieval" or "winogavil"), the metric it is ranked by, for tasks with
    their own metrics (DataComp's WILDS and fairness sets) the function computing them from a
    Classified, and the key its suite's authors give it where that differs from the folder."""

    key: str
    name: str
    kind: str
    main_metric: str
    extra_metrics: Callable[[Classified], dict[str, float]] | None = field(default=None, compare=False)
    source_key: str = ""


def classification_metrics(result: Classified) -> dict[str, float]:
    """acc1, acc5 (only with at least 5 classes, as clip_benchmark) and mean per-class recall."""
    predictions = result.logits.argmax(axis=1)
    found = {"acc1": metrics.accuracy(result.logits, result.labels, 1)}
    if result.logits.shape[1] >= 5:
        found["acc5"] = metrics.accuracy(result.logits, result.labels, 5)
    found["mean_per_class_recall"] = metrics.mean_per_class_recall(predictions, result.labels)
    return found


def classify(clip: Any, folder: Path, feeder: BatchFeeder, on_shard: Callable[[int], None],
             alpha: Alpha = "white") -> Classified:
    """Zero-shot logits (cosine similarity to every class's prompt ensemble, x100 as CLIP scales
    them) of every labelled image of a set that decodes."""
    classnames, templates = class_prompts(folder)
    classifier = zero_shot_classifier(clip, classnames, templates)
    logits, labels, extras = [], [], []
    counts = {"samples": 0, "undecodable": 0, "unlabelled": 0}
    for shard, items in _shards(folder):
        labelled = [s for s in items if s.label is not None and 0 <= s.label < len(classnames)]
        counts["unlabelled"] += len(items) - len(labelled)
        embeddings, decoded = embed_images(clip, [s.image for s in labelled], feeder, alpha)
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


def retrieve(clip: Any, folder: Path, feeder: BatchFeeder, on_shard: Callable[[int], None],
             alpha: Alpha = "white") -> tuple[dict, dict]:
    """(recall@1/5/10 both ways and their means, counts) over every image that decodes and has captions."""
    images, texts, text_image = [], [], []
    counts = {"samples": 0, "texts": 0, "undecodable": 0, "uncaptioned": 0}
    for shard, items in _shards(folder):
        captioned = [s for s in items if s.texts]
        counts["uncaptioned"] += len(items) - len(captioned)
        embeddings, decoded = embed_images(clip, [s.image for s in captioned], feeder, alpha)
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


def cue_prompt(cue: str) -> str:
    """The text WinoGAViL's cue is embedded as: "A cue" or "An cue" (lower-cased cue)."""
    cue = cue.lower()
    return f"{'An' if cue[:1] in ('a', 'e', 'i', 'o', 'u') else 'A'} {cue}"


def association(sample: EvalSample) -> tuple[str, np.ndarray, list[bytes]] | None:
    """(cue, which candidates are associated, candidate images) of a WinoGAViL sample, or None
    when it is no valid instance: a cue, an image per candidate name, associations among them."""
    cue, names, chosen = (sample.extra.get(k) for k in ("cue", "candidates", "associations"))
    if not (isinstance(cue, str) and cue and _strings(names) and _strings(chosen)):
        return None
    associated = np.array([name in chosen for name in names], dtype=bool)
    complete = sorted(sample.candidates) == list(range(len(names)))
    valid = complete and associated.any() and set(chosen) <= set(names)
    return (cue, associated, [sample.candidates[i] for i in range(len(names))]) if valid else None


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def associate(clip: Any, folder: Path, feeder: BatchFeeder, on_shard: Callable[[int], None],
              alpha: Alpha = "white") -> tuple[dict, dict]:
    """(WinoGAViL's Jaccard scores, counts): per instance, the candidate images most similar to
    the cue's prompt, as many as it has associations, against those associations."""
    jaccards, sizes = [], []
    counts = {"samples": 0, "invalid": 0, "undecodable": 0}
    for shard, items in _shards(folder):
        instances = [found for s in items if (found := association(s)) is not None]
        counts["invalid"] += len(items) - len(instances)
        embeddings, decoded = embed_images(clip, [i for _, _, images in instances for i in images], feeder, alpha)
        kept = _decoded_instances(instances, embeddings, decoded)
        counts["undecodable"] += len(instances) - len(kept)
        cues = embed_texts(clip, [cue_prompt(cue) for cue, _, _ in kept]) if kept else []
        for (_, associated, images), text in zip(kept, cues):
            jaccards.append(metrics.association_jaccard(images @ text, associated))
            sizes.append(len(associated))
        counts["samples"] += len(kept)
        on_shard(len(items))
    if not jaccards:
        raise ConfigError(f"{folder}: no WinoGAViL instance is complete and decodes; nothing to evaluate")
    return metrics.winogavil_scores(np.array(jaccards), np.array(sizes)), counts


def _decoded_instances(instances: list, embeddings: np.ndarray, decoded: np.ndarray) -> list:
    """(cue, associated, candidate embeddings) of the instances all of whose images decoded;
    `embeddings` holds the decoded images of all instances in order."""
    kept, start, taken = [], 0, 0
    for cue, associated, images in instances:
        ok = decoded[start:start + len(images)]
        if ok.all():
            kept.append((cue, associated, embeddings[taken:taken + len(ok)]))
        start, taken = start + len(ok), taken + int(ok.sum())
    return kept


def run_task(task: Task, clip: Any, folder: Path, feeder: BatchFeeder, on_shard: Callable[[int], None],
             alpha: Alpha = "white") -> tuple[dict[str, float], dict[str, int]]:
    """(metrics, counts) of one task on its set; `alpha`: how transparent pixels are shown."""
    if task.kind == "retrieval":
        return retrieve(clip, folder, feeder, on_shard, alpha)
    if task.kind == "winogavil":
        return associate(clip, folder, feeder, on_shard, alpha)
    result = classify(clip, folder, feeder, on_shard, alpha)
    found = classification_metrics(result)
    if task.extra_metrics is not None:
        found.update(task.extra_metrics(result))
    return found, result.counts


def _shards(folder: Path):
    for shard in shards(folder):
        warnings: list[str] = []
        yield shard, list(samples(shard, warnings))
