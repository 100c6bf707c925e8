"""The evaluation charts: what is drawn, what is left out, how it is normalised."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.reporting.vega_specs import data_rows, mark_types, renders, walk
from waymo_unet.data.waymo import SEMANTIC_CLASSES
from waymo_unet.reporting.evaluation_charts import (
    MISSED,
    PLAIN,
    WEIGHTED,
    camera_iou_chart,
    confusion_chart,
    evaluation_class_iou_chart,
)

# (ground truth, prediction) -> (weighted, pixels); every other cell of the 29x29 is 0.
CELLS = {
    (2, 2): (1.0, 2),  # CAR
    (2, 20): (1.0, 1),
    (2, 0): (2.0, 4),  # missed: no Waymo class predicted
    (20, 20): (8.0, 10),  # ROAD
    (20, 23): (2.0, 2),
    (25, 25): (3.0, 6),  # SKY
}


def confusion_table(cells: dict[tuple[int, int], tuple[float, int]] = CELLS) -> pd.DataFrame:
    """All 841 cells of a confusion table in the evaluation pipeline's layout."""
    ids = sorted(SEMANTIC_CLASSES)
    rows = [
        {
            "ground_truth_id": truth,
            "ground_truth": SEMANTIC_CLASSES[truth],
            "predicted_id": predicted,
            "predicted": SEMANTIC_CLASSES[predicted],
            "weighted": cells.get((truth, predicted), (0.0, 0))[0],
            "pixels": cells.get((truth, predicted), (0.0, 0))[1],
        }
        for truth in ids
        for predicted in ids
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def class_iou() -> pd.DataFrame:
    """Two trained classes, one untrained class in the mean, one absent class (NaN)."""
    return pd.DataFrame(
        {
            "class_id": [2, 3, 18, 20],
            "name": ["CAR", "TRUCK", "TRAFFIC_LIGHT", "ROAD"],
            "trained": [True, True, False, True],
            "weighted_iou": [0.4, np.nan, 0.0, 0.8],
            "iou": [0.42, np.nan, 0.0, 0.78],
        }
    )


@pytest.fixture
def camera_iou() -> pd.DataFrame:
    """Three cameras, not in id order."""
    return pd.DataFrame(
        {
            "camera": [3, 1, 2],
            "camera_name": ["FRONT_RIGHT", "FRONT", "FRONT_LEFT"],
            "images": [2, 2, 2],
            "pixels": [100, 120, 100],
            "weighted_miou": [0.03, 0.05, 0.04],
            "miou": [0.031, 0.048, 0.041],
            "weighted_pixel_accuracy": [0.3, 0.4, 0.35],
        }
    )


def _sort(spec: dict, channel: str) -> list[str]:
    """The explicit category order of a position channel (the first one found)."""
    return next(d[channel]["sort"] for d in walk(spec) if "sort" in d.get(channel, {}))


def test_confusion_rows_are_shares_of_the_weighted_ground_truth() -> None:
    chart = confusion_chart(confusion_table())
    spec = chart.to_dict()
    cells = pd.DataFrame([r for r in data_rows(spec) if "share" in r])
    sums = cells.groupby("ground_truth")["share"].sum()
    assert sums.to_dict() == pytest.approx({"CAR": 1.0, "ROAD": 1.0, "SKY": 1.0})
    car = cells[cells["ground_truth"] == "CAR"].set_index("predicted")
    assert car.loc["ROAD", "share"] == pytest.approx(0.25)  # weighted 1 of 4, not pixels 1 of 7
    assert car.loc[MISSED, "share"] == pytest.approx(0.5)
    assert car.loc["ROAD", "pixels"] == 1
    renders(chart)


def test_confusion_leaves_out_empty_rows_and_unpredicted_columns() -> None:
    cells = dict(CELLS)
    cells[(0, 20)] = (5.0, 5)  # UNDEFINED ground truth never counts, even if present
    spec = confusion_chart(confusion_table(cells)).to_dict()
    assert _sort(spec, "y") == ["CAR", "ROAD", "SKY"]  # id order
    assert _sort(spec, "x") == [MISSED, "CAR", "ROAD", "SIDEWALK", "SKY"]
    truths = {r["ground_truth"] for r in data_rows(spec) if "share" in r}
    assert truths == {"CAR", "ROAD", "SKY"}
    tooltips = {t["field"] for d in walk(spec) for t in d.get("tooltip", []) if "field" in t}
    assert {"share", "weighted", "pixels"} <= tooltips


def test_confusion_without_misses_has_no_missed_column() -> None:
    cells = {key: value for key, value in CELLS.items() if key[1] != 0}
    assert MISSED not in _sort(confusion_chart(confusion_table(cells)).to_dict(), "x")


def test_confusion_names_missing_columns() -> None:
    with pytest.raises(ValueError, match="weighted"):
        confusion_chart(confusion_table().drop(columns="weighted"))


def test_class_iou_draws_averaged_classes_and_marks_untrained(class_iou: pd.DataFrame) -> None:
    chart = evaluation_class_iou_chart(class_iou)
    spec = chart.to_dict()
    assert _sort(spec, "y") == ["ROAD", "CAR", "TRAFFIC_LIGHT (not trained)"]  # best first
    bars = pd.DataFrame([r for r in data_rows(spec) if "measure" in r])
    assert "TRUCK" not in set(bars["name"])
    assert set(bars["measure"]) == {WEIGHTED, PLAIN}
    road = bars[bars["name"] == "ROAD"].set_index("measure")["value"]
    assert road.to_dict() == pytest.approx({WEIGHTED: 0.8, PLAIN: 0.78})
    assert bars.loc[~bars["trained"], "name"].unique().tolist() == ["TRAFFIC_LIGHT"]
    assert "datum.trained" in json.dumps(spec)  # faded and dashed by that flag
    rule = next(r["weighted_miou"] for r in data_rows(spec) if "weighted_miou" in r)
    assert rule == pytest.approx((0.8 + 0.4 + 0.0) / 3)
    assert "rule" in mark_types(spec)
    renders(chart)


def test_class_iou_reads_trained_flags_written_as_text(class_iou: pd.DataFrame) -> None:
    from_csv = class_iou.assign(trained=["True", "True", "False", "True"])
    assert _sort(evaluation_class_iou_chart(from_csv).to_dict(), "y") == [
        "ROAD",
        "CAR",
        "TRAFFIC_LIGHT (not trained)",
    ]


def test_class_iou_with_no_averaged_class_has_no_rule(class_iou: pd.DataFrame) -> None:
    chart = evaluation_class_iou_chart(class_iou.assign(weighted_iou=np.nan, iou=np.nan))
    assert "rule" not in mark_types(chart.to_dict())
    renders(chart)


def test_camera_chart_in_camera_id_order(camera_iou: pd.DataFrame) -> None:
    chart = camera_iou_chart(camera_iou)
    spec = chart.to_dict()
    assert _sort(spec, "y") == ["FRONT", "FRONT_LEFT", "FRONT_RIGHT"]
    bars = pd.DataFrame([r for r in data_rows(spec) if "measure" in r])
    front = bars[bars["camera_name"] == "FRONT"].set_index("measure")["value"]
    assert front.to_dict() == pytest.approx({WEIGHTED: 0.05, PLAIN: 0.048})
    domain = next(
        d["scale"]["domain"] for d in walk(spec) if d.get("field") == "value" and "scale" in d
    )
    assert domain[1] >= 0.05  # small scores get an axis they are readable on
    assert domain[1] < 1
    renders(chart)
