import numpy as np

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
    store.write_segment("training", "seg", *arrays(1, 1), {"fingerprint": "old"})
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
