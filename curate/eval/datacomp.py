"""DataComp's evaluation suite: its 38 scored tasks (tasklist.yml order), each ranked by
DataComp's main metric, their unweighted average, and DataComp's group averages.

The sets are read in clip_benchmark's WebDataset layout, as DataComp's download_evalsets.py
writes them under one folder DIR (`curate eval CKPT --suite datacomp --data DIR`):

    DIR/wds_<key with / as ->_test/             wds_vtab-caltech101_test, wds_imagenet1k_test,
                                                wds_wilds-fmow_test; the fairness sets drop
                                                their prefix: wds_dollar_street_test, wds_geode_test
        classnames.txt                          classification sets
        zeroshot_classification_templates.txt   classification sets, the class name as {c}
        test/nshards.txt, test/0.tar ...        samples: image, `cls` label, `npy` metadata
                                                (WILDS and fairness sets), `txt` captions one
                                                per line (Flickr and MSCOCO)

A task's `key` is its folder name (what --tasks takes); DataComp's own key is its `source_key`.

WinoGAViL has no WebDataset form (DataComp reads the Hugging Face dataset nlphuji/winogavil);
curate reads it in a layout of its own, one sample per instance:

    DIR/wds_misc-winogavil_test/test/*.tar
        KEY.json      {"cue": str, "candidates": [names], "associations": [names among them]}
        KEY.<i>.png   the image of candidate i (any image extension), i = 0 .. len(candidates)-1

Main metrics: acc1, or mean_per_class_recall (Caltech-101, FGVC Aircraft, Flowers, Pets);
mean_recall@1 (retrieval); jaccard_score_10-12 (WinoGAViL); F1-macro_all (iWildCam);
acc_worst_region (FMoW); acc_top5_wg (Dollar Street); acc_wg (GeoDE). The group columns of the
`npy` metadata are integer codes, as DataComp's files hold them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from curate.errors import ConfigError
from curate.eval import metrics
from curate.eval.tasks import Classified, Task

RETRIEVAL = ("retrieval/flickr_1k_test_image_text_retrieval", "retrieval/mscoco_2014_5k_test_image_text_retrieval")


def folder_name(key: str) -> str:
    """The folder DataComp's download_evalsets.py puts a task's set in."""
    return f"wds_{key.removeprefix('fairness/').replace('/', '-')}_test"


def group_column(result: Classified, metric: str, field: str) -> np.ndarray:
    """Column 0 of every sample's `npy` metadata, the group DataComp's `metric` is taken over;
    an error when a sample lacks it (the metric would be meaningless)."""
    rows = [np.ravel(extra["npy"]) if "npy" in extra else np.zeros(0) for extra in result.extras]
    lacking = sum(len(row) == 0 for row in rows)
    if lacking:
        raise ConfigError(f"{metric} is taken over each sample's {field} (column 0 of its npy metadata), "
                          f"which {lacking} of {len(rows)} samples lack; use DataComp's evaluation set")
    return np.array([row[0] for row in rows])


def iwildcam_metrics(result: Classified) -> dict[str, float]:
    """F1-macro_all: macro F1 over the classes that occur among the labels (WILDS' metric)."""
    return {"F1-macro_all": metrics.macro_f1(result.logits.argmax(axis=1), result.labels)}


def fmow_metrics(result: Classified) -> dict[str, float]:
    """acc_worst_region: the lowest top-1 accuracy of a region (npy column 0) with samples."""
    regions = group_column(result, "acc_worst_region", "region")
    hits = metrics.top_k_hits(result.logits, result.labels, 1)
    # WILDS skips the region "Other", but DataComp's groups are numeric codes without names, so
    # its test never matches and "Other" counts; we score as DataComp does.
    return {"acc_worst_region": metrics.worst_group(hits, regions)}


def dollar_street_metrics(result: Classified) -> dict[str, float]:
    """acc_top5_wg: the lowest top-5 accuracy of an income group (npy column 0, income_ds)."""
    incomes = group_column(result, "acc_top5_wg", "income_ds")
    return {"acc_top5_wg": metrics.worst_group(metrics.top_k_hits(result.logits, result.labels, 5), incomes)}


def geode_metrics(result: Classified) -> dict[str, float]:
    """acc_wg: the lowest top-1 accuracy of a region (npy column 0)."""
    regions = group_column(result, "acc_wg", "region")
    return {"acc_wg": metrics.worst_group(metrics.top_k_hits(result.logits, result.labels, 1), regions)}


def _task(key: str, name: str, main_metric: str = "acc1",
          extra_metrics: Callable[[Classified], dict[str, float]] | None = None) -> Task:
    kind = "retrieval" if key in RETRIEVAL else "winogavil" if key == "misc/winogavil" else "classification"
    return Task(folder_name(key), name, kind, main_metric, extra_metrics, source_key=key)


DATACOMP = (
    _task("vtab/caltech101", "Caltech-101", "mean_per_class_recall"),
    _task("cifar10", "CIFAR-10"),
    _task("vtab/cifar100", "CIFAR-100"),
    _task("vtab/clevr_count_all", "CLEVR Counts"),
    _task("vtab/clevr_closest_object_distance", "CLEVR Distance"),
    _task("country211", "Country211"),
    _task("vtab/dtd", "Describable Textures"),
    _task("vtab/eurosat", "EuroSAT"),
    _task("fgvc_aircraft", "FGVC Aircraft", "mean_per_class_recall"),
    _task("food101", "Food-101"),
    _task("gtsrb", "GTSRB"),
    _task("imagenet1k", "ImageNet 1k"),
    _task("imagenet_sketch", "ImageNet Sketch"),
    _task("imagenetv2", "ImageNet v2"),
    _task("imagenet-a", "ImageNet-A"),
    _task("imagenet-o", "ImageNet-O"),
    _task("imagenet-r", "ImageNet-R"),
    _task("vtab/kitti_closest_vehicle_distance", "KITTI Vehicle Distance"),
    _task("mnist", "MNIST"),
    _task("objectnet", "ObjectNet"),
    _task("vtab/flowers", "Oxford Flowers-102", "mean_per_class_recall"),
    _task("vtab/pets", "Oxford-IIIT Pet", "mean_per_class_recall"),
    _task("voc2007", "Pascal VOC 2007"),
    _task("vtab/pcam", "PatchCamelyon"),
    _task("renderedsst2", "Rendered SST2"),
    _task("vtab/resisc45", "RESISC45"),
    _task("cars", "Stanford Cars"),
    _task("stl10", "STL-10"),
    _task("sun397", "SUN397"),
    _task("vtab/svhn", "SVHN"),
    _task(RETRIEVAL[0], "Flickr", "mean_recall@1"),
    _task(RETRIEVAL[1], "MSCOCO", "mean_recall@1"),
    _task("misc/winogavil", "WinoGAViL", "jaccard_score_10-12"),
    _task("wilds/iwildcam", "iWildCam", "F1-macro_all", iwildcam_metrics),
    _task("wilds/camelyon17", "Camelyon17"),
    _task("wilds/fmow", "FMoW", "acc_worst_region", fmow_metrics),
    _task("fairness/dollar_street", "Dollar Street", "acc_top5_wg", dollar_street_metrics),
    _task("fairness/geode", "GeoDE", "acc_wg", geode_metrics),
)

# DataComp's aggregate_scores.py groups, by DataComp key; "Average" is all 38 (results["average"])
GROUPS = {
    "ImageNet": ("imagenet1k",),
    "ImageNet dist. shifts": ("imagenet_sketch", "imagenetv2", "imagenet-a", "imagenet-o", "imagenet-r",
                              "objectnet"),
    "VTAB": ("vtab/caltech101", "vtab/cifar100", "vtab/clevr_count_all", "vtab/clevr_closest_object_distance",
             "vtab/dtd", "vtab/eurosat", "vtab/kitti_closest_vehicle_distance", "vtab/flowers", "vtab/pets",
             "vtab/pcam", "vtab/resisc45", "vtab/svhn", "sun397"),
    "Retrieval": (*RETRIEVAL, "misc/winogavil"),
}


def group_averages(task_results: list[dict]) -> dict[str, float]:
    """The unweighted mean main metric of every DataComp group all of whose tasks are among
    `task_results` (the `tasks` items of evaluate's results: `task` is the folder, `main` the
    main metric); a group only partly run is left out."""
    mains = {r["task"]: r["main"] for r in task_results}
    averages = {}
    for group, keys in GROUPS.items():
        folders = [folder_name(key) for key in keys]
        if all(f in mains for f in folders):
            averages[group] = float(np.mean([mains[f] for f in folders]))
    return averages
