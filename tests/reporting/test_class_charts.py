"""The class charts: IoU per class and pixel share per split, in the fixed class colours."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.reporting.vega_specs import (
    check_common,
    data_rows,
    encoded_fields,
    mark_types,
    renders,
    walk,
)
from waymo_unet.data.palette import hex_colour
from waymo_unet.reporting.class_charts import class_distribution_chart, class_iou_chart


def test_class_iou_chart_spec(class_iou: pd.DataFrame) -> None:
    spec = class_iou_chart(class_iou).to_dict()
    check_common(spec)
    assert {"bar", "text", "rule"} <= mark_types(spec)
    assert {"name", "iou", "mean_iou"} <= encoded_fields(spec)
    colour = next(d["color"] for d in walk(spec) if "color" in d and "scale" in d["color"])
    domain, colours = colour["scale"]["domain"], colour["scale"]["range"]
    assert domain == ["SKY", "ROAD", "CAR", "PEDESTRIAN", "TRUCK"]  # best first, NaN last
    ids = dict(zip(class_iou["name"], class_iou["class_id"], strict=True))
    assert colours == [hex_colour(ids[name]) for name in domain]
    mean = next(r["mean_iou"] for r in data_rows(spec) if "mean_iou" in r)
    assert mean == pytest.approx(np.nanmean(class_iou["iou"]))


def test_class_iou_chart_all_nan(class_iou: pd.DataFrame) -> None:
    chart = class_iou_chart(class_iou.assign(iou=np.nan))
    assert "rule" not in mark_types(chart.to_dict())
    renders(chart)


def test_class_distribution_chart_spec(catalog: pd.DataFrame) -> None:
    spec = class_distribution_chart(catalog).to_dict()
    check_common(spec)
    assert spec["facet"]["column"]["field"] == "split"
    assert {"bar", "text"} <= mark_types(spec)
    rows = pd.DataFrame([r for r in data_rows(spec) if "share" in r])
    assert rows.groupby("split")["share"].sum().to_dict() == pytest.approx(
        {"training": 1.0, "validation": 1.0}
    )
    assert rows.loc[rows["unknown"], "name"].unique().tolist() == ["UNKNOWN_37"]
    colour = next(d["color"] for d in walk(spec) if "color" in d and "scale" in d["color"])
    assert dict(zip(colour["scale"]["domain"], colour["scale"]["range"], strict=True)) == {
        "ROAD": hex_colour(20),
        "SKY": hex_colour(25),
        "CAR": hex_colour(2),
        "UNDEFINED": hex_colour(0),
        "UNKNOWN_37": hex_colour(37),
    }
    assert "datum.unknown" in json.dumps(spec)


def test_class_distribution_needs_pixel_columns(catalog: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="pixels_"):
        class_distribution_chart(catalog[["class_id", "name", "unknown"]])
