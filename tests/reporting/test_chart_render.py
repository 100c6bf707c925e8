"""Every chart as the files a report shows: PNG, offline HTML and the spec, via the dataset."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from tests.reporting.test_training_charts import PARAMS
from waymo_unet.datasets import AltairChartDataset
from waymo_unet.reporting.chart_render import chart_html, spec_png_bytes
from waymo_unet.reporting.class_charts import class_distribution_chart, class_iou_chart
from waymo_unet.reporting.training_charts import training_chart, tuning_chart


@pytest.fixture
def all_charts(
    trials: pd.DataFrame, history: pd.DataFrame, class_iou: pd.DataFrame, catalog: pd.DataFrame
) -> dict[str, Any]:
    """One chart of each kind."""
    return {
        "tuning": tuning_chart(trials, PARAMS),
        "training": training_chart(history),
        "class_iou": class_iou_chart(class_iou),
        "class_distribution": class_distribution_chart(catalog),
    }


def test_png_bytes_decode(all_charts: dict[str, Any]) -> None:
    for name, chart in all_charts.items():
        with Image.open(io.BytesIO(spec_png_bytes(chart.to_dict()))) as image:
            assert image.format == "PNG", name
            assert image.width > 100, name
            assert image.height > 100, name


def test_html_is_offline_and_holds_the_spec(all_charts: dict[str, Any]) -> None:
    page = chart_html(all_charts["class_iou"])
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert "<script" in page
    assert '"mean_iou"' in page
    assert "Validation IoU per class" in page


def test_dataset_writes_spec_page_and_png(tmp_path: Path, all_charts: dict[str, Any]) -> None:
    chart = all_charts["training"]
    dataset = AltairChartDataset(str(tmp_path / "nested" / "training_chart"))
    dataset.save(chart)
    assert sorted(p.name for p in (tmp_path / "nested").iterdir()) == [
        "training_chart.html",
        "training_chart.png",
        "training_chart.vl.json",
    ]
    assert dataset.load() == json.loads(json.dumps(chart.to_dict()))
    assert "<script src=" not in (tmp_path / "nested" / "training_chart.html").read_text()
    with Image.open(tmp_path / "nested" / "training_chart.png") as image:
        assert image.width > 100
