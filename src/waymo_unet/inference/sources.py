"""Camera images to segment: v2 camera_image parquet rows, or a folder of JPEG files."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass

from fsspec.core import url_to_fs

from waymo_unet.data.location import Location
from waymo_unet.data.parquet import ComponentFile, ParquetSource, read_row_groups
from waymo_unet.data.waymo import CAMERA_IMAGE, IMAGE_COLUMN, KEY_SEGMENT

logger = logging.getLogger(__name__)

JPEG_SUFFIXES = (".jpg", ".jpeg")


class NothingToSegmentError(ValueError):
    """No image files to segment, or none of them decodes; the caller names the place."""


@dataclass(frozen=True)
class CameraImageSource(Location):
    """A parquet file, a folder of parquet files (v2 camera_image), or a folder of JPEGs.

    ``iter_images`` yields ``(name, jpeg_bytes)`` with names that never repeat: parquet
    rows are named ``<segment>_<timestamp>_<camera>``, JPEGs by their path under the
    folder, suffix kept (``sub/normal.jpg``), so ``normal.jpg`` and ``normal.jpeg`` stay
    apart. Memory holds one row group (or one file) at a time.
    """

    def iter_images(self) -> Iterator[tuple[str, bytes]]:
        yield from unique_names(self._named_images())

    def _named_images(self) -> Iterator[tuple[str, bytes]]:
        fs, base = url_to_fs(self.root, **self.storage_options)
        files = [base] if fs.isfile(base) else sorted(fs.find(base))
        files = [p for p in files if p.endswith(".parquet") or p.lower().endswith(JPEG_SUFFIXES)]
        if not files:
            raise NothingToSegmentError("no camera_image parquet or JPEG files found")
        for path in files:
            if path.endswith(".parquet"):
                yield from self._parquet_rows(fs.unstrip_protocol(path))
            else:
                with fs.open(path, "rb") as file:
                    yield _name_under(path, base), file.read()

    def _parquet_rows(self, path: str) -> Iterator[tuple[str, bytes]]:
        with ComponentFile(ParquetSource(path, self.storage_options), CAMERA_IMAGE) as file:
            keys = file.keys
            groups = range(file.parquet.num_row_groups)
            # The next row group is read while this one's images are segmented.
            tables = read_row_groups(file, [KEY_SEGMENT, IMAGE_COLUMN], groups, ahead=1)
            with closing(tables):
                for group, table in tables:
                    rows = keys[keys["row_group"] == group]
                    for segment, row, jpeg in zip(
                        table[KEY_SEGMENT].to_pylist(),
                        rows.itertuples(index=False),
                        table[IMAGE_COLUMN].to_pylist(),
                        strict=True,
                    ):
                        yield f"{segment}_{row.timestamp}_{row.camera}", jpeg


def _name_under(path: str, base: str) -> str:
    """``path`` relative to the folder ``base``; a lone file given as ``base``, its name."""
    return path.rsplit("/", 1)[-1] if path == base else path.removeprefix(f"{base}/")


def unique_names(images: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    """The images with a repeated name made distinct (``name~2``) and warned about, so
    no output is written over another (the same parquet row in two files, say)."""
    seen: set[str] = set()
    for name, data in images:
        unique, copy = name, 1
        while unique in seen:
            copy += 1
            unique = f"{name}~{copy}"
        if unique != name:
            logger.warning("A second image is named %s: it is written as %s", name, unique)
        seen.add(unique)
        yield unique, data
