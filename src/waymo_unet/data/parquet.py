"""Reading Waymo v2 parquet files column by column and row group by row group.

A real camera_image file is about 1 GB, and only about one frame in ten has a label.
Reading the key columns first (well under a millisecond) tells which row groups hold
the labelled frames, so the image column is read only for those.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, BinaryIO

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from waymo_unet.data.waymo import KEY_CAMERA, KEY_TIMESTAMP, REQUIRED_COLUMNS, CameraName

INVALID_CAMERA = -1


class SchemaError(ValueError):
    """A parquet file that is not a usable Waymo v2 component file."""


class UnreadableFileError(OSError):
    """Bytes of a parquet file that cannot be read back: a truncated or corrupt file."""


# Listing fields that change when a file's bytes do, most telling first. A content
# checksum (GCS md5Hash, or crc32c for composite objects without one; S3 and Azure
# ETags) stays the same when the same bytes are copied again; an object generation or
# a modification time (local files) changes with every write, so they come last.
CHANGE_MARKERS = ("md5Hash", "crc32c", "ETag", "etag", "generation", "mtime", "LastModified")

Identity = tuple[tuple[str, int | float | str], ...]
"""``(("size", n), (marker, value))``: what tells that a file has changed."""


def file_identity(info: dict[str, Any]) -> Identity:
    """A file's size and its first ``CHANGE_MARKERS`` field, from an fsspec listing entry."""
    identity: list[tuple[str, int | float | str]] = [("size", int(info["size"]))]
    for name in CHANGE_MARKERS:
        value = info.get(name)
        if value is not None and value != "":
            identity.append((name, value if isinstance(value, int | float | str) else str(value)))
            break
    return tuple(identity)


@dataclass(frozen=True)
class ParquetSource:
    """Where one parquet file lives: a local path or URL plus fsspec storage options.

    Small and picklable, so a worker process or a Dask worker can open the file itself.
    ``identity`` (size and modification time, or a checksum or generation on object
    stores) comes from the listing that found the file; it is empty when the source
    was not listed, and then a committed shard of it is never taken as current.
    """

    path: str
    storage_options: dict[str, Any] = field(default_factory=dict, compare=False)
    identity: Identity = ()

    @classmethod
    def listed(
        cls, path: str, info: dict[str, Any], storage_options: dict[str, Any] | None = None
    ) -> ParquetSource:
        """A source found by a listing with details (``fs.glob(..., detail=True)``)."""
        return cls(path, storage_options or {}, file_identity(info))

    @property
    def segment(self) -> str:
        """The segment context name, which is the file's stem."""
        return self.path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".parquet")

    def describe(self) -> dict[str, Any]:
        """Path and identity, as recorded beside a shard (no storage options: secrets)."""
        return {"path": self.path, **dict(self.identity)}

    def open(self) -> BinaryIO:
        """A binary file object; the caller closes it."""
        return fsspec.open(self.path, "rb", **self.storage_options).open()


class ComponentFile:
    """An open Waymo v2 component file whose required columns have been checked."""

    def __init__(self, source: ParquetSource, component: str) -> None:
        self.source = source
        self.component = component
        try:
            self._handle = source.open()
        except FileNotFoundError:
            raise FileNotFoundError(f"{source.path}: no such file or object") from None
        except PermissionError as error:
            raise PermissionError(f"{source.path}: permission denied ({error})") from None
        try:
            self.parquet = pq.ParquetFile(self._handle)
        except (pa.ArrowException, OSError) as error:
            self.close()
            raise SchemaError(
                f"{source.path}: not a readable parquet file ({error}); if it is truncated "
                "or half-copied, copy it again"
            ) from None
        missing = [
            c for c in REQUIRED_COLUMNS[component] if c not in self.parquet.schema_arrow.names
        ]
        if missing:
            self.close()
            raise SchemaError(
                f"{source.path}: {component} file lacks required column(s) {', '.join(missing)}"
            )

    def __enter__(self) -> ComponentFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._handle.close()

    @cached_property
    def keys(self) -> pd.DataFrame:
        """One row per file row: timestamp, camera id, row group and row within it.

        Unknown camera values get ``INVALID_CAMERA`` so the caller can report them.
        """
        frames = []
        for group in range(self.parquet.num_row_groups):
            table = self.read_columns(group, [KEY_TIMESTAMP, KEY_CAMERA])
            frames.append(
                pd.DataFrame(
                    {
                        "timestamp": table[KEY_TIMESTAMP].to_numpy(),
                        "camera": camera_ids(table[KEY_CAMERA]),
                        "row_group": group,
                        "row_in_group": np.arange(table.num_rows),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True) if frames else empty_keys()

    def read_columns(self, row_group: int, columns: list[str]) -> pa.Table:
        """The given columns of one row group, decoded on this thread only.

        Ingestion runs one segment per core already; pyarrow's own thread pool on top
        measured 1.3x from 1 to 2 processes instead of 1.8x.
        """
        try:
            return self.parquet.read_row_group(row_group, columns=columns, use_threads=False)
        except (pa.ArrowException, OSError) as error:
            if type(error) is not OSError and not isinstance(error, pa.ArrowException):
                # A storage error (connection, permission, object gone): kept as it is.
                error.add_note(f"while reading row group {row_group} of {self.source.path}")
                raise
            # pyarrow's own ("Corrupt brotli compressed data") does not name the file.
            raise UnreadableFileError(
                f"{self.source.path}: row group {row_group} cannot be read ({error}); the "
                "file is truncated or corrupt: copy it again"
            ) from error


def read_row_groups(
    file: ComponentFile, columns: list[str], groups: Iterable[int], ahead: int = 1
) -> Iterator[tuple[int, pa.Table]]:
    """``(group, table)`` for each of ``groups`` in order, reading ``ahead`` of them early.

    On remote storage a row group's read is mostly waiting for bytes; a thread fetches
    the next ones while the caller decodes the current one (pyarrow and the decoders
    release the GIL). Besides the table the caller holds, at most ``ahead + 1`` are
    alive: the next one and those in flight (a for loop keeps the previous table while
    it asks for the next). ``ahead=0`` reads each when it is asked for. Close the
    generator before the file (``contextlib.closing``): closing it cancels the reads not
    started and waits for the one in flight.
    """
    groups = list(groups)
    if ahead < 1:
        for group in groups:
            yield group, file.read_columns(group, columns)
        return
    pool = ThreadPoolExecutor(1, thread_name_prefix=f"read-ahead-{file.source.segment}")
    pending: deque[Future[pa.Table]] = deque()
    try:
        for group in groups[:ahead]:
            pending.append(pool.submit(file.read_columns, group, columns))
        for index, group in enumerate(groups):
            if index + ahead < len(groups):
                pending.append(pool.submit(file.read_columns, groups[index + ahead], columns))
            table = pending.popleft().result()
            yield group, table
            del table  # the caller's reference is the only one left
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def camera_ids(column: pa.ChunkedArray) -> np.ndarray:
    """Camera ids as int64; accepts int8 ids or the enum's names ('FRONT')."""
    if pa.types.is_integer(column.type):
        ids = column.to_numpy().astype(np.int64)
        return np.where(np.isin(ids, [c.value for c in CameraName]), ids, INVALID_CAMERA)
    names = pc.utf8_upper(pc.utf8_trim_whitespace(column.cast(pa.string())))
    lookup = {c.name: c.value for c in CameraName}
    return np.array([lookup.get(n, INVALID_CAMERA) for n in names.to_pylist()], dtype=np.int64)


def empty_keys() -> pd.DataFrame:
    """A key table with no rows, in the columns and dtypes of ``ComponentFile.keys``."""
    return pd.DataFrame(
        {
            name: np.array([], dtype=np.int64)
            for name in ("timestamp", "camera", "row_group", "row_in_group")
        }
    )
