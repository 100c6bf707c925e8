import uuid

import altair as alt
import fsspec
import gcsfs
import pandas as pd
import pytest

from tests.test_gcs import emulated_gcs  # noqa: F401  (a fixture: the GCS emulator)
from waymo_unet.datasets import AltairChartDataset


def bar_chart() -> alt.Chart:
    return alt.Chart(pd.DataFrame({"x": ["a", "b"], "y": [1, 2]})).mark_bar().encode(x="x", y="y")


def test_saving_makes_the_folders_it_needs_on_the_local_disk(tmp_path):
    dataset = AltairChartDataset(str(tmp_path / "new" / "folder" / "chart"))
    dataset.save(bar_chart())
    saved = sorted(path.name for path in (tmp_path / "new" / "folder").iterdir())
    assert saved == ["chart.html", "chart.png", "chart.vl.json"]
    assert dataset.load()["mark"]["type"] == "bar"


@pytest.mark.parametrize("scheme", ["file://", "memory://"])
def test_a_chart_saves_and_loads_through_a_url(tmp_path, scheme):
    root = f"{tmp_path}" if scheme == "file://" else f"charts-{uuid.uuid4().hex}"
    dataset = AltairChartDataset(f"{scheme}{root}/nested/chart")
    try:
        dataset.save(bar_chart())
        assert dataset.exists()
        assert dataset.load()["mark"]["type"] == "bar"
        fs = fsspec.filesystem(scheme.removesuffix("://"))
        assert fs.exists(f"{root}/nested/chart.png")
    finally:
        if scheme == "memory://":
            fsspec.filesystem("memory").rm(f"/{root}", recursive=True)


@pytest.mark.usefixtures("emulated_gcs")
def test_a_chart_saves_into_a_bucket_folder():
    bucket = gcsfs.GCSFileSystem(token="anon")  # the emulator's, as the fixture made it
    bucket.mkdir("charts")
    dataset = AltairChartDataset("gs://charts/nested/chart", credentials={"token": "anon"})
    dataset.save(bar_chart())
    assert dataset.load()["mark"]["type"] == "bar"
    bucket.invalidate_cache()
    assert sorted(bucket.ls("charts/nested")) == [
        "charts/nested/chart.html",
        "charts/nested/chart.png",
        "charts/nested/chart.vl.json",
    ]
