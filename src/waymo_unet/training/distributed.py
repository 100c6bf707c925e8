"""torch.distributed plumbing: process groups, launching ranks, reducing numbers.

The same ``train_model`` runs in one process or in every rank of a DDP job. A Kedro
node launches the ranks itself (``launch``), so Kedro runs each node once; ``torchrun``
starts them for multi-machine jobs and ``context_from_environment`` picks them up.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn  # before any process group exists: see below
import torch.multiprocessing as mp
from torch.utils.data import Sampler

from waymo_unet.data.parallel import available_cores
from waymo_unet.digest import content_digest

logger = logging.getLogger(__name__)

# Why torch.distributed.nn is imported above: its functions take `group=group.WORLD` as a
# default argument, evaluated when the module is first imported, which DDP does lazily.
# Imported after init_process_group, the defaults hold the default group for the life of
# the interpreter: destroy_process_group cannot free it and its gloo threads are still
# running when Python finalises, which can abort a rank at exit ("terminate called
# without an active exception", SIGABRT; pytorch#190489). Imported before, they are None.


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a DDP job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int = 1  # ranks on this machine

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def claim_device(self, requested: torch.device) -> torch.device:
        """This rank's device: its own GPU on CUDA, or its share of this machine's cores."""
        if requested.type != "cuda":
            torch.set_num_threads(self.cores())
            return requested
        device = torch.device("cuda", self.gpu_index())
        torch.cuda.set_device(device)
        return device

    def cores(self) -> int:
        """This rank's share of the cores this process may run on (at least one).

        Its threads, and the default of its DataLoader workers, are sized by it.
        """
        return max(1, available_cores() // self.local_world_size)

    def gpu_index(self) -> int:
        """Which of the GPUs this rank sees is its own.

        One visible GPU is this rank's whatever its local rank: launchers such as SLURM
        give each rank its own through ``CUDA_VISIBLE_DEVICES``. (Ranks that all see the
        same single GPU are stopped by NCCL, "Duplicate GPU detected", when they join.)
        Seeing all of the machine's GPUs, rank ``local_rank`` takes the ``local_rank``-th.
        """
        gpus = torch.cuda.device_count()
        if gpus == 1:
            return 0
        if gpus >= self.local_world_size:
            return self.local_rank
        # Decided alike on every rank of the machine, so all of them stop.
        raise RuntimeError(
            f"rank {self.rank} has no GPU of its own: it sees {gpus} GPUs and this machine "
            f"runs {self.local_world_size} ranks; start at most one rank per GPU, or give "
            "each rank one GPU of its own (CUDA_VISIBLE_DEVICES)"
        )


def context_from_environment() -> DistributedContext | None:
    """This process's place in the job torchrun's variables describe; None when not under one.

    The process group is joined later, by ``join_process_group``, once the rank knows
    its device.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size < 2:
        return None
    return DistributedContext(
        int(os.environ["RANK"]),
        world_size,
        int(os.environ.get("LOCAL_RANK", "0")),
        int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
    )


def join_process_group(device: torch.device) -> None:
    """Join the default process group from torchrun's variables, bound to this rank's device.

    On a GPU, ``device_id`` makes NCCL form its communicator on that GPU at once, so a
    wrong device set-up fails here rather than at the first collective, and barriers
    know their GPU. A CPU rank binds to none: it must not claim a GPU it does not use.
    """
    if dist.is_initialized():
        return
    # NCCL for CUDA tensors, gloo for CPU ones: a CPU run on a GPU machine works too.
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(
        backend,
        timeout=datetime.timedelta(minutes=30),
        device_id=device if device.type == "cuda" else None,
    )
    logger.info("Rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), dist.get_backend())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(function: Callable[..., None], nprocs: int, args: Sequence[Any]) -> None:
    """Run ``function(*args)`` in ``nprocs`` new processes forming one process group.

    Like torchrun on one machine, but from inside a running program: the ranks are
    spawned (a clean interpreter each) and ``function`` finds its rank through
    ``context_from_environment``. An exception in any rank is raised here.
    """
    environment = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    mp.start_processes(
        _run_rank,
        args=(nprocs, environment, function, tuple(args)),
        nprocs=nprocs,
        start_method="spawn",
    )


def _run_rank(
    rank: int,
    world_size: int,
    environment: dict[str, str],
    function: Callable[..., None],
    args: tuple[Any, ...],
) -> None:
    os.environ.update(
        environment,
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
    )
    # A spawned rank starts with no logging set up: rank 0 reports progress, others warn.
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"[rank {rank}] %(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        function(*args)
        leave_process_group()
    finally:
        if dist.is_initialized():  # this rank failed: the others stop at their next collective
            dist.destroy_process_group()


def leave_process_group() -> None:
    """Wait for every rank, then destroy the process group and with it its threads.

    The barrier matters: gloo aborts a rank whose peer tears down early.
    """
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (as given when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def require_same_on_all_ranks(
    value: str,
    what: str,
    device: torch.device,
    hint: str = "every rank must read the same shards with the same settings",
) -> None:
    """Raise on every rank unless all ranks hold the same ``value``.

    Ranks that saw other shards or settings would otherwise part ways (one resumes a
    checkpoint, another starts over) and wait on each other for ever. Compared as the
    minimum and maximum of a digest, so it needs only an all-reduce (gloo and NCCL alike).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    code = int(content_digest(value, length=15), 16)
    extremes = torch.tensor([code, -code], dtype=torch.int64, device=device)
    dist.all_reduce(extremes, op=dist.ReduceOp.MIN)
    if int(extremes[0]) != -int(extremes[1]):
        raise RuntimeError(
            f"ranks disagree on the {what} (rank {dist.get_rank()} has {value}): {hint}"
        )


class ShardSampler(Sampler[int]):
    """Every ``world_size``-th item from ``rank``, in order, without padding.

    For evaluation: unlike ``DistributedSampler`` it repeats no item, so summed
    confusion matrices count every validation pixel exactly once.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = range(rank, length, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """The order never changes; here to match DistributedSampler."""
