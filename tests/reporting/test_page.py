"""The self-contained HTML report page."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from waymo_unet.reporting import ReportSection, encode_png, report_page


@pytest.fixture
def sections() -> list[ReportSection]:
    """A chart-like image, a metrics dict and a table."""
    png = encode_png(np.full((80, 240, 3), 200, dtype=np.uint8))
    table = pd.DataFrame({"class_id": [2, 20], "name": ["CAR", "ROAD"], "iou": [0.91, np.nan]})
    return [
        ReportSection(
            "Training <history>",
            "Loss & mIoU per epoch.",
            png=png,
            link="training.html",
            image_scale=2,
        ),
        ReportSection("Final metrics", metrics={"mean_iou": 0.774364, "epochs": 12}),
        ReportSection("Per-class IoU", table=table, png=png),
    ]


def test_page_holds_every_section(sections: list[ReportSection]) -> None:
    page = report_page("Waymo U-Net report", sections, intro="A run on the sample.")
    assert page.startswith("<!DOCTYPE html>")
    assert "Waymo U-Net report" in page
    assert "Training &lt;history&gt;" in page
    assert "Final metrics" in page
    assert "Per-class IoU" in page
    assert "0.7744" in page
    assert "<td>ROAD</td>" in page
    assert 'href="training.html"' in page


def test_page_images_decode(sections: list[ReportSection]) -> None:
    page = report_page("Report", sections)
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            assert image.size == (240, 80)
    assert 'width="120"' in page  # image_scale 2 shows the image at half its pixels


def test_page_is_offline(sections: list[ReportSection]) -> None:
    page = report_page("Report", sections)
    assert "http" not in page
    assert not re.search(r'src="(?!data:)', page)


@pytest.mark.parametrize("link", ["https://example.com/x.html", "//cdn/x.html", "/etc/x"])
def test_absolute_links_are_refused(link: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        report_page("Report", [ReportSection("Chart", link=link)])
