"""A modelled object store, and the counted sources ingestion reads through.

GCS cannot be reached from here, so the ingestion section's second table reads the same
local files as gcsfs reads objects (``RemoteFile``: ranged requests behind an fsspec
cache), each request waiting as one from GCS would. ``CountingParquetSource`` opens a
file either way, logging what it reads (``benchmarks.read_log``). Torch-free: the
ingestion workers unpickle these sources.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import BinaryIO

from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractBufferedFile

from benchmarks.read_log import CountingFile, log_reads
from waymo_unet.data.parquet import ParquetSource


@dataclass(frozen=True)
class RemoteStorage:
    """A modelled object store: a request waits ``latency_s`` plus its bytes at ``mib_per_s``.

    The defaults are typical of one GCS stream from a VM in the bucket's region. Requests
    go through fsspec's ``cache_type`` as in gcsfs; "none" makes every read of the
    reader one ranged request of exactly its size (gcsfs's default adaptive prefetcher,
    which fetches ahead concurrently, is not modelled). The wait is a sleep, so the CPU
    is free meanwhile, as it is while a socket waits.
    """

    latency_s: float = 0.05
    mib_per_s: float = 100.0
    cache_type: str = "none"
    block_size: int = 5 * 2**20  # for cache types that read ahead

    def seconds(self, requests: int, size: int) -> float:
        """How long ``requests`` requests fetching ``size`` bytes in all wait, one by one."""
        return requests * self.latency_s + size / (self.mib_per_s * 2**20)

    def wait(self, size: int) -> None:
        time.sleep(self.seconds(1, size))

    def describe(self) -> str:
        return (
            f"{1000 * self.latency_s:.0f} ms + {self.mib_per_s:.0f} MiB/s a request, "
            f"fsspec cache_type={self.cache_type!r}"
        )


class RemoteFile(AbstractBufferedFile):
    """A local file read as gcsfs reads an object, each request waiting as ``storage`` says.

    Reads go through the fsspec cache ``storage.cache_type``, which turns them into
    ranged requests (``_fetch_range``); the requests and their bytes go to ``log_dir``.
    """

    def __init__(self, path: str, storage: RemoteStorage, log_dir: str | None = None) -> None:
        self.storage = storage
        self.log_dir = log_dir
        self.requests = 0
        self.bytes_fetched = 0
        self._local = open(path, "rb")  # noqa: SIM115 - closed in close()
        super().__init__(
            LocalFileSystem(),
            path,
            block_size=storage.block_size,
            cache_type=storage.cache_type,
            size=os.path.getsize(path),
        )

    def _fetch_range(self, start: int, end: int) -> bytes:
        self._local.seek(start)
        data = self._local.read(end - start)
        self.requests += 1
        self.bytes_fetched += len(data)
        self.storage.wait(len(data))
        return data

    def close(self) -> None:
        if not self.closed:
            self._local.close()
            log_reads(self.log_dir, self.path, self.bytes_fetched, self.requests)
        super().close()


def open_counted(path: str, log_dir: str | None, storage: RemoteStorage | None = None) -> BinaryIO:
    """``path`` opened to log what is read: through ``storage`` if given, else locally."""
    if storage is not None:
        return RemoteFile(path, storage, log_dir)  # type: ignore[return-value]
    return CountingFile(open(path, "rb"), path, log_dir)  # type: ignore[return-value]


@dataclass(frozen=True)
class CountingParquetSource(ParquetSource):
    """A local ``ParquetSource`` that logs what is read to ``log_dir`` (``open_counted``),
    through ``storage`` when given."""

    log_dir: str | None = None  # None: count without logging
    storage: RemoteStorage | None = None

    def open(self) -> BinaryIO:
        return open_counted(self.path, self.log_dir, self.storage)
