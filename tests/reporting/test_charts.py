"""The Altair charts: valid Vega-Lite with the expected fields and marks, robust to NaN."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.reporting.vega_specs import walk
from waymo_unet.reporting import (
    chart_html,
    chart_png_bytes,
    class_distribution_chart,
    class_iou_chart,
    hex_colour,
    save_chart,
    training_chart,
    tuning_chart,
)

PARAMS = ["learning_rate", "weight_decay", "base_channels", "bilinear"]


@pytest.fixture
def trials() -> pd.DataFrame:
    """optuna-like trials: complete, pruned (one without a value) and failed ones."""
    rng = np.random.default_rng(0)
    n = 12
    state = ["COMPLETE"] * n
    state[3], state[7], state[9] = "FAIL", "PRUNED", "PRUNED"
    value = 0.2 + rng.random(n)
    value[[3, 9]] = np.nan
    return pd.DataFrame(
        {
            "number": np.arange(n),
            "value": value,
            "state": state,
            "params_learning_rate": 10 ** rng.uniform(-4, -2, n),
            "params_weight_decay": 10 ** rng.uniform(-5, -2, n),
            "params_base_channels": rng.choice([8, 16, 32], n),
            "params_bilinear": rng.choice([True, False], n),
        }
    )


@pytest.fixture
def history() -> pd.DataFrame:
    """A training history with one missing validation value."""
    epochs = np.arange(1, 7)
    return pd.DataFrame(
        {
            "epoch": epochs,
            "train_loss": 2.0 / epochs,
            "val_loss": [2.5, 1.4, np.nan, 0.8, 0.7, 0.65],
            "mean_iou": np.linspace(0.1, 0.7, 6),
            "pixel_accuracy": np.linspace(0.4, 0.95, 6),
            "lr": np.linspace(3e-3, 1e-5, 6),
        }
    )


@pytest.fixture
def class_iou() -> pd.DataFrame:
    """Per-class IoU with one class never seen in validation (NaN)."""
    return pd.DataFrame(
        {
            "class_id": [2, 9, 20, 25, 3],
            "name": ["CAR", "PEDESTRIAN", "ROAD", "SKY", "TRUCK"],
            "iou": [0.9, 0.6, 0.95, 0.97, np.nan],
        }
    )


@pytest.fixture
def catalog() -> pd.DataFrame:
    """A label catalogue with two splits and one unknown id."""
    return pd.DataFrame(
        {
            "class_id": [0, 2, 20, 25, 37],
            "name": ["UNDEFINED", "CAR", "ROAD", "SKY", "UNKNOWN_37"],
            "unknown": [False, False, False, False, True],
            "pixels_training": [10, 300, 500, 190, 1],
            "pixels_validation": [5, 100, 200, 95, 0],
        }
    )


def _marks(spec: dict) -> set[str]:
    """Mark types used anywhere in a spec."""
    marks = {d["mark"] for d in walk(spec) if isinstance(d.get("mark"), str)}
    return marks | {d["mark"]["type"] for d in walk(spec) if isinstance(d.get("mark"), dict)}


def _fields(spec: dict) -> set[str]:
    """Field names encoded anywhere in a spec."""
    return {d["field"] for d in walk(spec) if isinstance(d.get("field"), str)}


def _rows(spec: dict) -> list[dict]:
    """All inline data rows of a spec."""
    return [row for rows in spec.get("datasets", {}).values() for row in rows]


def _check_common(spec: dict) -> None:
    """Vega-Lite schema, a title and tooltips."""
    assert "vega-lite" in spec["$schema"]
    assert spec.get("title")
    assert any("tooltip" in d for d in walk(spec) if "x" in d or "y" in d)


def test_tuning_chart_spec(trials: pd.DataFrame) -> None:
    spec = tuning_chart(trials, PARAMS).to_dict()
    _check_common(spec)
    assert {"point", "line"} <= _marks(spec)
    fields = _fields(spec)
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
        (r for r in _rows(tuning_chart(trials, PARAMS).to_dict()) if "best" in r),
        key=lambda r: r["number"],
    )
    complete = trials["value"].where(trials["state"] == "COMPLETE")
    assert [r["best"] for r in rows] == pytest.approx(list(complete.cummin().ffill()))


def test_tuning_chart_survives_all_nan_and_no_params(trials: pd.DataFrame) -> None:
    trials["value"] = np.nan
    trials["params_learning_rate"] = np.nan
    for chart in (tuning_chart(trials, PARAMS), tuning_chart(trials, [])):
        _check_common(chart.to_dict())
        assert chart_png_bytes(chart)


def test_tuning_chart_names_a_missing_parameter(trials: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="params_dropout"):
        tuning_chart(trials, ["dropout"])


def test_training_chart_spec(history: pd.DataFrame) -> None:
    spec = training_chart(history).to_dict()
    _check_common(spec)
    assert "line" in _marks(spec)
    assert {"epoch", "loss", "score", "series", "lr"} <= _fields(spec)
    series = {row.get("series") for row in _rows(spec)}
    assert {"train", "validation", "mIoU", "pixel accuracy"} <= series
    score_scales = [d["scale"] for d in walk(spec) if d.get("field") == "score" and "scale" in d]
    assert score_scales == [{"domain": [0, 1]}]


def test_training_chart_without_optional_columns(history: pd.DataFrame) -> None:
    spec = training_chart(history.drop(columns=["pixel_accuracy", "lr"])).to_dict()
    assert "lr" not in _fields(spec)
    assert {row.get("series") for row in _rows(spec)} >= {"train", "validation", "mIoU"}


def test_class_iou_chart_spec(class_iou: pd.DataFrame) -> None:
    spec = class_iou_chart(class_iou).to_dict()
    _check_common(spec)
    assert {"bar", "text", "rule"} <= _marks(spec)
    assert {"name", "iou", "mean_iou"} <= _fields(spec)
    colour = next(d["color"] for d in walk(spec) if "color" in d and "scale" in d["color"])
    domain, colours = colour["scale"]["domain"], colour["scale"]["range"]
    assert domain == ["SKY", "ROAD", "CAR", "PEDESTRIAN", "TRUCK"]  # best first, NaN last
    ids = dict(zip(class_iou["name"], class_iou["class_id"], strict=True))
    assert colours == [hex_colour(ids[name]) for name in domain]
    mean = next(r["mean_iou"] for r in _rows(spec) if "mean_iou" in r)
    assert mean == pytest.approx(np.nanmean(class_iou["iou"]))


def test_class_iou_chart_all_nan(class_iou: pd.DataFrame) -> None:
    chart = class_iou_chart(class_iou.assign(iou=np.nan))
    assert "rule" not in _marks(chart.to_dict())
    assert chart_png_bytes(chart)


def test_class_distribution_chart_spec(catalog: pd.DataFrame) -> None:
    spec = class_distribution_chart(catalog).to_dict()
    _check_common(spec)
    assert spec["facet"]["column"]["field"] == "split"
    assert {"bar", "text"} <= _marks(spec)
    rows = pd.DataFrame([r for r in _rows(spec) if "share" in r])
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


@pytest.fixture
def all_charts(trials, history, class_iou, catalog) -> dict[str, Any]:
    """One chart of each kind."""
    return {
        "tuning": tuning_chart(trials, PARAMS),
        "training": training_chart(history),
        "class_iou": class_iou_chart(class_iou),
        "class_distribution": class_distribution_chart(catalog),
    }


def test_png_bytes_decode(all_charts: dict[str, Any]) -> None:
    for name, chart in all_charts.items():
        with Image.open(io.BytesIO(chart_png_bytes(chart))) as image:
            assert image.format == "PNG", name
            assert image.width > 100, name
            assert image.height > 100, name


def test_html_is_offline_and_holds_the_spec(all_charts: dict[str, Any]) -> None:
    page = chart_html(all_charts["class_iou"])
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert "<script" in page
    assert '"mean_iou"' in page
    assert "Validation IoU per class" in page


def test_save_chart_writes_three_files(tmp_path: Path, all_charts: dict[str, Any]) -> None:
    chart = all_charts["training"]
    paths = save_chart(chart, tmp_path / "nested" / "training_chart")
    assert sorted(p.name for p in paths.values()) == [
        "training_chart.html",
        "training_chart.png",
        "training_chart.vl.json",
    ]
    assert json.loads(paths["vl.json"].read_text()) == chart.to_dict()
    assert "<script src=" not in paths["html"].read_text()
    with Image.open(paths["png"]) as image:
        assert image.width > 100
