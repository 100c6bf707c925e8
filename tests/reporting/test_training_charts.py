"""The tuning and training charts: valid Vega-Lite with the expected fields, robust to NaN."""

from __future__ import annotations

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
from waymo_unet.reporting.training_charts import training_chart, tuning_chart

PARAMS = ["learning_rate", "weight_decay", "base_channels", "bilinear"]


def test_tuning_chart_spec(trials: pd.DataFrame) -> None:
    spec = tuning_chart(trials, PARAMS).to_dict()
    check_common(spec)
    assert {"point", "line"} <= mark_types(spec)
    fields = encoded_fields(spec)
    assert {"number", "value", "state", "best"} <= fields
    assert {f"param_{name}" for name in PARAMS} <= fields
    log_fields = {
        d["field"] for d in walk(spec) if d.get("scale", {}).get("type") == "log" and "field" in d
    }
    assert log_fields == {"param_learning_rate", "param_weight_decay"}
    subtitle = " ".join(spec["title"]["subtitle"])
    assert "FAIL 1" in subtitle
    assert "PRUNED 1" in subtitle


def test_tuning_chart_best_so_far_ignores_pruned_and_nan(trials: pd.DataFrame) -> None:
    trials.loc[7, "value"] = 0.01  # a pruned trial's intermediate loss is not a result
    rows = sorted(
        (r for r in data_rows(tuning_chart(trials, PARAMS).to_dict()) if "best" in r),
        key=lambda r: r["number"],
    )
    complete = trials["value"].where(trials["state"] == "COMPLETE")
    assert [r["best"] for r in rows] == pytest.approx(list(complete.cummin().ffill()))


def test_tuning_chart_survives_all_nan_and_no_params(trials: pd.DataFrame) -> None:
    trials["value"] = np.nan
    trials["params_learning_rate"] = np.nan
    for chart in (tuning_chart(trials, PARAMS), tuning_chart(trials, [])):
        check_common(chart.to_dict())
        renders(chart)


def test_tuning_chart_names_a_missing_parameter(trials: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="params_dropout"):
        tuning_chart(trials, ["dropout"])


def test_training_chart_spec(history: pd.DataFrame) -> None:
    spec = training_chart(history).to_dict()
    check_common(spec)
    assert "line" in mark_types(spec)
    assert {"epoch", "loss", "score", "series", "lr"} <= encoded_fields(spec)
    series = {row.get("series") for row in data_rows(spec)}
    assert {"train", "validation", "mIoU", "pixel accuracy"} <= series
    score_scales = [d["scale"] for d in walk(spec) if d.get("field") == "score" and "scale" in d]
    assert score_scales == [{"domain": [0, 1]}]


def test_training_chart_without_optional_columns(history: pd.DataFrame) -> None:
    spec = training_chart(history.drop(columns=["pixel_accuracy", "lr"])).to_dict()
    assert "lr" not in encoded_fields(spec)
    assert {row.get("series") for row in data_rows(spec)} >= {"train", "validation", "mIoU"}
