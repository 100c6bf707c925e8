"""Kedro-free reporting: segmentation overlays, Altair charts, HTML pages.

The class colours live with the class table, in ``waymo_unet.data.palette``.
"""

from waymo_unet.reporting.chart_render import chart_html, spec_png_bytes
from waymo_unet.reporting.chart_style import AnyChart
from waymo_unet.reporting.class_charts import class_distribution_chart, class_iou_chart
from waymo_unet.reporting.evaluation_charts import (
    camera_iou_chart,
    confusion_chart,
    evaluation_class_iou_chart,
)
from waymo_unet.reporting.evaluation_summary import evaluation_summary
from waymo_unet.reporting.overlays import (
    colourise,
    encode_png,
    legend_entries,
    overlay,
    overlay_grid,
    overlay_panel,
)
from waymo_unet.reporting.page import ReportSection, report_page
from waymo_unet.reporting.training_charts import training_chart, tuning_chart

__all__ = [
    "AnyChart",
    "ReportSection",
    "camera_iou_chart",
    "chart_html",
    "class_distribution_chart",
    "class_iou_chart",
    "colourise",
    "confusion_chart",
    "encode_png",
    "evaluation_class_iou_chart",
    "evaluation_summary",
    "legend_entries",
    "overlay",
    "overlay_grid",
    "overlay_panel",
    "report_page",
    "spec_png_bytes",
    "training_chart",
    "tuning_chart",
]
