"""The headline numbers of two evaluations side by side, as text for a report page's table.

One column per evaluation (at the labels' size, at the training size), one row per metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SUMMARY_ROWS = {
    "weighted mIoU (Waymo)": "waymo_weighted_miou",
    "mIoU (plain)": "miou",
    "weighted pixel accuracy": "weighted_pixel_accuracy",
    "pixel accuracy": "pixel_accuracy",
    "images": "images",
    "segments": "segments",
    "quarantined rows": "quarantined_rows",
    "images without coverage": "images_without_coverage",
    "classes averaged": "averaged_classes",
    "untrained classes": "untrained_classes",
}


def evaluation_summary(
    at_labels_size: Mapping[str, Any], at_training_size: Mapping[str, Any]
) -> pd.DataFrame:
    """The headline numbers of both evaluations as text, one column each, for a page table.

    A missing key is refused by name: a renamed metric would otherwise show as blank.
    """
    for what, metrics in (
        ("at_labels_size", at_labels_size),
        ("at_training_size", at_training_size),
    ):
        missing = [key for key in SUMMARY_ROWS.values() if key not in metrics]
        if missing:
            raise ValueError(f"{what} metrics lack keys: {', '.join(missing)}")
    return pd.DataFrame(
        {
            "metric": list(SUMMARY_ROWS),
            "at the labels' size": [_text(at_labels_size, k) for k in SUMMARY_ROWS.values()],
            "at the training size": [_text(at_training_size, k) for k in SUMMARY_ROWS.values()],
        }
    )


def _text(metrics: Mapping[str, Any], key: str) -> str:
    """One metric as page text: scores to 4 places, counts with separators, lists joined."""
    value = metrics[key]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if key == "averaged_classes":
        return str(len(value))
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return format(value, ",")
    if isinstance(value, float):
        return format(value, ".4f")
    return str(value)
