"""What a run records: metric series, headline numbers and tags, from the pipelines' outputs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from waymo_unet.tracking import records

HISTORY = pd.DataFrame(
    {
        "epoch": [1, 2, 3],
        "train_loss": [2.0, 1.5, 1.2],
        "val_loss": [2.1, 1.7, math.nan],
        "mean_iou": [0.1, 0.2, 0.3],
        "lr": [1e-3, 5e-4, 1e-4],
        "images_per_s": [10.0, 11.0, 12.0],
    }
)
SUMMARY = {
    "epochs": 3,
    "mean_iou": 0.3,
    "majority_class_mean_iou": 0.05,
    "train_seconds": 12.5,
    "image_size": [48, 72],
    "fingerprint": "abc123",
    "resumed_after_epoch": 1,
}
INDEX = pd.DataFrame(
    {
        "split": ["training"] * 3 + ["validation"] * 2,
        "segment": ["s1", "s1", "s2", "v1", "v1"],
        "item": [0, 1, 0, 0, 1],
    }
)
CATALOG = {"num_classes": 4, "classes": [{"index": 0, "id": 1, "name": "Car"}]}


def test_each_history_column_is_a_series_with_one_point_per_epoch():
    series = records.epoch_series(HISTORY)

    assert series["train_loss"] == [
        {"step": 1, "value": 2.0},
        {"step": 2, "value": 1.5},
        {"step": 3, "value": 1.2},
    ]
    assert [p["value"] for p in series["val_mean_iou"]] == [0.1, 0.2, 0.3]
    assert [p["step"] for p in series["learning_rate"]] == [1, 2, 3]
    assert [p["step"] for p in series["val_loss"]] == [1, 2]  # NaN is not a measurement
    assert not {"mean_iou", "epoch"} & set(series)


def test_the_record_holds_every_epoch_and_the_totals_at_the_last_epoch():
    metrics = records.training_metrics(HISTORY, SUMMARY)

    assert [point["step"] for point in metrics["train_loss"]] == [1, 2, 3]
    assert metrics["majority_class_mean_iou"] == [{"step": 3, "value": 0.05}]
    assert metrics["train_seconds"] == [{"step": 3, "value": 12.5}]
    assert not {"fingerprint", "image_size"} & set(metrics)


def test_single_points_flatten_numbers_and_leave_out_the_rest():
    document = {"miou": 0.5, "images": 3, "split": "validation", "ok": True, "nested": {"a": 1}}
    document["classes"] = ["Car"]
    document["missing"] = None

    assert records.single_points(document, step=2) == {
        "miou": [{"step": 2, "value": 0.5}],
        "images": [{"step": 2, "value": 3.0}],
        "nested.a": [{"step": 2, "value": 1.0}],
    }


def test_training_tags_name_the_data_the_run_and_the_tuning_trial():
    tuned = {"trial": 3, "study": "waymo_unet-1234", "hyperparameters": {"learning_rate": 0.01}}

    tags = records.training_tags(INDEX, CATALOG, SUMMARY, ("training", "validation"), tuned)

    assert tags["data.image_size"] == "48x72"
    assert tags["data.training_segments"] == "2"
    assert tags["data.training_images"] == "3"
    assert tags["data.validation_segments"] == "1"
    assert tags["data.classes"] == "4"
    assert tags["training.fingerprint"] == "abc123"
    assert tags["training.resumed_after_epoch"] == "1"
    assert tags["training.reused_finished_run"] == "False"
    assert tags["tuned.trial"] == "3"
    assert tags["tuned.learning_rate"] == "0.01"
    assert all(isinstance(value, str) for value in tags.values())


def test_the_data_digests_change_with_the_shards_and_the_class_mapping():
    splits = ("training", "validation")
    tags = records.training_tags(INDEX, CATALOG, SUMMARY, splits)
    fewer = records.training_tags(INDEX.iloc[:-1], CATALOG, SUMMARY, splits)
    other_classes = records.training_tags(INDEX, {**CATALOG, "num_classes": 5}, SUMMARY, splits)

    assert tags == records.training_tags(INDEX.copy(), dict(CATALOG), SUMMARY, splits)
    assert fewer["data.shard_index_digest"] != tags["data.shard_index_digest"]
    assert other_classes["data.label_catalog_digest"] != tags["data.label_catalog_digest"]
    assert not any(name.startswith("tuned.") for name in tags)


@pytest.mark.parametrize(("resumed", "reused"), [(0, "False"), (3, "True")])
def test_a_finished_run_that_is_reused_says_so(resumed: int, reused: str):
    summary = {**SUMMARY, "resumed_after_epoch": resumed}

    tags = records.training_tags(INDEX, CATALOG, summary, ("training", "validation"))

    assert tags["training.reused_finished_run"] == reused


def test_evaluation_metrics_hold_both_sizes_and_each_class_iou():
    class_iou = pd.DataFrame(
        {"name": ["Car", "Traffic light", "Bird"], "weighted_iou": [0.8, 0.4, math.nan]}
    )

    metrics = records.evaluation_metrics(
        {"waymo_weighted_miou": 0.6, "split": "validation"}, {"miou": 0.5}, class_iou
    )

    assert metrics["waymo_weighted_miou"] == [{"step": 0, "value": 0.6}]
    assert metrics["at_training_size.miou"] == [{"step": 0, "value": 0.5}]
    assert metrics["class_iou.traffic_light"] == [{"step": 0, "value": 0.4}]
    assert "class_iou.bird" not in metrics


def test_parameters_are_flattened_as_kedro_mlflow_logs_them():
    params = {"training": {"train": {"epochs": 3, "augment": {"flip": True}}, "nproc": 1}}

    assert records.flat_parameters(params) == {
        "training.train.epochs": 3,
        "training.train.augment.flip": True,
        "training.nproc": 1,
    }


def test_one_epoch_record_maps_to_metric_names():
    record = {"epoch": 2, "mean_iou": 0.4, "lr": 0.001, "seconds": 3.0, "peak_memory_gib": math.nan}

    assert records.epoch_metrics(record) == {
        "val_mean_iou": 0.4,
        "learning_rate": 0.001,
        "epoch_seconds": 3.0,
    }
