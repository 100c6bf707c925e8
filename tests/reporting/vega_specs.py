"""Reading Vega-Lite specs in tests."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from PIL import Image

from waymo_unet.reporting.chart_render import spec_png_bytes


def walk(node: Any) -> Iterator[dict]:
    """Every dict inside a Vega-Lite spec."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def mark_types(spec: dict) -> set[str]:
    """Mark types used anywhere in a spec."""
    found = {d["mark"] for d in walk(spec) if isinstance(d.get("mark"), str)}
    return found | {d["mark"]["type"] for d in walk(spec) if isinstance(d.get("mark"), dict)}


def encoded_fields(spec: dict) -> set[str]:
    """Field names encoded anywhere in a spec."""
    return {d["field"] for d in walk(spec) if isinstance(d.get("field"), str)}


def data_rows(spec: dict) -> list[dict]:
    """All inline data rows of a spec."""
    return [row for rows in spec.get("datasets", {}).values() for row in rows]


def check_common(spec: dict) -> None:
    """Vega-Lite schema, a title and tooltips."""
    assert "vega-lite" in spec["$schema"]
    assert spec.get("title")
    assert any("tooltip" in d for d in walk(spec) if "x" in d or "y" in d)


def renders(chart: Any, scale_factor: float = 1.0) -> None:
    """The chart is valid enough for vl-convert to draw it, as the chart dataset does."""
    with Image.open(io.BytesIO(spec_png_bytes(chart.to_dict(), scale_factor))) as image:
        assert image.format == "PNG"
        assert image.width > 100
        assert image.height > 100
