"""Fixtures of the training tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import torch
import torch.distributed as dist


@pytest.fixture
def one_rank_group() -> Iterator[None]:
    """A one-rank gloo process group for in-process DDP tests, torn down cleanly.

    Before the group goes, compiled graphs are dropped and the garbage is collected, so
    every DDP reducer (which holds the group and its threads) is freed here. Left as
    garbage, one would be collected in a DataLoader worker forked by a later test, whose
    copy of the group's threads does not exist: its destructor then waits forever.
    """
    threads = torch.get_num_threads()
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        torch.compiler.reset()
        gc.collect()
        dist.destroy_process_group()
        torch.set_num_threads(threads)
