"""The training loop: contrastive loss (CLIP's, or SigLIP's), AdamW, warmup + cosine, gradient
accumulation, bf16 autocast on a GPU, checkpoints and exact resume."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from curate.train import checkpoint, distributed
from curate.train.batches import micro_batches
from curate.train.config import TrainConfig
from curate.train.data import Position, find_shards
from curate.train.distributed import Distributed

METRICS = "metrics.jsonl"
_MAX_LOGIT_SCALE = 4.6052  # ln(100), open_clip's clamp


def train(config: TrainConfig, out: Path, device: str = "auto", decode_threads: int = 2,
          stop_after: int | None = None, on_step: Callable[[dict], None] | None = None) -> dict:
    """Train (or continue training) into `out`; return the last metrics. `stop_after` ends the
    run after that many steps in all, resumable, as a job with a time limit would. Under torchrun
    or Ray Train every process runs this, each on its share of every batch."""
    from curate.models.clip import load_clip, resolve_device

    device = resolve_device(device)
    dist = distributed.setup(device)
    find_shards(config.data)  # the settings are checked (data, then model and weights) before any is recorded
    clip = load_clip(config.model, config.init, device, seed=config.seed)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.check_config(out, config, write=dist.main)
    model = clip.model.train()
    loss_fn = _loss(config, model, clip.device, dist)
    optimizer = _optimizer(model, config)
    step, position = _resume(out, model, optimizer)
    if step >= config.steps:
        dist.barrier()
        return {"step": step, "already_complete": True}
    if dist.main:
        _truncate_metrics(out / METRICS, step)
    wrapped = dist.wrap(model, clip.device)
    last = {"step": step}
    end = min(config.steps, stop_after or config.steps)
    batches = micro_batches(config, position, clip, dist, decode_threads)
    while step < end:
        started = time.perf_counter()
        loss, position, undecodable = _step(config, clip, wrapped, loss_fn, optimizer, batches, dist, step)
        step += 1
        last = {"step": step, "samples_seen": step * config.batch_size, "loss": round(loss, 5),
                "lr": config.learning_rate(step - 1),
                "samples_per_s": round(config.batch_size / (time.perf_counter() - started), 1)}
        if undecodable:
            last["undecodable"] = undecodable
        if dist.main:
            _log(out, last, checkpoint_now=step % config.checkpoint_every == 0 or step == end,
                 position=position, model=model, optimizer=optimizer)
            if step == config.steps:
                checkpoint.save_weights(out, model, config)
        if on_step:
            on_step(last)
    batches.close()
    dist.barrier()
    return last


def _resume(out: Path, model, optimizer) -> tuple[int, Position]:
    """Restore the latest checkpoint, if any: (steps done, stream position)."""
    import torch

    saved = checkpoint.load(out)
    if saved is None:
        return 0, Position()
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["torch_rng"])
    return saved["step"], Position(**saved["position"])


def _log(out: Path, metrics: dict, checkpoint_now: bool, position: Position, model, optimizer) -> None:
    with open(out / METRICS, "a") as log:
        log.write(json.dumps(metrics) + "\n")
    if checkpoint_now:
        checkpoint.save(out, metrics["step"], position, model, optimizer)


def _step(config, clip, wrapped, loss_fn, optimizer, batches, dist, step: int):
    """One optimiser step over `accumulate` micro-batches: (loss, position after it, images
    that did not decode)."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = config.learning_rate(step)
    total, undecodable = 0.0, 0
    for micro in range(config.accumulate):
        batch = next(batches)
        images = clip.model_input(batch.pixels)
        tokens = batch.tokens.to(clip.device, non_blocking=True)
        with dist.accumulating(wrapped, last=micro == config.accumulate - 1):
            with _autocast(clip.device):
                loss = loss_fn(*wrapped(images, tokens)) / config.accumulate
            loss.backward()
        total = total + loss.detach()
        undecodable += batch.undecodable
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model = clip.model
    with torch.no_grad():
        model.logit_scale.clamp_(0, _MAX_LOGIT_SCALE)
    return float(total), batch.position, undecodable


def _autocast(device: str):
    import torch

    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _loss(config: TrainConfig, model, device: str, dist: Distributed):
    """CLIP's contrastive loss, or SigLIP's sigmoid loss (which adds a learnt bias to the model).
    Over several processes each sees every rank's features: the loss of the whole batch."""
    import torch
    from open_clip.loss import ClipLoss, SigLipLoss

    if config.loss == "clip":
        return ClipLoss(gather_with_grad=True, cache_labels=True, rank=dist.rank, world_size=dist.world)
    if getattr(model, "logit_bias", None) is None:
        model.logit_bias = torch.nn.Parameter(torch.tensor(checkpoint.SIGLIP_LOGIT_BIAS, device=device))
    return SigLipLoss(cache_labels=True, rank=dist.rank, world_size=dist.world)


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
