"""Camera images to segment: v2 camera_image parquet rows, or a folder of JPEG files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

from waymo_unet.data.location import Location
from waymo_unet.data.parquet import ComponentFile, ParquetSource, read_row_groups
from waymo_unet.data.waymo import CAMERA_IMAGE, IMAGE_COLUMN, KEY_SEGMENT

JPEG_SUFFIXES = (".jpg", ".jpeg")


@dataclass(frozen=True)
class CameraImageSource(Location):
    """A parquet file, a folder of parquet files (v2 camera_image), or a folder of JPEGs.

    ``iter_images`` yields ``(name, jpeg_bytes)``; parquet rows are named
    ``<segment>_<timestamp>_<camera>``, files by their stem. Memory holds one row group
    (or one file) at a time.
    """

    def iter_images(self) -> Iterator[tuple[str, bytes]]:
        files = self._files()
        if not files:
            raise FileNotFoundError(
                f"no camera_image parquet or JPEG files at {self.root} to segment"
            )
        for path in files:
            if path.endswith(".parquet"):
                yield from self._parquet_rows(path)
            else:
                with self.filesystem.open(path, "rb") as file:
                    yield path.rsplit("/", 1)[-1].rsplit(".", 1)[0], file.read()

    def _files(self) -> list[str]:
        fs = self.filesystem
        if fs.isfile(self.root):
            return [self.root]
        found = [
            fs.unstrip_protocol(p)
            for p in sorted(fs.find(self.root))
            if p.endswith(".parquet") or p.lower().endswith(JPEG_SUFFIXES)
        ]
        return found

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
