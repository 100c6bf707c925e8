import threading
import time
from contextlib import closing

import pytest

from tests import waymo_files as wf
from waymo_unet.data.parquet import ComponentFile, ParquetSource, read_row_groups
from waymo_unet.data.waymo import CAMERA_IMAGE, IMAGE_COLUMN, KEY_TIMESTAMP

COLUMNS = [KEY_TIMESTAMP, IMAGE_COLUMN]


class RecordingFile(ComponentFile):
    """A component file that records which row groups were read, and on which thread."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads: list[tuple[int, str]] = []
        self.fail_on: int | None = None
        self.read_seconds = 0.0

    def read_columns(self, row_group, columns):
        self.reads.append((row_group, threading.current_thread().name))
        time.sleep(self.read_seconds)
        if row_group == self.fail_on:
            raise OSError(f"row group {row_group} unreadable")
        return super().read_columns(row_group, columns)


@pytest.fixture
def image_file(tmp_path):
    rows = [wf.image_row(frame, 1, height=8, width=8) for frame in range(10)]
    path, _ = wf.write_segment(tmp_path, rows, None, row_group_size=2)  # 5 row groups
    with RecordingFile(ParquetSource(str(path)), CAMERA_IMAGE) as file:
        yield file


@pytest.mark.parametrize("ahead", [0, 1, 2, 9])
def test_row_groups_come_in_the_order_asked_equal_to_direct_reads(image_file, ahead):
    order = [0, 2, 1, 4, 3, 0]
    got = list(read_row_groups(image_file, COLUMNS, order, ahead))
    assert [group for group, _ in got] == order
    for group, table in got:
        assert table.equals(ComponentFile.read_columns(image_file, group, COLUMNS))
    assert sorted(group for group, _ in image_file.reads) == sorted(order)  # each read once
    on_threads = {name.startswith("read-ahead") for _, name in image_file.reads}
    assert on_threads == {ahead > 0}


@pytest.mark.parametrize("ahead", [1, 2])
def test_no_more_than_ahead_row_groups_are_read_beyond_the_one_in_use(image_file, ahead):
    for index, _ in enumerate(read_row_groups(image_file, COLUMNS, range(5), ahead)):
        time.sleep(0.05)  # a slow consumer: the thread reads all it is allowed to
        assert len(image_file.reads) <= index + 1 + ahead


def test_a_failed_read_on_the_thread_reaches_the_caller(image_file):
    image_file.fail_on = 2
    groups = read_row_groups(image_file, COLUMNS, range(5), ahead=2)
    assert [next(groups)[0] for _ in range(2)] == [0, 1]
    with pytest.raises(OSError, match="row group 2 unreadable"):
        next(groups)


def test_closing_early_cancels_the_reads_not_started(image_file):
    image_file.read_seconds = 0.5  # group 1 is still being read when the caller stops
    with closing(read_row_groups(image_file, COLUMNS, range(5), ahead=2)) as groups:
        next(groups)  # groups 1 and 2 were submitted with group 0
    assert {group for group, _ in image_file.reads} <= {0, 1}
    assert not [t for t in threading.enumerate() if t.name.startswith("read-ahead")]
