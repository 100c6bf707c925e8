"""Altair charts of a Waymo evaluation: confusion heatmap, IoU per class and per camera.

Each builder takes a table the ``evaluation`` pipeline writes and shows Waymo's weighted
score (every pixel counts ``1 / num_cameras_covered``) beside the plain one, so a gap
between the two (pixels several cameras see) is visible at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from waymo_unet.reporting.chart_style import (
    BAR_OUTLINE,
    SERIES_COLOURS,
    AnyChart,
    format_or_na,
    mean_rule,
    require_columns,
)

WEIGHTED = "weighted (Waymo)"
PLAIN = "plain"
MISSED = "UNDEFINED (missed)"
NOT_TRAINED = "not trained"
UNTRAINED_OPACITY = 0.4
CONFUSION_COLUMNS = ("ground_truth_id", "ground_truth", "predicted_id", "predicted")


def confusion_chart(confusion: pd.DataFrame) -> AnyChart:
    """Where each class's pixels go: the weighted confusion matrix with rows summing to 1.

    Row-normalising makes rare classes as readable as road and sky; rows without ground
    truth (UNDEFINED, absent classes) and columns nothing was predicted as are left out.
    """
    require_columns(confusion, (*CONFUSION_COLUMNS, "weighted", "pixels"), "confusion")
    data = _confusion_shares(confusion)
    rows = _names_in_id_order(data, "ground_truth_id", "ground_truth")
    columns = _names_in_id_order(data, "predicted_id", "predicted")
    x = alt.X("predicted:N", sort=columns, title="predicted", axis=alt.Axis(labelAngle=-45))
    y = alt.Y("ground_truth:N", sort=rows, title="ground truth")
    tooltip = [
        alt.Tooltip("ground_truth:N", title="ground truth"),
        alt.Tooltip("predicted:N"),
        alt.Tooltip("share:Q", format=".2%", title="share of the row"),
        alt.Tooltip("weighted:Q", format=",.1f", title="weighted pixels"),
        alt.Tooltip("pixels:Q", format=",", title="pixels"),
    ]
    base = alt.Chart(data)
    diagonal = "datum.ground_truth_id == datum.predicted_id"
    cells = base.mark_rect(stroke="#ffffff", strokeWidth=0.5).encode(
        x=x,
        y=y,
        color=alt.Color(
            "share:Q",
            scale=alt.Scale(domain=[0, 1], scheme="blues"),
            legend=alt.Legend(title="share", format="%"),
        ),
        tooltip=tooltip,
    )
    text = (
        base.transform_filter("datum.share > 0")
        .mark_text(fontSize=9)
        .encode(
            x=x,
            y=y,
            text="label:N",
            color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("#222222")),
            tooltip=tooltip,
        )
    )
    correct = (
        base.transform_filter(diagonal)
        .mark_rect(filled=False, stroke="#333333", strokeWidth=1.5)
        .encode(x=x, y=y, tooltip=tooltip)
    )
    subtitle = [
        "share of each ground-truth class's pixels (weighted by 1/num_cameras_covered) "
        "predicted as each class; every row sums to 100%",
        f"{len(rows)} classes with ground truth; UNDEFINED ground truth ignored; "
        f"'{MISSED}': no Waymo class predicted; outlined: correct",
    ]
    return alt.layer(cells, correct, text).properties(
        width=alt.Step(24),
        height=alt.Step(20),
        title=alt.Title("Confusion matrix (row-normalised)", subtitle=subtitle, anchor="start"),
    )


def evaluation_class_iou_chart(class_iou: pd.DataFrame) -> AnyChart:
    """Weighted and plain IoU of every averaged class, untrained classes faded and labelled.

    Only classes in the mean are drawn (IoU not NaN); untrained ones stay in, as Waymo's
    mean counts them, so the chart shows what they cost. The dashed rule is the weighted mean.
    """
    require_columns(class_iou, ("class_id", "name", "trained", "weighted_iou", "iou"), "class_iou")
    data = class_iou.assign(
        weighted_iou=pd.to_numeric(class_iou["weighted_iou"], errors="coerce"),
        iou=pd.to_numeric(class_iou["iou"], errors="coerce"),
        trained=_as_bool(class_iou["trained"]),
    )
    data = data[data["iou"].notna()].sort_values(
        ["weighted_iou", "class_id"], ascending=[False, True], na_position="last", kind="stable"
    )
    data["label"] = [
        str(name) if trained else f"{name} ({NOT_TRAINED})"
        for name, trained in zip(data["name"], data["trained"], strict=True)
    ]
    long = _paired(data, "label", ["class_id", "name", "trained"], "weighted_iou", "iou")
    tooltip = [
        alt.Tooltip("name:N"),
        alt.Tooltip("class_id:Q"),
        alt.Tooltip("trained:N"),
        alt.Tooltip("measure:N", title="IoU"),
        alt.Tooltip("value:Q", format=".3f", title="value"),
    ]
    bars = _paired_bars(
        long,
        "label",
        list(data["label"]),
        alt.X("value:Q", scale=alt.Scale(domain=[0, 1]), title="IoU"),
        tooltip,
        opacity=alt.condition("datum.trained", alt.value(1.0), alt.value(UNTRAINED_OPACITY)),
        strokeDash=alt.condition("datum.trained", alt.value([1, 0]), alt.value([3, 2])),
    )
    weighted_mean = float(data["weighted_iou"].mean()) if len(data) else float("nan")
    rule = mean_rule(weighted_mean, "weighted_miou", "weighted mIoU")
    layers = [bars] if np.isnan(weighted_mean) else [bars, rule]
    untrained = int((~data["trained"]).sum())
    subtitle = [
        f"weighted mIoU over {len(data)} classes: {format_or_na(weighted_mean, '.3f')} "
        "(dashed line); "
        f"plain mIoU: {format_or_na(float(data['iou'].mean()), '.3f')}",
        f"{untrained} of them not trained (faded, dashed outline) but counted, as Waymo counts "
        "them; classes absent from ground truth and prediction left out",
    ]
    return alt.layer(*layers).properties(
        width=420,
        title=alt.Title("Waymo evaluation: IoU per class", subtitle=subtitle, anchor="start"),
    )


def camera_iou_chart(camera_iou: pd.DataFrame) -> AnyChart:
    """Weighted and plain mIoU of each camera, to show whether one camera drags the mean."""
    require_columns(camera_iou, ("camera", "camera_name", "weighted_miou", "miou"), "camera_iou")
    data = camera_iou.assign(
        camera=pd.to_numeric(camera_iou["camera"]).astype(int),
        camera_name=camera_iou["camera_name"].astype(str),
        weighted_miou=pd.to_numeric(camera_iou["weighted_miou"], errors="coerce"),
        miou=pd.to_numeric(camera_iou["miou"], errors="coerce"),
    ).sort_values("camera", kind="stable")
    extras = [c for c in ("camera", "images", "pixels", "weighted_pixel_accuracy") if c in data]
    long = _paired(data, "camera_name", extras, "weighted_miou", "miou")
    tooltip = [alt.Tooltip("camera_name:N", title="camera"), alt.Tooltip("camera:Q", title="id")]
    tooltip += [alt.Tooltip("measure:N", title="mIoU"), alt.Tooltip("value:Q", format=".3f")]
    if "images" in data:
        tooltip.append(alt.Tooltip("images:Q", format=","))
    if "pixels" in data:
        tooltip.append(alt.Tooltip("pixels:Q", format=","))
    if "weighted_pixel_accuracy" in data:
        tooltip.append(alt.Tooltip("weighted_pixel_accuracy:Q", format=".3f"))
    top = float(np.nanmax(long["value"].to_numpy(dtype=float), initial=0.0))
    scale = alt.Scale(domain=[0, min(1.0, top * 1.25) if top > 0 else 1.0], nice=False)
    x = alt.X("value:Q", scale=scale, title="mIoU")
    chart = _paired_bars(long, "camera_name", list(data["camera_name"]), x, tooltip)
    subtitle = "weighted: pixels counted 1/num_cameras_covered; plain: every pixel once"
    return chart.properties(
        width=420,
        title=alt.Title("Waymo evaluation: mIoU per camera", subtitle=subtitle, anchor="start"),
    )


def _confusion_shares(confusion: pd.DataFrame) -> pd.DataFrame:
    """Cells of rows with weighted ground truth and columns with any prediction, with shares."""
    data = confusion.assign(
        ground_truth_id=pd.to_numeric(confusion["ground_truth_id"]).astype(int),
        predicted_id=pd.to_numeric(confusion["predicted_id"]).astype(int),
        ground_truth=confusion["ground_truth"].astype(str),
        weighted=pd.to_numeric(confusion["weighted"], errors="coerce").fillna(0.0),
        pixels=pd.to_numeric(confusion["pixels"], errors="coerce").fillna(0).astype("int64"),
    )
    data["predicted"] = np.where(
        data["predicted_id"] == 0, MISSED, confusion["predicted"].astype(str)
    )
    totals = data.groupby("ground_truth_id")["weighted"].transform("sum")
    data = data[(data["ground_truth_id"] != 0) & (totals > 0)]
    data = data.assign(share=data["weighted"] / totals[data.index])
    data["label"] = [_share_label(share) for share in data["share"]]
    predicted = data.groupby("predicted_id")[["weighted", "pixels"]].transform("sum")
    return data[(predicted["weighted"] > 0) | (predicted["pixels"] > 0)].reset_index(drop=True)


def _share_label(share: float) -> str:
    """A cell's share as a whole percentage, "<1%" for a sliver, blank for none."""
    if share <= 0:
        return ""
    return "<1%" if share < 0.005 else format(share, ".0%")


def _names_in_id_order(data: pd.DataFrame, id_column: str, name_column: str) -> list[str]:
    """The distinct names of a column, ordered by their class id."""
    pairs = data[[id_column, name_column]].drop_duplicates().sort_values(id_column)
    return [str(name) for name in pairs[name_column]]


def _as_bool(values: pd.Series) -> pd.Series:
    """Booleans from bools or their text ("True"/"false"/"1"), as a CSV may hold them."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool)
    return values.astype(str).str.strip().str.lower().isin({"true", "1", "yes"})


def _paired(
    data: pd.DataFrame, category: str, extras: Sequence[str], weighted: str, plain: str
) -> pd.DataFrame:
    """Long rows (category, measure, value, label) of a weighted and a plain score."""
    long = data[[category, *extras, weighted, plain]].melt(
        id_vars=[category, *extras], var_name="measure", value_name="value"
    )
    long["measure"] = long["measure"].map({weighted: WEIGHTED, plain: PLAIN})
    long["value"] = long["value"].astype(float)
    long["text"] = [format_or_na(v, ".3f") for v in long["value"]]
    long["text_x"] = long["value"].fillna(0.0)
    return long


def _paired_bars(
    data: pd.DataFrame,
    category: str,
    order: Sequence[str],
    x: alt.X,
    tooltip: list[alt.Tooltip],
    **encoding: Any,
) -> alt.LayerChart:
    """Horizontal bars of the two measures side by side per category, each with its value."""
    y = alt.Y(f"{category}:N", sort=list(order), title=None, axis=alt.Axis(labelLimit=320))
    offset = alt.YOffset("measure:N", sort=[WEIGHTED, PLAIN])
    colour = alt.Color(
        "measure:N",
        scale=alt.Scale(domain=[WEIGHTED, PLAIN], range=SERIES_COLOURS[:2]),
        legend=alt.Legend(title=None, orient="bottom"),
    )
    base = alt.Chart(data)
    bars = base.mark_bar(stroke=BAR_OUTLINE, strokeWidth=0.5).encode(
        x=x, y=y, yOffset=offset, color=colour, tooltip=tooltip, **encoding
    )
    text = base.mark_text(align="left", dx=3, fontSize=9).encode(
        x=alt.X("text_x:Q"), y=y, yOffset=offset, text="text:N", tooltip=tooltip
    )
    return alt.layer(bars, text).properties(height={"step": 10, "for": "offset"})
