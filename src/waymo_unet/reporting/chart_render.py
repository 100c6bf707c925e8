"""A chart as the files a report shows: an offline HTML page and a PNG (no browser).

``datasets/altair_chart.py`` writes both beside the Vega-Lite spec; the notebook renders a
saved spec again with ``spec_png_bytes``.
"""

from __future__ import annotations

import io

import vl_convert

from waymo_unet.reporting.chart_style import AnyChart


def chart_html(chart: AnyChart) -> str:
    """A standalone interactive HTML page with Vega inlined, so it works offline."""
    buffer = io.StringIO()
    chart.save(buffer, format="html", inline=True)
    return buffer.getvalue()


def spec_png_bytes(spec: dict, scale_factor: float = 2.0) -> bytes:
    """A Vega-Lite spec rendered to PNG by vl-convert, ``scale_factor`` times as dense."""
    return vl_convert.vegalite_to_png(spec, scale=scale_factor)
