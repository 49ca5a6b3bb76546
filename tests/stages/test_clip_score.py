"""clip_score: the same numbers as open_clip's own encode_image / encode_text, local weights,
clear errors, several scorers side by side."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

pytest.importorskip("open_clip")
import torch  # noqa: E402

from curate import ConfigError, load_pipeline, run_pipeline  # noqa: E402
from curate.models.clip import load_clip  # noqa: E402
from conftest import write_pipeline  # noqa: E402

TOLERANCE = 1e-5  # float32 on the CPU; embeddings are stored as float16 (about 1e-3)


def _run(tmp_path, pool, stages, name="run"):
    pipeline = write_pipeline(tmp_path / f"{name}.yaml", str(pool / "*.tar"), tmp_path / name, stages=stages)
    return run_pipeline(load_pipeline(pipeline))


def _reference_scores(tmp_path, weights=None):
    """open_clip's own encoders on the ingested images and captions."""
    clip = load_clip("curate-tiny-vit", weights, "cpu")
    rows = pq.read_table(sorted((tmp_path / "run" / "ingest_webdataset").glob("*.parquet"))).to_pylist()
    expected = {}
    with torch.no_grad():
        for row in rows:
            if row["drop_reason"] is not None:
                continue
            pixels = clip.preprocess(Image.open(io.BytesIO(row["image"])).convert("RGB")).unsqueeze(0)
            image = clip.model.encode_image(pixels)
            text = clip.model.encode_text(clip.tokenizer([row["caption"]]))
            image, text = image / image.norm(dim=-1, keepdim=True), text / text.norm(dim=-1, keepdim=True)
            expected[row["uid"]] = (float((image * text).sum()), image[0].numpy())
    return expected


def _scores(tmp_path, stage_id, prefix):
    table = pq.read_table(sorted((tmp_path / "run" / stage_id).glob("*.parquet"))).to_pylist()
    return {row["uid"]: (row[f"{prefix}_score"], row[f"{prefix}_image_embedding"]) for row in table}


def test_scores_equal_open_clips_own_encoders(tmp_path, pool):
    _run(tmp_path, pool, [{"stage": "clip_score", "params": {"batch_size": 7}}])
    expected = _reference_scores(tmp_path)
    got = _scores(tmp_path, "clip_score", "clip_curate_tiny_vit")
    assert len(expected) == 100 and set(expected) <= set(got)
    for uid, (score, embedding) in expected.items():
        assert got[uid][0] == pytest.approx(score, abs=TOLERANCE)
        stored = np.frombuffer(got[uid][1], "<f2").astype(np.float32)
        assert np.allclose(stored, embedding, atol=2e-3) and abs(np.linalg.norm(stored) - 1) < 2e-3
    assert all(got[uid][0] is None for uid in set(got) - set(expected))  # dropped at ingest: not scored


def test_local_checkpoints_load_and_two_scorers_sit_side_by_side(tmp_path, pool):
    torch.manual_seed(7)
    import open_clip

    load_clip("curate-tiny-vit", None, "cpu")  # registers the tiny configs
    other = open_clip.create_model("curate-tiny-vit")
    torch.save(other.state_dict(), tmp_path / "bare.pt")
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in other.state_dict().items()}},
               tmp_path / "epoch_3.pt")
    stages = [{"stage": "clip_score", "id": "clip_a", "params": {"weights": str(tmp_path / "bare.pt"), "name": "a"}},
              {"stage": "clip_score", "id": "clip_b", "params": {"weights": str(tmp_path / "epoch_3.pt"), "name": "b"}},
              {"stage": "select", "params": {"filters": {"both_scored": "a_score IS NOT NULL AND b_score IS NOT NULL"}}}]
    summary = _run(tmp_path, pool, stages)
    a, b = _scores(tmp_path, "clip_a", "a"), _scores(tmp_path, "clip_b", "b")
    assert a.keys() == b.keys() and all(a[u][0] == b[u][0] for u in a)
    expected = _reference_scores(tmp_path, str(tmp_path / "bare.pt"))
    assert all(a[u][0] == pytest.approx(s, abs=TOLERANCE) for u, (s, _) in expected.items())
    assert summary["curated"] == 100


@pytest.mark.parametrize("weights, message", [
    ("/no/such/weights.pt", "does not exist"), ("laion9b_nonsense", "neither an absolute path nor a pretrained tag"),
])
def test_bad_weights_are_clear_errors(tmp_path, pool, weights, message):
    with pytest.raises(ConfigError, match=message):
        _run(tmp_path, pool, [{"stage": "clip_score", "params": {"weights": weights}}])


def test_weights_that_do_not_fit_the_model(tmp_path, pool):
    torch.save({"visual.proj": torch.zeros(3)}, tmp_path / "wrong.pt")
    with pytest.raises(ConfigError, match="do not fit curate-tiny-vit"):
        _run(tmp_path, pool, [{"stage": "clip_score", "params": {"weights": str(tmp_path / "wrong.pt")}}])


def test_a_cuda_scorer_reserves_a_gpu_so_that_ray_lets_it_see_one():
    from curate.stages.score.clip_score import ClipScore, ClipScoreParams

    assert ClipScore(ClipScoreParams(device="cuda")).resources.gpus == 1
    assert ClipScore(ClipScoreParams(device="cpu")).resources.gpus == 0
