"""The training loop: contrastive loss (CLIP's, or SigLIP's), AdamW, warmup + cosine, gradient
accumulation, bf16 autocast on a GPU, checkpoints and exact resume."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from curate.stages.score.model_batches import BatchFeeder, clip_pixels
from curate.train import checkpoint
from curate.train.config import TrainConfig
from curate.train.data import Position, ShardStream, find_shards

METRICS = "metrics.jsonl"
_MAX_LOGIT_SCALE = 4.6052  # ln(100), open_clip's clamp


def train(config: TrainConfig, out: Path, device: str = "auto", decode_threads: int = 2,
          stop_after: int | None = None, on_step: Callable[[dict], None] | None = None) -> dict:
    """Train (or continue training) into `out`; return the last metrics. `stop_after` ends the
    run after that many steps in all, resumable, as a job with a time limit would."""
    import torch

    from curate.models.clip import load_clip

    out.mkdir(parents=True, exist_ok=True)
    checkpoint.check_config(out, config)
    clip = load_clip(config.model, config.init, device)
    model = clip.model.train()
    loss_fn = _loss(config, model, clip.device)
    optimizer = _optimizer(model, config)
    step, position = 0, Position()
    saved = checkpoint.load(out)
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        step, position = saved["step"], Position(**saved["position"])
    _truncate_metrics(out / METRICS, step)
    stream = ShardStream(find_shards(config.data), config.seed).batches(position, config.micro_batch)
    feeder = BatchFeeder(decode_threads, "train")
    last = {"step": step}
    end = min(config.steps, stop_after or config.steps)
    while step < end:
        started = time.perf_counter()
        loss, position = _step(config, clip, model, loss_fn, optimizer, stream, feeder, step)
        step += 1
        last = {"step": step, "samples_seen": step * config.batch_size, "loss": round(loss, 5),
                "lr": config.learning_rate(step - 1),
                "samples_per_s": round(config.batch_size / (time.perf_counter() - started), 1)}
        with open(out / METRICS, "a") as log:
            log.write(json.dumps(last) + "\n")
        if step % config.checkpoint_every == 0 or step == end:
            checkpoint.save(out, step, position, model, optimizer)
        if on_step:
            on_step(last)
    if step == config.steps:
        checkpoint.save_weights(out, model)
    return last


def _step(config, clip, model, loss_fn, optimizer, stream, feeder, step: int):
    """One optimiser step over `accumulate` micro-batches; (mean loss, position after it)."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = config.learning_rate(step)
    total = 0.0
    for _ in range(config.accumulate):
        samples, position = next(stream)
        pixels = feeder.map(lambda data: clip_pixels(clip, data), [image for image, _ in samples])
        keep = [i for i, p in enumerate(pixels) if p is not None]
        images = clip.model_input(torch.stack([pixels[i] for i in keep]))
        tokens = clip.tokenizer([samples[i][1] for i in keep]).to(clip.device)
        with _autocast(clip.device):
            outputs = model(images, tokens)
            loss = loss_fn(*outputs) / config.accumulate
        loss.backward()
        total += loss.item()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        model.logit_scale.clamp_(0, _MAX_LOGIT_SCALE)
    return total, position


def _autocast(device: str):
    import torch

    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _loss(config: TrainConfig, model, device: str):
    """CLIP's contrastive loss, or SigLIP's sigmoid loss (which adds a learnt bias to the model)."""
    import torch
    from open_clip.loss import ClipLoss, SigLipLoss

    if config.loss == "clip":
        return ClipLoss()
    if getattr(model, "logit_bias", None) is None:
        model.logit_bias = torch.nn.Parameter(torch.tensor(-10.0, device=device))
    return SigLipLoss()


def _optimizer(model, config: TrainConfig):
    """AdamW; gains, biases, embeddings of positions and the logit scale get no weight decay
    (open_clip's rule)."""
    import torch

    exclude = lambda name, p: p.ndim < 2 or any(k in name for k in ("bn", "ln", "bias", "logit_scale"))  # noqa: E731
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not exclude(n, p)]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and exclude(n, p)]
    return torch.optim.AdamW([{"params": rest, "weight_decay": 0.0},
                              {"params": decay, "weight_decay": config.weight_decay}],
                             lr=config.lr, betas=(0.9, 0.98), eps=1e-6)


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the metrics of the steps up to the checkpoint a run resumes from."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in lines))
