"""Metrics against values worked out by hand on tiny inputs."""

import math

import numpy as np
import pytest

from curate.eval import metrics

# 4 samples, 3 classes. Ranked classes per row: [0,1,2], [2,0,1], [1,2,0], [0,2,1]
LOGITS = np.array([[0.9, 0.5, 0.1],
                   [0.5, 0.1, 0.9],
                   [0.1, 0.9, 0.5],
                   [0.9, 0.1, 0.5]])
LABELS = np.array([0, 0, 2, 1])


def test_top_k_accuracy_by_hand():
    # top-1 predictions 0, 2, 1, 0: only the first is right
    assert metrics.accuracy(LOGITS, LABELS, 1) == 0.25
    # top-2: {0,1} has 0 yes; {2,0} has 0 yes; {1,2} has 2 yes; {0,2} lacks 1
    assert metrics.accuracy(LOGITS, LABELS, 2) == 0.75
    assert metrics.accuracy(LOGITS, LABELS, 5) == 1.0  # k above the number of classes: every class


def test_mean_per_class_recall_by_hand():
    predictions = np.array([0, 0, 0, 1, 2, 2])
    labels = np.array([0, 0, 1, 1, 1, 2])
    # class 0: 2/2, class 1: 1/3, class 2: 1/1
    assert metrics.mean_per_class_recall(predictions, labels) == pytest.approx((1 + 1 / 3 + 1) / 3)
    # a class only predicted (3) is not averaged
    assert metrics.mean_per_class_recall(np.array([3, 0]), np.array([1, 0])) == pytest.approx(0.5)


def test_macro_f1_by_hand():
    predictions = np.array([0, 0, 1, 1, 2, 3])
    labels = np.array([0, 1, 1, 1, 2, 2])
    # class 0: tp 1, predicted 2, actual 1 -> 2/3; class 1: tp 2, predicted 2, actual 3 -> 4/5;
    # class 2: tp 1, predicted 1, actual 2 -> 2/3; class 3 is never a label: not averaged
    assert metrics.macro_f1(predictions, labels) == pytest.approx((2 / 3 + 4 / 5 + 2 / 3) / 3)


def test_worst_group_by_hand():
    hits = np.array([1, 1, 0, 1, 0, 0])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    assert metrics.worst_group(hits, groups) == 0.0
    assert metrics.worst_group(hits, groups, skip=("c",)) == 0.5


def test_retrieval_recall_by_hand():
    images = np.eye(3)  # image i points along axis i
    # captions 0,1 describe image 0; caption 2 image 1; caption 3 image 2
    texts = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0.9, 0.1], [0.8, 0, 0.6]])
    found = metrics.retrieval_recall(images, texts, np.array([0, 0, 1, 2]), ks=(1, 2))
    # text -> image, best first: t0 [0,..] hit; t1 [1,..] miss; t2 [1,..] hit; t3 [0,2] miss at 1, hit at 2
    assert found["image_retrieval_recall@1"] == 0.5
    assert found["image_retrieval_recall@2"] == 1.0
    # image -> text: i0 -> t0 (1.0) hit; i1 -> t1 (1.0) not its caption; i2 -> t3 (0.6) hit
    assert found["text_retrieval_recall@1"] == pytest.approx(2 / 3)
    # at 2: i1's two best are t1 (1.0) and t2 (0.9): hit
    assert found["text_retrieval_recall@2"] == 1.0


def test_roc_auc_by_hand():
    # positives 0.9, 0.4; negatives 0.6, 0.4, 0.1: pairs won 3 of 6... 0.9 beats all 3, 0.4 beats 0.1 and ties 0.4
    assert metrics.roc_auc(np.array([0.9, 0.4, 0.6, 0.4, 0.1]),
                           np.array([True, True, False, False, False])) == pytest.approx((3 + 1.5) / 6)
    assert math.isnan(metrics.roc_auc(np.array([0.1, 0.2]), np.array([True, True])))
