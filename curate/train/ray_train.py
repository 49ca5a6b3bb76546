"""Several nodes: the same training loop in the workers of Ray Train's TorchTrainer, which sets up
torch.distributed (NCCL on GPUs, gloo on CPUs) before the loop starts. The run folder must be
on storage every node sees: rank 0 writes it, every rank reads the checkpoint it resumes from."""

from __future__ import annotations

import os
from pathlib import Path

from curate.errors import CurateError
from curate.train.config import TrainConfig

# Ray Train's extras that a batch job does not need (usage reports, doubled prints, watchers)
_QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
          "RAY_TRAIN_ENABLE_STATE_ACTOR_RECONCILIATION": "0", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}
PRINT_EVERY = 10  # steps between progress lines from rank 0


def train_on_ray(config: TrainConfig, out: Path, workers: int, device: str, decode_threads: int,
                 stop_after: int | None, address: str | None = None) -> dict:
    """Run the loop on `workers` Ray Train workers, one GPU each when `device` is cuda (or auto
    and the cluster has GPUs); the last metrics of rank 0."""
    for key, value in _QUIET.items():
        os.environ.setdefault(key, value)
    import ray
    from ray.train import RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchTrainer

    owns = not ray.is_initialized()
    if owns:
        ray.init(address=address, include_dashboard=False, logging_level="warning")
    use_gpu = device == "cuda" or (device == "auto" and ray.cluster_resources().get("GPU", 0) >= 1)
    device = "cuda" if use_gpu else "cpu"
    settings = {"config": config.model_dump(mode="json"), "out": str(out.resolve()), "device": device,
                "decode_threads": decode_threads, "stop_after": stop_after}
    trainer = TorchTrainer(_worker_loop, train_loop_config=settings,
                           scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
                           run_config=RunConfig(storage_path=str(out.resolve() / "ray"), name="train"))
    try:
        return trainer.fit().return_value
    except TrainingFailedError as error:
        raise CurateError(f"training on Ray failed: {error}") from None
    finally:
        if owns:
            ray.shutdown()


def _worker_loop(settings: dict) -> dict:
    """What every Ray Train worker runs: curate's loop, rank 0 printing progress lines."""
    import torch.distributed as dist

    from curate.train.loop import train

    def report(metrics: dict) -> None:
        if dist.get_rank() == 0 and metrics["step"] % PRINT_EVERY == 0:
            print(f"step {metrics['step']}: loss {metrics['loss']:.4f}, {metrics['samples_per_s']:,.0f} samples/s",
                  flush=True)

    return train(TrainConfig(**settings["config"]), Path(settings["out"]), settings["device"],
                 settings["decode_threads"], settings["stop_after"], report)
