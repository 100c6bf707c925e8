import uuid

import fsspec
import numpy as np
import pytest

from tests.tiny_shards import write_shard
from waymo_unet.data.location import Location
from waymo_unet.data.shards import ShardStore


def arrays(count: int, value: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((count, 4, 6, 3), value, np.uint8), np.full((count, 4, 6), value, np.uint8)


def test_arrays_without_a_commit_are_not_a_finished_segment(tmp_path):
    store = ShardStore(str(tmp_path))
    store.write_arrays("training", "seg", *arrays(2, 7))
    assert store.read_result("training", "seg") is None
    store.commit("training", "seg", {"pairs_written": 2})
    assert store.read_result("training", "seg") == {"pairs_written": 2}
    images, labels = store.open_segment("training", "seg")
    assert images.shape == (2, 4, 6, 3)
    assert int(labels[1, 3, 5]) == 7


def test_rewriting_arrays_uncommits_the_old_result_first(tmp_path):
    store = ShardStore(str(tmp_path))
    write_shard(store, "training", "seg", *arrays(1, 1), {"fingerprint": "old"})
    store.write_arrays("training", "seg", *arrays(3, 2))  # a new run, killed before commit
    assert store.read_result("training", "seg") is None
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_relative_local_root_is_fixed_where_the_store_is_made(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = ShardStore("shards")
    monkeypatch.chdir("/")  # a worker running elsewhere still writes into tmp_path/shards
    store.write_arrays(
        "training", "s", np.zeros((1, 2, 3, 3), np.uint8), np.zeros((1, 2, 3), np.uint8)
    )
    assert (tmp_path / "shards" / "training" / "s").is_dir()
    assert ShardStore("gs://bucket/shards").root == "gs://bucket/shards"


@pytest.mark.parametrize("prefix", ["", "file://", "local://"])
def test_a_local_root_becomes_an_absolute_plain_path(tmp_path, monkeypatch, prefix):
    monkeypatch.chdir(tmp_path)
    assert Location(f"{prefix}shards/").root == f"{tmp_path.as_posix()}/shards"
    assert Location(f"{prefix}{tmp_path}/shards").root == f"{tmp_path.as_posix()}/shards"


@pytest.mark.parametrize("url", ["gs://bucket/shards", "memory://shards", "memory:///shards"])
def test_a_remote_root_is_kept_as_given(url):
    location = Location(url)
    assert location.root == url
    assert location.join("training", "s") == f"{url}/training/s"


def test_a_local_store_memory_maps_its_arrays(tmp_path):
    store = ShardStore(f"file://{tmp_path}")
    write_shard(store, "training", "seg", *arrays(2, 5), {})
    images, labels = store.open_segment("training", "seg")
    assert isinstance(images, np.memmap)
    assert isinstance(labels, np.memmap)


def test_a_store_off_the_local_disk_reads_its_arrays_through_fsspec():
    root = f"memory://shards-{uuid.uuid4().hex}"
    store = ShardStore(root)
    try:
        write_shard(store, "training", "seg", *arrays(3, 9), {"pairs_written": 3})
        assert store.read_result("training", "seg") == {"pairs_written": 3}
        images, labels = store.open_segment("training", "seg")
        assert images.shape == (3, 4, 6, 3)
        assert not isinstance(images, np.memmap)
        assert int(labels[2, 3, 5]) == 9
    finally:
        fsspec.filesystem("memory").rm(root, recursive=True)
