"""curate eval on the offline suite: the embedded held-out sets, built small by the test."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from curate.cli import app
from curate.eval.embed import embed_texts, zero_shot_classifier
from curate.eval.suite import OFFLINE, prepare_offline
from curate.models.clip import load_clip
from curate.pools import build
from curate.pools.sources import FASHION_MNIST, TUXPAINT_STAMPS

LIMITS = {"fashion-mnist-test": 30, "mnist-5k": 20, "flags-eval": 6, "tuxpaint-retrieval": 8}
needs_packages = pytest.mark.skipif(not (FASHION_MNIST.exists() and TUXPAINT_STAMPS.exists()),
                                    reason="the embedded evaluation sets' packages are not installed")


@pytest.fixture(scope="module")
def clip():
    return load_clip("curate-tiny-vit", None, "cpu")


def _train_folder(folder: Path, clip) -> Path:
    """What `curate train` leaves: the architecture in train_config.json, the weights beside it."""
    folder.mkdir(parents=True)
    (folder / "train_config.json").write_text(json.dumps({"model": "curate-tiny-vit"}))
    torch.save(clip.model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


@needs_packages
def test_eval_offline_suite_end_to_end(tmp_path, clip):
    for key, limit in LIMITS.items():
        build(key, tmp_path / "eval" / key, limit=limit)
    checkpoint = _train_folder(tmp_path / "run", clip)
    result = CliRunner().invoke(app, ["eval", str(checkpoint), "--data", str(tmp_path / "eval"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    results = json.loads((checkpoint / "eval" / "offline" / "results.json").read_text())
    assert [t["task"] for t in results["tasks"]] == [t.key for t in OFFLINE]
    for task, suite_task in zip(results["tasks"], OFFLINE):
        assert task["main_metric"] == suite_task.main_metric and task["main"] == task["metrics"][task["main_metric"]]
        assert all(0 <= v <= 1 for v in task["metrics"].values())
        assert task["counts"]["samples"] == LIMITS[task["task"]]
    assert results["average"] == pytest.approx(np.mean([t["main"] for t in results["tasks"]]))
    table = (checkpoint / "eval" / "offline" / "results.md").read_text()
    assert re.search(r"\| Tux Paint retrieval \| \*\*mean_recall@1\*\* \| 0\.\d{4} \|", table)
    assert "| **average** |" in table


def test_prompt_ensemble_is_the_normalised_mean_of_normalised_prompts(clip):
    templates = ["a photo of a {c}.", "a {c}."]
    classifier = zero_shot_classifier(clip, ["cat", "dog"], templates)
    prompts = embed_texts(clip, ["a photo of a dog.", "a dog."])
    expected = prompts.mean(axis=0) / np.linalg.norm(prompts.mean(axis=0))
    assert np.allclose(classifier[1], expected, atol=1e-6)
    assert np.allclose(np.linalg.norm(prompts, axis=1), 1, atol=1e-5)


@pytest.mark.skipif(not FASHION_MNIST.exists(), reason="apt package dataset-fashion-mnist is not installed")
def test_sets_keep_class_names_and_prompts_beside_them_and_old_builds_are_redone(tmp_path):
    folder = tmp_path / "fashion-mnist-test"
    manifest = build("fashion-mnist-test", folder, limit=5)
    names = (folder / "classnames.txt").read_text().splitlines()
    assert names == manifest["classnames"]
    assert all("{c}" in t for t in (folder / "zeroshot_classification_templates.txt").read_text().splitlines())
    (folder / "classnames.txt").unlink()  # as sets built before they kept them
    prepare_offline(tmp_path, tuple(t for t in OFFLINE if t.key == "fashion-mnist-test"))
    assert (folder / "classnames.txt").exists()
    assert json.loads((folder / "_pool.json").read_text())["n"] == 5  # built again with its own options


def test_a_missing_checkpoint_fails_before_any_set_is_built(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["eval", "runs/nothing-here", "--device", "cpu"])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not (tmp_path / "data").exists()


@pytest.mark.skipif(not TUXPAINT_STAMPS.exists(), reason="apt package tuxpaint-stamps-default is not installed")
def test_a_given_data_folder_is_only_read(tmp_path, clip):
    checkpoint = _train_folder(tmp_path / "run", clip)
    data = tmp_path / "mine"
    data.mkdir()
    (data / "notes.txt").write_text("a user's folder")
    result = CliRunner().invoke(app, ["eval", str(checkpoint), "--data", str(data), "--tasks", "tuxpaint-retrieval",
                                      "--device", "cpu"])
    assert result.exit_code == 2
    assert "curate pools build NAME --out" in " ".join(result.output.split())
    assert [p.name for p in data.iterdir()] == ["notes.txt"]


@pytest.mark.skipif(not TUXPAINT_STAMPS.exists(), reason="apt package tuxpaint-stamps-default is not installed")
def test_missing_sets_are_built_with_a_note_and_chosen_tasks_keep_the_whole_suite_results(tmp_path, clip,
                                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint = _train_folder(tmp_path / "run", clip)
    whole = checkpoint / "eval" / "offline" / "results.json"
    whole.parent.mkdir(parents=True)
    whole.write_text('{"the": "whole suite"}')
    result = CliRunner().invoke(app, ["eval", str(checkpoint), "--tasks", "tuxpaint-retrieval", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "building the evaluation set tuxpaint-retrieval" in result.output
    assert (tmp_path / "data" / "eval" / "tuxpaint-retrieval" / "test" / "nshards.txt").is_file()
    assert whole.read_text() == '{"the": "whole suite"}'
    part = json.loads((checkpoint / "eval" / "offline" / "tasks" / "tuxpaint-retrieval" / "results.json").read_text())
    assert [t["task"] for t in part["tasks"]] == ["tuxpaint-retrieval"] and part["alpha"] == "white"
