"""Altair charts of the classes: validation IoU per class and each split's pixel share.

Bars are painted in the fixed Waymo class colours, so a class looks the same in every
chart and overlay of every run.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from waymo_unet.data.palette import hex_colour
from waymo_unet.reporting.chart_style import (
    BAR_OUTLINE,
    AnyChart,
    format_or_na,
    mean_rule,
    require_columns,
)

UNKNOWN_OUTLINE = "#d62728"


def class_iou_chart(class_iou: pd.DataFrame) -> AnyChart:
    """Validation IoU per class as bars in the class colours, best first, mean dashed."""
    require_columns(class_iou, ("class_id", "name", "iou"), "class_iou")
    data = class_iou.assign(iou=pd.to_numeric(class_iou["iou"], errors="coerce"))
    data = data.sort_values("iou", ascending=False, na_position="last", kind="stable")
    data = data.assign(label=[format_or_na(v, ".2f") for v in data["iou"]], label_x=data["iou"])
    data["label_x"] = data["label_x"].fillna(0.0)
    names = [str(n) for n in data["name"]]
    y = alt.Y("name:N", sort=names, title=None)
    tooltip = [alt.Tooltip("name:N"), alt.Tooltip("class_id:Q"), alt.Tooltip("iou:Q", format=".3f")]
    if "accuracy" in data.columns:
        tooltip.append(alt.Tooltip("accuracy:Q", format=".3f", title="class accuracy"))
    base = alt.Chart(data)
    bars = base.mark_bar(stroke=BAR_OUTLINE, strokeWidth=0.5).encode(
        x=alt.X("iou:Q", scale=alt.Scale(domain=[0, 1]), title="IoU"),
        y=y,
        color=_class_colour(data, names),
        tooltip=tooltip,
    )
    text = base.mark_text(align="left", dx=4, fontSize=11).encode(
        x="label_x:Q", y=y, text="label:N", tooltip=tooltip
    )
    layers = [bars, text]
    mean = float(data["iou"].mean()) if data["iou"].notna().any() else float("nan")
    if not np.isnan(mean):
        layers.append(mean_rule(mean, "mean_iou", "mean IoU"))
    measured = int(data["iou"].notna().sum())
    subtitle = f"mean IoU over {measured} classes: {format_or_na(mean, '.3f')} (dashed line)"
    return alt.layer(*layers).properties(
        width=420,
        height=alt.Step(20),
        title=alt.Title("Validation IoU per class", subtitle=subtitle, anchor="start"),
    )


def class_distribution_chart(label_catalog: pd.DataFrame) -> AnyChart:
    """Share of each split's pixels per class, in class colours; unknown ids outlined red.

    Takes the label catalogue (``class_id``, ``name``, ``unknown``, ``pixels_<split>``);
    one panel per split, classes in the same order in each, largest first.
    """
    require_columns(label_catalog, ("class_id", "name", "unknown"), "label_catalog")
    splits = [c.removeprefix("pixels_") for c in label_catalog.columns if c.startswith("pixels_")]
    if not splits:
        raise ValueError("label_catalog has no pixels_<split> columns")
    data = _pixel_shares(label_catalog, splits)
    order = _class_order(data, splits[0])
    unknown = int(label_catalog["unknown"].astype(bool).sum())
    subtitle = f"{len(order)} class ids; {unknown} unknown (not a Waymo class, outlined red)"
    header = alt.Header(labelFontSize=13, labelFontWeight="bold", labelOrient="top")
    return (
        _share_layer(data, order)
        .facet(column=alt.Column("split:N", sort=splits, title=None, header=header))
        .properties(
            title=alt.Title("Pixel share per class and split", subtitle=subtitle, anchor="start")
        )
    )


def _share_layer(data: pd.DataFrame, order: Sequence[str]) -> alt.LayerChart:
    """Bars of pixel share per class with a percentage label, ready to facet by split."""
    y = alt.Y("name:N", sort=list(order), title=None)
    top = float(np.nanmax(data["share"].to_numpy(dtype=float), initial=0.0)) or 1.0
    tooltip = [
        alt.Tooltip("name:N"),
        alt.Tooltip("class_id:Q"),
        alt.Tooltip("split:N"),
        alt.Tooltip("pixels:Q", format=","),
        alt.Tooltip("share:Q", format=".3%"),
        alt.Tooltip("unknown:N", title="unknown id"),
    ]
    x = alt.X(
        "share:Q",
        title="share of the split's pixels",
        axis=alt.Axis(format="%"),
        scale=alt.Scale(domain=[0, min(1.0, top * 1.35)], nice=False),
    )
    bars = (
        alt.Chart()
        .mark_bar()
        .encode(
            x=x,
            y=y,
            color=_class_colour(data, order),
            stroke=alt.condition(
                "datum.unknown", alt.value(UNKNOWN_OUTLINE), alt.value(BAR_OUTLINE)
            ),
            strokeWidth=alt.condition("datum.unknown", alt.value(2.0), alt.value(0.5)),
            tooltip=tooltip,
        )
    )
    text = (
        alt.Chart()
        .mark_text(align="left", dx=4, fontSize=11)
        .encode(x="label_x:Q", y=y, text="label:N", tooltip=tooltip)
    )
    return alt.layer(bars, text, data=data).properties(width=260, height=alt.Step(18))


def _class_colour(classes: pd.DataFrame, order: Sequence[str]) -> alt.Color:
    """Colour encoding that paints each class name in its fixed Waymo colour."""
    if not order:  # an empty scale range would stop Vega from drawing at all
        return alt.Color("name:N", legend=None)
    pairs = zip(classes["class_id"], classes["name"], strict=True)
    colours = {str(name): hex_colour(int(class_id)) for class_id, name in pairs}
    return alt.Color(
        "name:N",
        scale=alt.Scale(domain=list(order), range=[colours[n] for n in order]),
        legend=None,
    )


def _pixel_shares(catalog: pd.DataFrame, splits: Sequence[str]) -> pd.DataFrame:
    """Long (class, split) rows with pixel count, share of the split and a bar label."""
    frames = []
    for split in splits:
        pixels = pd.to_numeric(catalog[f"pixels_{split}"], errors="coerce").fillna(0)
        total = float(pixels.sum())
        frame = pd.DataFrame(
            {
                "class_id": catalog["class_id"].astype(int),
                "name": catalog["name"].astype(str),
                "unknown": catalog["unknown"].astype(bool),
                "split": split,
                "pixels": pixels.astype("int64"),
                "share": pixels / total if total > 0 else np.nan,
            }
        )
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    data["label"] = [
        _percent(share) + (" (unknown id)" if unknown else "")
        for share, unknown in zip(data["share"], data["unknown"], strict=True)
    ]
    data["label_x"] = data["share"].fillna(0.0)
    return data


def _percent(share: float) -> str:
    """A share as a short percentage that still tells tiny classes apart."""
    if pd.isna(share):
        return "n/a"
    if share == 0:
        return "0%"
    if share < 0.0001:
        return "<0.01%"
    return format(share, ".1%" if share >= 0.01 else ".2%")


def _class_order(data: pd.DataFrame, first_split: str) -> list[str]:
    """Class names by share of the first split, largest first, then by share elsewhere."""
    shares = data.assign(share=data["share"].fillna(0.0))
    first = shares[shares["split"] == first_split].groupby("name", sort=False)["share"].sum()
    key = pd.DataFrame({"all": shares.groupby("name", sort=False)["share"].sum()})
    key.insert(0, "first", first.reindex(key.index, fill_value=0.0))
    key = key.sort_values(["first", "all"], ascending=False, kind="stable")
    return [str(name) for name in key.index]
