"""The evaluation summary: both evaluations' headline numbers side by side, as page text."""

from __future__ import annotations

from typing import Any

import pytest

from waymo_unet.reporting.evaluation_summary import evaluation_summary


def metrics(miou: float | None, untrained: list[str]) -> dict[str, Any]:
    """An evaluation_metrics dict with the keys the summary reads."""
    return {
        "split": "validation",
        "waymo_weighted_miou": miou,
        "miou": miou,
        "weighted_pixel_accuracy": 0.5,
        "pixel_accuracy": 0.25,
        "images": 1200,
        "segments": 2,
        "quarantined_rows": 0,
        "images_without_coverage": 3,
        "averaged_classes": ["CAR", "ROAD", "TRAFFIC_LIGHT"],
        "untrained_classes": untrained,
    }


def test_summary_sets_both_evaluations_side_by_side() -> None:
    table = evaluation_summary(
        metrics(0.123456, ["TRAFFIC_LIGHT", "BIRD"]), metrics(None, [])
    ).set_index("metric")
    labels, training = table["at the labels' size"], table["at the training size"]
    assert labels["weighted mIoU (Waymo)"] == "0.1235"
    assert training["weighted mIoU (Waymo)"] == "n/a"  # NaN arrives as null
    assert labels["images"] == "1,200"
    assert labels["untrained classes"] == "TRAFFIC_LIGHT, BIRD"
    assert training["untrained classes"] == "none"
    assert labels["classes averaged"] == "3"


def test_summary_names_a_missing_metric() -> None:
    incomplete = metrics(0.5, [])
    del incomplete["quarantined_rows"]
    with pytest.raises(ValueError, match=r"at_training_size.*quarantined_rows"):
        evaluation_summary(metrics(0.5, []), incomplete)
