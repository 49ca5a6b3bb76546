"""Embedding evaluation data with a CLIP model: images in batches prepared on other threads,
texts in batches, and zero-shot classifiers from class names and prompt templates."""

from __future__ import annotations

from typing import Any

import numpy as np

from curate.stages.score.model_batches import Alpha, BatchFeeder, clip_pixels

BATCH = 256


def embed_images(clip: Any, images: list[bytes | None], feeder: BatchFeeder,
                 alpha: Alpha = "white") -> tuple[np.ndarray, np.ndarray]:
    """(embeddings of the images that decode, whether each image decoded); `alpha`: how
    transparent pixels are shown (see `decoded_rgb`)."""
    import torch

    pixels = feeder.map(lambda data: None if data is None else clip_pixels(clip, data, alpha), images)
    decoded = np.array([p is not None for p in pixels], dtype=bool)
    good = [p for p in pixels if p is not None]
    chunks = [clip.encode_images(torch.stack(good[i:i + BATCH])).cpu().numpy() for i in range(0, len(good), BATCH)]
    return _stacked(chunks), decoded


def embed_texts(clip: Any, texts: list[str]) -> np.ndarray:
    """L2-normalised embeddings of texts, in order."""
    chunks = [clip.encode_texts(clip.tokenizer(texts[i:i + BATCH])).cpu().numpy()
              for i in range(0, len(texts), BATCH)]
    return _stacked(chunks)


def zero_shot_classifier(clip: Any, classnames: list[str], templates: list[str]) -> np.ndarray:
    """One row per class: the mean of its prompts' text embeddings ("a photo of a {c}." with the
    class name put in, every template), normalised again (CLIP's prompt ensembling)."""
    prompts = [template.replace("{c}", name) for name in classnames for template in templates]
    embeddings = embed_texts(clip, prompts).reshape(len(classnames), len(templates), -1).mean(axis=1)
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def _stacked(chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 0), dtype=np.float32)
