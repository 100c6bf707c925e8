"""Label catalogue node: merge the class histograms into the catalogue table and JSON."""

from __future__ import annotations

from typing import Any

import pandas as pd

from waymo_unet.data.label_catalog import (
    LabelCatalogConfig,
    build_label_catalog,
    label_catalog_json,
)


def fit_label_catalog(
    class_histograms: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The catalogue as a table (one row per semantic id found) and as the JSON training loads."""
    config = LabelCatalogConfig.from_params(params)
    catalog = build_label_catalog(class_histograms, config)
    return catalog, label_catalog_json(catalog, config)
