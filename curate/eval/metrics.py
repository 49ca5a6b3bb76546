"""Evaluation metrics on plain arrays, named as DataComp and clip_benchmark name them.

Classification metrics take `logits` (n samples x n classes) or predictions and the true
labels; retrieval metrics take L2-normalised embeddings and which image each caption belongs
to. Every function is a few lines of numpy, checked against hand-computed values in tests."""

from __future__ import annotations

import numpy as np


def top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """The k highest-scoring classes of every row, best first (ties: the lower class index)."""
    k = min(k, logits.shape[1])
    order = np.argsort(-logits, axis=1, kind="stable")
    return order[:, :k]


def top_k_hits(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per sample, whether its label is among the k best classes."""
    return (top_k(logits, k) == np.asarray(labels)[:, None]).any(axis=1)


def accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Top-k accuracy: the fraction of samples whose label is among the k best classes."""
    return float(top_k_hits(logits, labels, k).mean()) if len(labels) else float("nan")


def per_class_recall(predictions: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Recall of every class that has samples: correct predictions of it / its samples."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return {int(c): float((predictions[labels == c] == c).mean()) for c in np.unique(labels)}


def mean_per_class_recall(predictions: np.ndarray, labels: np.ndarray) -> float:
    """The unweighted mean of per-class recall over the classes that have samples (balanced accuracy)."""
    recalls = per_class_recall(predictions, labels)
    return float(np.mean(list(recalls.values()))) if recalls else float("nan")


def macro_f1(predictions: np.ndarray, labels: np.ndarray) -> float:
    """F1 averaged over the classes that occur in `labels`, as WILDS scores iWildCam
    (scikit-learn's `f1_score(average="macro", labels=unique(labels))`): a class that is only
    ever predicted lowers the precision of no counted class but is not averaged itself."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    scores = []
    for c in np.unique(labels):
        true_positive = np.sum((predictions == c) & (labels == c))
        predicted, actual = np.sum(predictions == c), np.sum(labels == c)
        scores.append(2 * true_positive / (predicted + actual))
    return float(np.mean(scores)) if scores else float("nan")


def worst_group(values: np.ndarray, groups: np.ndarray, skip: tuple = ()) -> float:
    """The lowest mean of `values` (e.g. 0/1 hits) over the groups, groups in `skip` left out."""
    values, groups = np.asarray(values, dtype=float), np.asarray(groups)
    means = [values[groups == g].mean() for g in np.unique(groups) if g not in skip]
    return float(min(means)) if means else float("nan")


def retrieval_recall(image_embeddings: np.ndarray, text_embeddings: np.ndarray, text_image: np.ndarray,
                     ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k both ways, as clip_benchmark computes it: `text_image[t]` is the index of the
    image caption t describes (an image may have several captions).

    image_retrieval_recall@k: texts whose own image is among the k images most similar to it.
    text_retrieval_recall@k: images with at least one of their captions among the k most similar texts.
    """
    similarity = np.asarray(text_embeddings) @ np.asarray(image_embeddings).T  # texts x images
    text_image = np.asarray(text_image)
    positive = np.zeros(similarity.shape, dtype=bool)
    positive[np.arange(len(text_image)), text_image] = True
    results = {}
    for k in ks:
        images_found = np.take_along_axis(positive, top_k(similarity, k), axis=1).any(axis=1)
        texts_found = np.take_along_axis(positive.T, top_k(similarity.T, k), axis=1).any(axis=1)
        results[f"image_retrieval_recall@{k}"] = float(images_found.mean())
        results[f"text_retrieval_recall@{k}"] = float(texts_found.mean())
    return results


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` at ranking the positive samples first: the chance
    that a random positive scores above a random negative, ties counting half."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties (1-based)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def jaccard(predicted: np.ndarray, actual: np.ndarray) -> float:
    """The Jaccard index of two boolean masks over the same items: |both| / |either|
    (0 when both are empty, as scikit-learn's `jaccard_score` scores it)."""
    predicted, actual = np.asarray(predicted, dtype=bool), np.asarray(actual, dtype=bool)
    either = np.sum(predicted | actual)
    return float(np.sum(predicted & actual) / either) if either else 0.0


def top_n_mask(scores: np.ndarray, n: int) -> np.ndarray:
    """A boolean mask of the n highest scores (ties: the lower index)."""
    mask = np.zeros(len(scores), dtype=bool)
    mask[np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:n]] = True
    return mask


def association_jaccard(similarities: np.ndarray, associated: np.ndarray) -> float:
    """WinoGAViL's score of one instance: choose as many candidates as the cue has associations,
    those most similar to the cue, and take the Jaccard index of chosen and associated."""
    associated = np.asarray(associated, dtype=bool)
    return jaccard(top_n_mask(similarities, int(associated.sum())), associated)


def winogavil_scores(jaccards: np.ndarray, candidates: np.ndarray) -> dict[str, float]:
    """Mean Jaccard index over all instances, over those with at most 6 candidates (5-6) and
    over those with at least 10 (10-12, DataComp's main metric); NaN for a group without any."""
    jaccards, candidates = np.asarray(jaccards, dtype=float), np.asarray(candidates)
    return {"avg_jaccard_score": _mean(jaccards),
            "jaccard_score_5-6": _mean(jaccards[candidates <= 6]),
            "jaccard_score_10-12": _mean(jaccards[candidates >= 10])}


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")
