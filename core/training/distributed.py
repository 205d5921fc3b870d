"""Data-parallel work under torchrun: `torchrun --nproc_per_node N -m zoo train RECIPE` (and `... -m zoo compare`).

torchrun starts N copies of the command and tells each its place through the environment (WORLD_SIZE, RANK,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT). `setup` joins them into one process group (gloo on the CPU, nccl on
CUDA, one GPU per process); `core.training.DiffusionTrainer` then wraps its model in DistributedDataParallel,
which averages the gradients across processes in every backward pass, so every rank takes the same step.
`zoo compare` shares out its chunks of images instead (`share`: item k to rank k % N) and gathers them on
rank 0 in order (`gather_shares`). Outside torchrun (or with one process) nothing here does anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from core.errors import AtlasError
from core.models.fingerprint import weights_fingerprint

TORCHRUN_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job; the default is a single process."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None
    owns_group: bool = False  # set up here, so `teardown` destroys it

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, samples and writes files."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARS) and int(os.environ["WORLD_SIZE"]) > 1


def active() -> bool:
    """A process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def context() -> DistContext:
    """The current process group's context (a single process when there is none)."""
    if not active():
        return DistContext()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return DistContext(
        rank=dist.get_rank(), local_rank=local, world_size=dist.get_world_size(), backend=str(dist.get_backend())
    )


def setup(device: str) -> tuple[DistContext, str]:
    """Join torchrun's process group when launched by it; returns the context and this process's device.

    Under torchrun a CUDA device becomes cuda:LOCAL_RANK (one GPU per process, nccl); otherwise gloo.
    A group that already exists is used as it is and left for its owner to destroy.
    """
    if active():
        ctx = context()
    elif launched_by_torchrun():
        cuda = torch.device(device).type == "cuda"
        local = int(os.environ["LOCAL_RANK"])
        if cuda:
            torch.cuda.set_device(local)
        backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend)
        ctx = DistContext(
            rank=dist.get_rank(), local_rank=local, world_size=dist.get_world_size(), backend=backend, owns_group=True
        )
    else:
        return DistContext(), device
    if torch.device(device).type == "cuda":
        device = f"cuda:{ctx.local_rank}"
    return ctx, device


def teardown(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wait_for_all(ctx: DistContext) -> None:
    """Every rank waits here until all have come (a barrier; nothing for one process): a job's ranks end together,
    so none tears the group down while rank 0 still works (gloo can abort a rank that leaves early)."""
    if ctx.world_size > 1:
        dist.barrier()


def broadcast_object(value: object, ctx: DistContext) -> object:
    """Rank 0's `value` on every rank (e.g. a run folder named from rank 0's clock)."""
    if ctx.world_size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def replicas_identical(module: torch.nn.Module, ctx: DistContext) -> bool:
    """Whether every rank holds bit-identical weights (True for a single process)."""
    if ctx.world_size == 1:
        return True
    digests: list[str | None] = [None] * ctx.world_size
    dist.all_gather_object(digests, weights_fingerprint(module))
    return len(set(digests)) == 1


def first_error(error: AtlasError | None, ctx: DistContext) -> AtlasError | None:
    """The error of the lowest rank that had one, on every rank (None when none had): ranks whose checks differ
    (rank 0 alone makes the output folder) then stop together with one sentence, none left waiting in a later
    collective for a rank that stopped. Every rank must call it, at the same point."""
    if ctx.world_size == 1:
        return error
    errors: list[AtlasError | None] = [None] * ctx.world_size
    dist.all_gather_object(errors, error)
    return next((e for e in errors if e is not None), None)


def share(count: int, ctx: DistContext) -> range:
    """This rank's items of `count` dealt out in turn: item k to rank k % world_size (all of them for one process)."""
    return range(ctx.rank, count, ctx.world_size)


def gather_shares(mine: Sequence[Any], count: int, ctx: DistContext) -> list[Any] | None:
    """Every rank's items of `share(count, ctx)` on rank 0, back in the order 0..count-1; None on the other ranks
    (`mine` as a list for one process). The items are pickled (`gather_object`), CPU tensors best: that works
    under gloo and under nccl (whose own buffers go through the device `setup` chose)."""
    if len(mine) != len(share(count, ctx)):
        raise ValueError(f"rank {ctx.rank} holds {len(mine)} items, not its share of {count}")
    if ctx.world_size == 1:
        return list(mine)
    per_rank: list[Any] | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(list(mine), per_rank, dst=0)
    if per_rank is None:
        return None
    return [per_rank[k % ctx.world_size][k // ctx.world_size] for k in range(count)]
