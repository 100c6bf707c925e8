"""Slices of the ingestion and label_catalog pipelines on an in-memory catalog."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.runner import SequentialRunner

from waymo_unet.data.shards import ShardStore
from waymo_unet.data.waymo import CLASS_ID
from waymo_unet.datasets import ShardStoreDataset, WaymoComponentDataset
from waymo_unet.pipelines import ingestion, label_catalog

INGESTION_PARAMS = {"height": 24, "width": 36, "splits": ["training", "validation"], "workers": 1}
LABEL_CATALOG_PARAMS = {"fit_split": "training", "weighting": "enet"}


def make_catalog(raw_root, shard_root) -> DataCatalog:
    return DataCatalog(
        {
            "raw_camera_images": WaymoComponentDataset(str(raw_root), "camera_image"),
            "raw_camera_segmentation": WaymoComponentDataset(str(raw_root), "camera_segmentation"),
            "primary_shard_store": ShardStoreDataset(str(shard_root)),
            "params:ingestion": MemoryDataset(INGESTION_PARAMS),
            "params:label_catalog": MemoryDataset(LABEL_CATALOG_PARAMS),
        }
    )


def run(raw_root, shard_root) -> dict:
    """Run ingestion, then label_catalog on its histograms; every output by name."""
    catalog = make_catalog(raw_root, shard_root)
    outputs = SequentialRunner().run(ingestion.create_pipeline(), catalog)
    results = {name: dataset.load() for name, dataset in outputs.items()}
    catalog["intermediate_class_histograms"] = results["intermediate_class_histograms"]
    outputs = SequentialRunner().run(label_catalog.create_pipeline(), catalog)
    return results | {name: dataset.load() for name, dataset in outputs.items()}


@pytest.fixture(scope="module")
def shard_root(tmp_path_factory):
    return tmp_path_factory.mktemp("shards")


@pytest.fixture(scope="module")
def outputs(synthetic_sample, shard_root):
    return run(synthetic_sample, shard_root)


def test_every_segment_is_reported(outputs, synthetic_sample):
    report = outputs["reporting_ingestion_report"]
    image_files = sorted(synthetic_sample.glob("*/camera_image/*.parquet"))
    assert len(report) == len(image_files)
    assert report["status"].value_counts().to_dict() == {"ingested": 3, "no_label_file": 1}
    assert set(report["redo_reason"]) == {"new"}
    unlabelled = report[report["status"] == "no_label_file"].iloc[0]
    assert unlabelled["pairs_written"] == 0
    assert unlabelled["no_pairs_reason"] == "no camera_segmentation file"
    assert unlabelled["unlabelled_frames"] == unlabelled["frames"]
    assert outputs["reporting_ingestion_quarantine"].empty


def test_shard_index_matches_the_shards(outputs, shard_root):
    index, report = outputs["primary_shard_index"], outputs["reporting_ingestion_report"]
    assert len(index) == report["pairs_written"].sum() > 0
    assert set(index["camera"]) == {1, 2, 3, 4, 5}
    assert set(index["split"]) == {"training", "validation"}
    store = ShardStore(str(shard_root))
    for (split, segment), items in index.groupby(["split", "segment"]):
        images, labels = store.open_segment(split, segment)
        assert images.shape == (len(items), 24, 36, 3)
        assert labels.shape == (len(items), 24, 36)
        assert list(items["item"]) == list(range(len(items)))
        assert set(items["fingerprint"]) == {store.read_result(split, segment)["fingerprint"]}


def test_label_catalog_lists_the_drawn_classes(outputs):
    table, mapping = (
        outputs["model_input_label_catalog_table"],
        outputs["model_input_label_catalog"],
    )
    trained = table[table["train_index"].notna()]
    for name in ("SKY", "ROAD", "BUILDING", "VEGETATION", "CAR", "LANE_MARKER"):
        assert CLASS_ID[name] in set(trained["class_id"]), name
    assert not table["unknown"].any()
    assert mapping["num_classes"] == len(trained)
    assert CLASS_ID["UNDEFINED"] not in {c["id"] for c in mapping["classes"]}
    # Histograms were counted at full resolution, so they exceed the shard pixels.
    histograms = outputs["intermediate_class_histograms"]
    shard_pixels = len(outputs["primary_shard_index"]) * 24 * 36
    assert histograms["pixels"].sum() > shard_pixels


def test_a_second_run_reuses_every_segment(synthetic_sample, tmp_path):
    first = run(synthetic_sample, tmp_path)
    second = run(synthetic_sample, tmp_path)
    assert not first["reporting_ingestion_report"]["reused"].any()
    assert second["reporting_ingestion_report"]["reused"].all()
    assert set(second["reporting_ingestion_report"]["redo_reason"]) == {""}
    pd.testing.assert_frame_equal(first["primary_shard_index"], second["primary_shard_index"])
    pd.testing.assert_frame_equal(
        first["intermediate_class_histograms"], second["intermediate_class_histograms"]
    )


def test_an_empty_input_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=f"no camera_image parquet files under {tmp_path}"):
        WaymoComponentDataset(str(tmp_path), "camera_image").load()
