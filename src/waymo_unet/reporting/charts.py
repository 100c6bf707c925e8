"""Altair charts of a run: hyper-parameter search, training curves, per-class IoU, classes.

Each builder takes the plain table a pipeline already writes and returns an Altair chart
with a title and tooltips; ``save_chart`` writes it as a Vega-Lite spec, an offline HTML
page and a PNG, the three forms kedro-viz and a report page can show.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import vl_convert

from waymo_unet.reporting.colours import hex_colour

# Every kind of top-level Altair chart the builders here return.
AnyChart = (
    alt.Chart | alt.LayerChart | alt.FacetChart | alt.HConcatChart | alt.VConcatChart
) | alt.ConcatChart

STATE_COLOURS = {
    "COMPLETE": "#4c78a8",
    "PRUNED": "#9d9d9d",
    "FAIL": "#e45756",
    "RUNNING": "#f58518",
    "WAITING": "#72b7b2",
}
LOG_SCALE_PARAMS = frozenset({"learning_rate", "lr", "weight_decay"})
LOSS_SERIES = {"train_loss": "train", "val_loss": "validation"}
QUALITY_SERIES = {"mean_iou": "mIoU", "pixel_accuracy": "pixel accuracy"}
SERIES_COLOURS = ["#4c78a8", "#f58518"]
BAR_OUTLINE = "#606060"
UNKNOWN_OUTLINE = "#d62728"
MEAN_RULE_COLOUR = "#d62728"


def tuning_chart(trials: pd.DataFrame, params: Sequence[str]) -> AnyChart:
    """Loss per trial with the best so far, beside loss against each hyper-parameter.

    ``trials`` is optuna's ``study.trials_dataframe()``: ``number``, ``value`` (validation
    loss, lower is better), ``state`` and ``params_<name>``; trials without a value
    (failed, or pruned before reporting) are counted in the subtitle, not drawn.
    """
    _require(trials, ("number", "value", "state"), "trials")
    columns = {name: _param_column(trials, name) for name in params}
    fields = {name: _safe_field(f"param_{name}") for name in params}
    data = _tuning_frame(trials, columns, fields)
    colour = _state_colour(data.loc[data["value"].notna(), "state"])
    tooltip = _tuning_tooltip(data, fields)
    history = _trial_history(data, colour, tooltip)
    panels = [_param_scatter(data, name, field, colour, tooltip) for name, field in fields.items()]
    chart = alt.hconcat(history, alt.concat(*panels, columns=2)) if panels else history
    title = alt.Title("Hyper-parameter search", subtitle=_tuning_subtitle(data), anchor="start")
    return chart.resolve_scale(color="shared", y="shared").properties(title=title)


def training_chart(history: pd.DataFrame) -> AnyChart:
    """Train and validation loss per epoch beside mIoU (and pixel accuracy, lr) per epoch."""
    _require(history, ("epoch", "train_loss", "val_loss", "mean_iou"), "history")
    losses = _fold(history, LOSS_SERIES, "loss")
    positive = bool((losses["loss"].dropna() > 0).all()) and losses["loss"].notna().any()
    scale = alt.Scale(type="log") if positive else alt.Scale(zero=True)
    loss = _epoch_lines(losses, "loss", "Loss (log scale)" if positive else "Loss", scale)
    scores = _fold(history, QUALITY_SERIES, "score")
    title = "Validation " + " and ".join(scores["series"].cat.categories)
    quality = _epoch_lines(scores, "score", title, alt.Scale(domain=[0, 1]))
    panels = [loss, quality]
    if "lr" in history.columns:
        panels.append(_learning_rate(history))
    return (
        alt.hconcat(*panels)
        .resolve_scale(color="independent")
        .properties(title=alt.Title("Training history", anchor="start"))
    )


def class_iou_chart(class_iou: pd.DataFrame) -> AnyChart:
    """Validation IoU per class as bars in the class colours, best first, mean dashed."""
    _require(class_iou, ("class_id", "name", "iou"), "class_iou")
    data = class_iou.assign(iou=pd.to_numeric(class_iou["iou"], errors="coerce"))
    data = data.sort_values("iou", ascending=False, na_position="last", kind="stable")
    data = data.assign(label=[_format(v, ".2f") for v in data["iou"]], label_x=data["iou"])
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
        layers.append(_mean_rule(mean))
    measured = int(data["iou"].notna().sum())
    subtitle = f"mean IoU over {measured} classes: {_format(mean, '.3f')} (dashed line)"
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
    _require(label_catalog, ("class_id", "name", "unknown"), "label_catalog")
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


def chart_png_bytes(chart: AnyChart, scale_factor: float = 2.0) -> bytes:
    """The chart rendered to PNG by vl-convert (no browser), ``scale_factor`` times as dense."""
    buffer = io.BytesIO()
    chart.save(buffer, format="png", scale_factor=scale_factor)
    return buffer.getvalue()


def chart_html(chart: AnyChart) -> str:
    """A standalone interactive HTML page with Vega inlined, so it works offline."""
    buffer = io.StringIO()
    chart.save(buffer, format="html", inline=True)
    return buffer.getvalue()


def save_chart(chart: AnyChart, stem: Path) -> dict[str, Path]:
    """Write ``<stem>.vl.json``, ``<stem>.html`` and ``<stem>.png``; return them by kind."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {kind: stem.with_name(f"{stem.name}.{kind}") for kind in ("vl.json", "html", "png")}
    paths["vl.json"].write_text(json.dumps(chart.to_dict(), indent=2), encoding="utf-8")
    paths["html"].write_text(chart_html(chart), encoding="utf-8")
    paths["png"].write_bytes(chart_png_bytes(chart))
    return paths


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise a ValueError naming the columns ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} table lacks columns: {', '.join(missing)}")


def _format(value: float, spec: str) -> str:
    """``value`` formatted with ``spec``, or "n/a" for NaN."""
    return "n/a" if pd.isna(value) else format(value, spec)


def _safe_field(name: str) -> str:
    """A field name Vega-Lite reads literally (dots and brackets would mean nesting)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def _param_column(trials: pd.DataFrame, name: str) -> str:
    """The trials column of hyper-parameter ``name`` (``params_<name>`` or ``name`` itself)."""
    for column in (f"params_{name}", name):
        if column in trials.columns:
            return column
    raise ValueError(f"trials table has no column params_{name}")


def _tuning_frame(
    trials: pd.DataFrame, columns: Mapping[str, str], fields: Mapping[str, str]
) -> pd.DataFrame:
    """Trials sorted by number, with the best complete loss so far and safe field names."""
    data = pd.DataFrame(
        {
            "number": pd.to_numeric(trials["number"]),
            "value": pd.to_numeric(trials["value"], errors="coerce").astype(float),
            "state": trials["state"].astype(str).str.removeprefix("TrialState."),
        }
    )
    for name, column in columns.items():
        data[fields[name]] = _param_values(trials[column])
    data = data.sort_values("number", kind="stable").reset_index(drop=True)
    complete = data["value"].where(data["state"] == "COMPLETE")
    data["best"] = complete.cummin().ffill()
    return data


def _param_values(values: pd.Series) -> pd.Series:
    """Numbers stay numbers; anything else (bools, choices) becomes text, NaN stays missing."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    return pd.Series(
        [None if pd.isna(v) else str(v) for v in values], index=values.index, dtype=object
    )


def _state_colour(states: pd.Series) -> alt.Color:
    """Colour by trial state, in a fixed order and fixed colours, listing drawn states only."""
    present = set(states)
    domain = [s for s in STATE_COLOURS if s in present] + sorted(present - set(STATE_COLOURS))
    return alt.Color(
        "state:N",
        scale=alt.Scale(domain=domain, range=[STATE_COLOURS.get(s, "#b279a2") for s in domain]),
        legend=alt.Legend(title="trial state", orient="bottom"),
    )


def _tuning_subtitle(data: pd.DataFrame) -> list[str]:
    """What the marks mean, and how many trials have no loss to draw (by state)."""
    lines = [f"{len(data)} trials; points: loss of each trial, line: best complete trial so far"]
    missing = data.loc[data["value"].isna(), "state"].value_counts()
    if not missing.empty:
        counts = ", ".join(f"{state} {count}" for state, count in missing.items())
        lines.append(f"not drawn, no loss reported: {counts}")
    return lines


def _tuning_tooltip(data: pd.DataFrame, fields: Mapping[str, str]) -> list[alt.Tooltip]:
    """Tooltip of a trial: number, state, loss and its hyper-parameters."""
    tooltip = [
        alt.Tooltip("number:Q", title="trial"),
        alt.Tooltip("state:N"),
        alt.Tooltip("value:Q", title="validation loss", format=".4f"),
    ]
    for name, field in fields.items():
        kind = "Q" if data[field].dtype.kind == "f" else "N"
        tooltip.append(
            alt.Tooltip(f"{field}:{kind}", title=name, format=".4g" if kind == "Q" else "")
        )
    return tooltip


def _trial_history(data: pd.DataFrame, colour: alt.Color, tooltip: list) -> alt.LayerChart:
    """Loss of each trial as a point coloured by state, and the best-so-far step line."""
    base = alt.Chart(data)
    x = alt.X("number:Q", title="trial", axis=alt.Axis(tickMinStep=1, format="d"))
    y = alt.Y("value:Q", title="validation loss", scale=alt.Scale(zero=False))
    best = base.mark_line(interpolate="step-after", color="#333333", strokeWidth=1.5).encode(
        x=x,
        y=alt.Y("best:Q"),
        tooltip=[alt.Tooltip("number:Q", title="trial"), alt.Tooltip("best:Q", format=".4f")],
    )
    points = base.mark_point(filled=True, size=60, opacity=0.85).encode(
        x=x, y=y, color=colour, tooltip=tooltip
    )
    return alt.layer(best, points).properties(width=360, height=280, title="Loss per trial")


def _param_scatter(
    data: pd.DataFrame, name: str, field: str, colour: alt.Color, tooltip: list
) -> alt.Chart:
    """Loss against one hyper-parameter, on a log axis where it spans decades."""
    return (
        alt.Chart(data)
        .transform_filter(f"isValid(datum['{field}'])")
        .mark_point(filled=True, size=45, opacity=0.85)
        .encode(
            x=_param_axis(name, field, data[field]),
            y=alt.Y("value:Q", title="validation loss", scale=alt.Scale(zero=False)),
            color=colour,
            tooltip=tooltip,
        )
        .properties(width=170, height=110, title=name)
    )


def _param_axis(name: str, field: str, values: pd.Series) -> alt.X:
    """x encoding of a hyper-parameter: log for rates, ordinal for a few integer choices."""
    if values.dtype.kind != "f":
        return alt.X(f"{field}:N", title=name, axis=alt.Axis(labelAngle=0))
    known = values.dropna()
    if 0 < known.nunique() <= 6 and (known == known.round()).all():
        return alt.X(f"{field}:O", title=name, axis=alt.Axis(labelAngle=0))
    positive = not known.empty and bool((known > 0).all())
    decades = positive and known.max() >= 100 * known.min()
    if positive and (name.rsplit(".", 1)[-1] in LOG_SCALE_PARAMS or decades):
        low, high = np.floor(np.log10(known.min())), np.ceil(np.log10(known.max()))
        ticks = [float(10**e) for e in np.arange(low, high + 1)]
        axis = alt.Axis(values=ticks, format=".0e", grid=True)
        return alt.X(
            f"{field}:Q", title=name, scale=alt.Scale(type="log", nice=False, padding=8), axis=axis
        )
    return alt.X(f"{field}:Q", title=name, scale=alt.Scale(zero=False, padding=8))


def _fold(history: pd.DataFrame, series: Mapping[str, str], value: str) -> pd.DataFrame:
    """Wide per-epoch columns to long (epoch, series, value) rows; series is categorical."""
    columns = [c for c in series if c in history.columns]
    long = history[["epoch", *columns]].melt(id_vars="epoch", var_name="series", value_name=value)
    names = [series[c] for c in columns]
    long["series"] = pd.Categorical(long["series"].map(series), categories=names)
    long[value] = pd.to_numeric(long[value], errors="coerce").astype(float)
    return long


def _epoch_lines(data: pd.DataFrame, value: str, title: str, scale: alt.Scale) -> alt.Chart:
    """One line with points per series over epochs."""
    series = [str(name) for name in data["series"].cat.categories]
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y(f"{value}:Q", title=value, scale=scale),
            color=alt.Color(
                "series:N",
                scale=alt.Scale(domain=series, range=SERIES_COLOURS[: len(series)]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=[
                alt.Tooltip("epoch:Q"),
                alt.Tooltip("series:N"),
                alt.Tooltip(f"{value}:Q", format=".4f"),
            ],
        )
        .properties(width=300, height=220, title=title)
    )


def _learning_rate(history: pd.DataFrame) -> alt.Chart:
    """The learning rate of each epoch (warm-up and decay)."""
    data = history[["epoch", "lr"]].assign(lr=pd.to_numeric(history["lr"], errors="coerce"))
    return (
        alt.Chart(data)
        .mark_line(point=True, color="#54a24b")
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("lr:Q", title="learning rate", axis=alt.Axis(format="~g")),
            tooltip=[alt.Tooltip("epoch:Q"), alt.Tooltip("lr:Q", format=".3e")],
        )
        .properties(width=300, height=220, title="Learning rate")
    )


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


def _mean_rule(mean: float) -> alt.Chart:
    """A dashed vertical rule at the mean IoU."""
    return (
        alt.Chart(pd.DataFrame({"mean_iou": [mean]}))
        .mark_rule(color=MEAN_RULE_COLOUR, strokeDash=[5, 3], strokeWidth=1.5)
        .encode(x="mean_iou:Q", tooltip=[alt.Tooltip("mean_iou:Q", title="mean IoU", format=".3f")])
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


def spec_png_bytes(spec: dict, scale_factor: float = 2.0) -> bytes:
    """A saved Vega-Lite spec rendered to PNG, as ``chart_png_bytes`` renders a chart."""
    return vl_convert.vegalite_to_png(spec, scale=scale_factor)
