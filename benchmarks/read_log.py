"""Bytes and reads counted on the file objects a benchmark reads through, logged to a folder.

Each open appends one line (path, bytes, reads) to its process's file under the log
folder when it closes, so ingestion's worker processes report what they read too.
``read_log`` is the one reader of such a folder. Torch-free: the workers import it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO


@dataclass(frozen=True)
class ReadCounts:
    """What the opens logged under one folder read: (bytes, read calls) per file path.

    Read calls are requests where the files were read through ``RemoteStorage``.
    """

    per_file: dict[str, tuple[int, int]]

    @property
    def bytes(self) -> int:
        return sum(size for size, _ in self.per_file.values())

    @property
    def reads(self) -> int:
        return sum(reads for _, reads in self.per_file.values())

    def bytes_of(self, path: str) -> int:
        return self.per_file.get(path, (0, 0))[0]


def read_log(log_dir: str | Path) -> ReadCounts:
    """The counts of every open logged under ``log_dir``, summed per file path."""
    totals: dict[str, tuple[int, int]] = {}
    for log in Path(log_dir).glob("*.tsv"):
        for line in log.read_text().splitlines():
            path, size, reads = line.split("\t")
            before = totals.get(path, (0, 0))
            totals[path] = (before[0] + int(size), before[1] + int(reads))
    return ReadCounts(totals)


def log_reads(log_dir: str | None, path: str, size: int, reads: int) -> None:
    """Append one open's counts to this process's log under ``log_dir`` (if any)."""
    if log_dir is not None:
        with open(Path(log_dir) / f"{os.getpid()}.tsv", "a") as log:
            log.write(f"{path}\t{size}\t{reads}\n")


def new_log_dir(parent: str | Path) -> Path:
    """A fresh, empty folder for read logs."""
    path = Path(parent) / f"read_log_{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


class CountingFile:
    """A binary file object that counts its reads and their bytes; other calls pass through."""

    def __init__(self, file: BinaryIO, path: str = "", log_dir: str | None = None) -> None:
        self._file = file
        self.path = path
        self.log_dir = log_dir
        self.bytes_read = 0
        self.reads = 0
        self._logged = False

    def _count(self, size: int) -> None:
        self.bytes_read += size
        self.reads += 1

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._count(len(data))
        return data

    def read1(self, size: int = -1) -> bytes:
        data = self._file.read1(size)
        self._count(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        self._count(count or 0)
        return count

    def close(self) -> None:
        self._file.close()
        if not self._logged:
            self._logged = True
            log_reads(self.log_dir, self.path, self.bytes_read, self.reads)

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)
