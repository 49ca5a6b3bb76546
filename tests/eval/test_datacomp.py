"""The DataComp suite: its task list, its special metrics against values worked out by hand,
and `curate eval --suite datacomp` end to end on tiny sets in DataComp's layout."""

from __future__ import annotations

import io
import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import ConfigError, InputError
from curate.eval import metrics
from curate.eval.data import EvalSample, samples, shards
from curate.eval.datacomp import (DATACOMP, GROUPS, dollar_street_metrics, fmow_metrics, folder_name,
                                  geode_metrics, group_averages, iwildcam_metrics)
from curate.eval.tasks import Classified, _decoded_instances, association, classification_metrics, cue_prompt
from curate.io.tars import tar_bytes

TEMPLATES = ["a photo of a {c}.", "a blurry photo of a {c}."]


# ---------------------------------------------------------------- fake sets


def image(index: int, fmt: str = "PNG") -> bytes:
    """A small solid-colour image, a different colour for every index."""
    buffer = io.BytesIO()
    colour = (index * 67 % 256, index * 131 % 256, index * 29 % 256)
    Image.new("RGB", (8, 8), colour).save(buffer, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buffer.getvalue()


def npy(*values: int) -> bytes:
    """A metadata vector as a .npy member."""
    buffer = io.BytesIO()
    np.save(buffer, np.array(values, dtype=np.int64))
    return buffer.getvalue()


def write_set(root: Path, key: str, items: list[dict], classnames: list[str] | None = None,
              shard_size: int = 4) -> Path:
    """A set as download_evalsets.py lays it out: DIR/<folder>/test/{nshards.txt,0.tar,...}."""
    folder = root / folder_name(key)
    (folder / "test").mkdir(parents=True)
    if classnames:
        (folder / "classnames.txt").write_text("\n".join(classnames) + "\n")
        (folder / "zeroshot_classification_templates.txt").write_text("\n".join(TEMPLATES) + "\n")
    chunks = [items[i:i + shard_size] for i in range(0, len(items), shard_size)]
    for index, chunk in enumerate(chunks):
        (folder / "test" / f"{index}.tar").write_bytes(tar_bytes(chunk))
    (folder / "test" / "nshards.txt").write_text(f"{len(chunks)}\n")
    return folder


def classified_items(labels: list[int], metadata: list[tuple] | None = None) -> list[dict]:
    """Classification samples: a webp image, the label as `cls`, metadata as `npy`."""
    items = [{"__key__": f"s{i:07d}", "webp": image(i, "WEBP"), "cls": str(label)} for i, label in enumerate(labels)]
    for item, row in zip(items, metadata or []):
        item["npy"] = npy(*row)
    return items


def winogavil_item(index: int, n: int, associations: list[int]) -> dict:
    """A WinoGAViL instance in curate's layout: json, and candidate i's image as KEY.<i>.png."""
    names = [f"thing{index}_{i}" for i in range(n)]
    item = {"__key__": f"w{index:05d}",
            "json": json.dumps({"cue": ["Ocean", "fire", "Ice"][index % 3], "candidates": names,
                                "associations": [names[i] for i in associations]})}
    for i in range(n):
        item[f"{i}.png"] = image(100 * index + i)
    return item


FAKE = {  # DataComp key -> writer of its tiny set
    "cifar10": lambda root: write_set(root, "cifar10", classified_items([0, 1, 2, 3, 4, 5, 6]),
                                      [f"class {i}" for i in range(10)]),
    "vtab/pcam": lambda root: write_set(root, "vtab/pcam", classified_items([0, 1, 1, 0]),
                                        ["lymph node", "lymph node containing metastatic tumor tissue"]),
    "retrieval/flickr_1k_test_image_text_retrieval": lambda root: write_set(
        root, "retrieval/flickr_1k_test_image_text_retrieval",
        [{"__key__": f"s{i:07d}", "webp": image(i, "WEBP"), "txt": f"a dog number {i}\na photo of thing {i}"}
         for i in range(3)]),
    "wilds/fmow": lambda root: write_set(root, "wilds/fmow", classified_items(
        [0, 1, 2, 3, 4, 5], [(0, 2015, 0), (0, 2016, 1), (1, 2015, 2), (2, 2014, 3), (5, 2013, 4), (5, 2012, 5)]),
        [f"building {i}" for i in range(6)]),
    "fairness/dollar_street": lambda root: write_set(root, "fairness/dollar_street", classified_items(
        [0, 1, 2, 3, 4, 5], [(0, 1, 2), (0, 1, 2), (1, 2, 0), (1, 2, 0), (2, 3, 1), (3, 4, 1)]),
        [f"object {i}" for i in range(7)]),
    "wilds/iwildcam": lambda root: write_set(root, "wilds/iwildcam", classified_items(
        [0, 1, 1, 2, 3], [(i, 0, 2013, 1, 1, 0, 0, 0, y) for i, y in enumerate([0, 1, 1, 2, 3])]),
        [f"animal {i}" for i in range(5)]),
    "misc/winogavil": lambda root: write_set(root, "misc/winogavil", [
        winogavil_item(0, 5, [0, 3]), winogavil_item(1, 6, [1, 2, 4]), winogavil_item(2, 10, [2, 7, 9]),
        winogavil_item(3, 12, [0, 1, 5, 11])], shard_size=3),
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """The seeded random curate-tiny-vit, saved as a weights file."""
    import torch

    from curate.models.clip import load_clip

    path = tmp_path_factory.mktemp("model") / "weights.pt"
    torch.save(load_clip("curate-tiny-vit", None, "cpu").model.state_dict(), path)
    return path


def invoke(*args) -> tuple[int, str]:
    """(exit code, output without colour codes or whitespace, which rich wraps anywhere)."""
    result = CliRunner().invoke(app, [str(a) for a in args], env={"NO_COLOR": "1", "TERM": "dumb"})
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", result.stdout + result.stderr)
    return result.exit_code, "".join(text.split())


def by_source() -> dict:
    """The suite's tasks by DataComp key."""
    return {task.source_key: task for task in DATACOMP}


# ---------------------------------------------------------------- the task list


def test_suite_has_datacomps_38_tasks_and_main_metrics():
    tasks = by_source()
    assert len(DATACOMP) == 38 == len(tasks) == len({t.key for t in DATACOMP})
    assert Counter(t.main_metric for t in DATACOMP) == {
        "acc1": 27, "mean_per_class_recall": 4, "mean_recall@1": 2, "jaccard_score_10-12": 1,
        "F1-macro_all": 1, "acc_worst_region": 1, "acc_top5_wg": 1, "acc_wg": 1}
    assert (DATACOMP[0].source_key, DATACOMP[-1].source_key) == ("vtab/caltech101", "fairness/geode")
    expected = {"vtab/caltech101": ("wds_vtab-caltech101_test", "Caltech-101", "mean_per_class_recall"),
                "imagenet1k": ("wds_imagenet1k_test", "ImageNet 1k", "acc1"),
                "vtab/pets": ("wds_vtab-pets_test", "Oxford-IIIT Pet", "mean_per_class_recall"),
                "retrieval/mscoco_2014_5k_test_image_text_retrieval":
                    ("wds_retrieval-mscoco_2014_5k_test_image_text_retrieval_test", "MSCOCO", "mean_recall@1"),
                "misc/winogavil": ("wds_misc-winogavil_test", "WinoGAViL", "jaccard_score_10-12"),
                "wilds/iwildcam": ("wds_wilds-iwildcam_test", "iWildCam", "F1-macro_all"),
                "wilds/fmow": ("wds_wilds-fmow_test", "FMoW", "acc_worst_region"),
                "fairness/dollar_street": ("wds_dollar_street_test", "Dollar Street", "acc_top5_wg"),
                "fairness/geode": ("wds_geode_test", "GeoDE", "acc_wg")}
    for key, (folder, name, metric) in expected.items():
        assert (tasks[key].key, tasks[key].name, tasks[key].main_metric) == (folder, name, metric)
    assert {t.kind for t in DATACOMP if t.main_metric in ("mean_recall@1",)} == {"retrieval"}
    assert tasks["misc/winogavil"].kind == "winogavil"


def test_groups_and_their_averages():
    assert {g: len(keys) for g, keys in GROUPS.items()} == {
        "ImageNet": 1, "ImageNet dist. shifts": 6, "VTAB": 13, "Retrieval": 3}
    assert all(key in by_source() for keys in GROUPS.values() for key in keys)
    results = [{"task": t.key, "main": i / 100} for i, t in enumerate(DATACOMP)]
    averages = group_averages(results)
    assert averages["ImageNet"] == pytest.approx(0.11)  # imagenet1k is task 11 (from 0)
    assert averages["Retrieval"] == pytest.approx((0.30 + 0.31 + 0.32) / 3)
    # a group only partly run is left out
    assert set(group_averages(results[:12])) == {"ImageNet"}


# ---------------------------------------------------------------- metrics by hand


def classified(logits, labels, metadata=None) -> Classified:
    extras = [{"npy": np.array(row)} for row in metadata] if metadata is not None else [{} for _ in labels]
    return Classified(np.array(logits, dtype=float), np.array(labels), extras, {})


def test_worst_region_by_hand():
    # predictions 0, 1, 0, 0, 2, 2 against labels 0, 1, 2, 0, 1, 2: hits 1, 1, 0, 1, 0, 1
    logits = np.eye(3)[[0, 1, 0, 0, 2, 2]]
    regions = [0, 0, 1, 1, 1, 5]  # region 0: 2/2, region 1: 1/3, region 5: 1/1
    result = classified(logits, [0, 1, 2, 0, 1, 2], [(r, 2015, 0) for r in regions])
    assert fmow_metrics(result) == {"acc_worst_region": pytest.approx(1 / 3)}
    assert geode_metrics(result) == {"acc_wg": pytest.approx(1 / 3)}


def test_worst_income_group_top5_by_hand():
    logits = np.tile(np.arange(7.0)[::-1], (5, 1))  # every row ranks classes 0, 1, ..., 6
    labels = [0, 4, 5, 2, 6]  # in the top 5 (classes 0-4): yes, yes, no, yes, no
    incomes = [0, 0, 1, 1, 0]  # income 0: 2/3, income 1: 1/2
    result = classified(logits, labels, [(i, 0, 0) for i in incomes])
    assert dollar_street_metrics(result) == {"acc_top5_wg": pytest.approx(0.5)}
    assert classification_metrics(result)["acc1"] == pytest.approx(0.2)


def test_macro_f1_over_label_classes_by_hand():
    # predictions 0, 1, 1, 3 against labels 0, 0, 1, 2 (class 3 only predicted, class 4 never seen):
    # class 0: tp 1, predicted 1, actual 2 -> 2/3; class 1: tp 1, predicted 2, actual 1 -> 2/3; class 2: 0
    result = classified(np.eye(5)[[0, 1, 1, 3]], [0, 0, 1, 2])
    assert iwildcam_metrics(result) == {"F1-macro_all": pytest.approx(4 / 9)}


def test_acc5_only_with_at_least_five_classes():
    assert "acc5" not in classification_metrics(classified(np.eye(4), [0, 1, 2, 3]))
    assert classification_metrics(classified(np.eye(5), [0, 1, 2, 3, 4]))["acc5"] == 1.0


def test_group_metric_needs_every_samples_metadata():
    result = classified(np.eye(3), [0, 1, 2], [(0, 1), (1, 1), (0, 2)])
    result.extras[1] = {}
    with pytest.raises(ConfigError, match="1 of 3 samples lack"):
        fmow_metrics(result)


# ---------------------------------------------------------------- WinoGAViL


def test_winogavil_scores_by_hand():
    assert metrics.jaccard([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(1 / 3)
    assert metrics.jaccard([0, 0], [0, 0]) == 0.0
    # two associations (0, 3); the two most similar candidates are 0 and 2 -> {0} / {0, 2, 3}
    assert metrics.association_jaccard(np.array([0.9, 0.1, 0.8, 0.3, 0.2]),
                                       np.array([1, 0, 0, 1, 0], dtype=bool)) == pytest.approx(1 / 3)
    # similarities from embeddings: cue along x; candidates 1 and 2 lean towards it
    cue = np.array([1.0, 0.0])
    images = np.array([[0.0, 1.0], [0.8, 0.6], [0.6, 0.8], [-1.0, 0.0]])
    assert metrics.association_jaccard(images @ cue, np.array([0, 1, 1, 0], dtype=bool)) == 1.0
    found = metrics.winogavil_scores(np.array([1.0, 0.5, 1 / 3, 0.0]), np.array([5, 6, 10, 12]))
    assert found == pytest.approx({"avg_jaccard_score": (1.5 + 1 / 3) / 4, "jaccard_score_5-6": 0.75,
                                   "jaccard_score_10-12": 1 / 6})
    assert math.isnan(metrics.winogavil_scores(np.array([1.0]), np.array([5]))["jaccard_score_10-12"])


def test_winogavil_prompts_and_instances():
    assert (cue_prompt("Ocean"), cue_prompt("fire"), cue_prompt("Ice")) == ("An ocean", "A fire", "An ice")
    extra = {"cue": "fire", "candidates": ["a", "b", "c"], "associations": ["c", "a"]}
    images = {2: b"2", 0: b"0", 1: b"1"}
    cue, associated, ordered = association(EvalSample("k", None, [], None, extra, images))
    assert (cue, associated.tolist(), ordered) == ("fire", [True, False, True], [b"0", b"1", b"2"])
    assert association(EvalSample("k", None, [], None, extra, {0: b"0", 2: b"2"})) is None  # an image is missing
    assert association(EvalSample("k", None, [], None, {**extra, "associations": ["d"]}, images)) is None
    assert association(EvalSample("k", None, [], None, {**extra, "cue": ""}, images)) is None


def test_winogavil_instances_keep_their_own_embeddings():
    yes, no = np.ones(2, dtype=bool), np.zeros(1, dtype=bool)
    instances = [("a", yes, [b"0", b"1"]), ("b", yes, [b"2", b"bad"]), ("c", no, [b"4"])]
    decoded = np.array([True, True, True, False, True])
    embeddings = np.array([[0.0], [1.0], [2.0], [4.0]])  # the four images that decoded
    kept = _decoded_instances(instances, embeddings, decoded)
    assert [cue for cue, _, _ in kept] == ["a", "c"]
    assert kept[0][2].ravel().tolist() == [0.0, 1.0] and kept[1][2].ravel().tolist() == [4.0]


# ---------------------------------------------------------------- reading the layout


def test_samples_read_npy_and_candidate_images(tmp_path):
    shard = tmp_path / "0.tar"
    shard.write_bytes(tar_bytes([{"__key__": "s0", "png": image(0), "cls": "2", "npy": npy(3, 2015)},
                                 {"__key__": "s1", "png": image(1), "cls": "1", "npy": b"not numpy"},
                                 winogavil_item(0, 3, [1])]))
    read = list(samples(shard, []))
    assert read[0].label == 2 and read[0].extra["npy"].tolist() == [3, 2015]
    assert "npy" not in read[1].extra  # a member that does not load is absent
    assert read[2].candidates == {0: image(0), 1: image(1), 2: image(2)} and read[2].extra["cue"] == "Ocean"


def test_nshards_lists_the_shards_and_a_missing_one_is_named(tmp_path):
    folder = write_set(tmp_path, "cifar10", classified_items([0, 1, 2, 3, 4, 5]), ["a", "b", "c", "d", "e", "f"])
    (folder / "test" / "stray.tar").write_bytes(b"")  # not listed: not read
    assert [p.name for p in shards(folder)] == ["0.tar", "1.tar"]
    (folder / "test" / "nshards.txt").write_text("3\n")
    with pytest.raises(InputError, match=r"lists 3 shards but .*2\.tar is missing"):
        shards(folder)


# ---------------------------------------------------------------- the command


def test_eval_datacomp_end_to_end(tmp_path, weights):
    for write in FAKE.values():
        write(tmp_path / "data")
    chosen = [folder_name(key) for key in FAKE]
    code, text = invoke("eval", weights, "--model", "curate-tiny-vit", "--suite", "datacomp", "--data",
                        tmp_path / "data", "--tasks", ",".join(chosen), "--out", tmp_path / "out", "--device", "cpu")
    assert code == 0, text
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    tasks = {r["task"]: r for r in results["tasks"]}
    assert list(tasks) == [t.key for t in DATACOMP if t.key in chosen]  # suite order
    for key in FAKE:
        found = tasks[folder_name(key)]
        assert found["main_metric"] == by_source()[key].main_metric
        assert found["main"] == found["metrics"][found["main_metric"]]
        assert all(0.0 <= v <= 1.0 for v in found["metrics"].values()), found
    assert results["average"] == pytest.approx(np.mean([r["main"] for r in results["tasks"]]))
    assert "acc5" not in tasks["wds_vtab-pcam_test"]["metrics"] and "acc5" in tasks["wds_cifar10_test"]["metrics"]
    assert tasks["wds_cifar10_test"]["counts"]["samples"] == 7  # two shards
    assert tasks["wds_retrieval-flickr_1k_test_image_text_retrieval_test"]["counts"]["texts"] == 6
    assert tasks["wds_misc-winogavil_test"]["counts"] == {"samples": 4, "invalid": 0, "undecodable": 0}
    assert "FMoW" in text and "acc_worst_region" in text


def test_missing_sets_are_listed(tmp_path, weights):
    FAKE["cifar10"](tmp_path)
    FAKE["misc/winogavil"](tmp_path)
    code, text = invoke("eval", weights, "--model", "curate-tiny-vit", "--suite", "datacomp",
                        "--data", tmp_path, "--device", "cpu")
    assert code != 0
    assert "36of38evaluationsetsaremissing" in text
    assert "wds_vtab-caltech101_test" in text and "wds_geode_test" in text and "wds_cifar10_test," not in text


def test_a_missing_listed_shard_is_a_clear_error(tmp_path, weights):
    folder = FAKE["cifar10"](tmp_path)
    (folder / "test" / "1.tar").unlink()
    code, text = invoke("eval", weights, "--model", "curate-tiny-vit", "--suite", "datacomp", "--data", tmp_path,
                        "--tasks", "wds_cifar10_test", "--out", tmp_path / "out", "--device", "cpu")
    assert code != 0
    assert "lists2shardsbut" in text and "1.tarismissing" in text
