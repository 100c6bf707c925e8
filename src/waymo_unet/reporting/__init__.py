"""Kedro-free reporting: class colours, segmentation overlays, Altair charts, HTML pages."""

from waymo_unet.reporting.charts import (
    AnyChart,
    chart_html,
    chart_png_bytes,
    class_distribution_chart,
    class_iou_chart,
    save_chart,
    training_chart,
    tuning_chart,
)
from waymo_unet.reporting.colours import (
    UNKNOWN_COLOUR,
    WAYMO_COLOURS,
    class_name,
    colour_lut,
    colour_of,
    hex_colour,
)
from waymo_unet.reporting.overlays import (
    colourise,
    encode_png,
    legend_entries,
    overlay,
    overlay_grid,
    overlay_panel,
)
from waymo_unet.reporting.page import ReportSection, report_page

__all__ = [
    "UNKNOWN_COLOUR",
    "WAYMO_COLOURS",
    "AnyChart",
    "ReportSection",
    "chart_html",
    "chart_png_bytes",
    "class_distribution_chart",
    "class_iou_chart",
    "class_name",
    "colour_lut",
    "colour_of",
    "colourise",
    "encode_png",
    "hex_colour",
    "legend_entries",
    "overlay",
    "overlay_grid",
    "overlay_panel",
    "report_page",
    "save_chart",
    "training_chart",
    "tuning_chart",
]
