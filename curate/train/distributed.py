"""Where this process stands in a training job: one process, one of several started by torchrun,
or a Ray Train worker. Both engines set up torch.distributed; the loop only asks for its rank,
its share of each batch and a model wrapped for data parallelism."""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass


@dataclass(frozen=True)
class Distributed:
    """This process's rank among `world` data-parallel processes."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """The process that writes checkpoints, metrics and weights."""
        return self.rank == 0

    def share(self, items: list) -> list:
        """This rank's contiguous slice of a global batch: gathered in rank order, the slices
        are the batch in its own order, so the loss is the one a single process computes."""
        n = len(items)
        return items[self.rank * n // self.world:(self.rank + 1) * n // self.world]

    def wrap(self, model, device: str):
        """The model as the optimiser step sees it: DDP over several processes."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[_local_rank()] if device == "cuda" else None)

    def accumulating(self, wrapped, last: bool):
        """No gradient all-reduce on the micro-batches before the last of a step."""
        return wrapped.no_sync() if self.world > 1 and not last else nullcontext()

    def barrier(self) -> None:
        """Wait for every rank (the main one writing a checkpoint, say)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


def setup(device: str) -> Distributed:
    """Join the job torchrun or Ray Train started, or run alone. torchrun leaves the process
    group to us (WORLD_SIZE and friends in the environment); Ray Train has set it up already."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) == 1:
            return Distributed()
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        torch.cuda.set_device(_local_rank())
    return Distributed(dist.get_rank(), dist.get_world_size())


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))
