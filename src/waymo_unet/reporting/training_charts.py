"""Altair charts of a run's fitting: the hyper-parameter search and the training history.

Each builder takes the table a pipeline already writes (optuna's trials, the per-epoch
history) and returns a chart with a title and tooltips.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from waymo_unet.reporting.chart_style import SERIES_COLOURS, AnyChart, require_columns

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


def tuning_chart(trials: pd.DataFrame, params: Sequence[str]) -> AnyChart:
    """Loss per trial with the best so far, beside loss against each hyper-parameter.

    ``trials`` is optuna's ``study.trials_dataframe()``: ``number``, ``value`` (validation
    loss, lower is better), ``state`` and ``params_<name>``; trials without a value
    (failed, or pruned before reporting) are counted in the subtitle, not drawn.
    """
    require_columns(trials, ("number", "value", "state"), "trials")
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
    require_columns(history, ("epoch", "train_loss", "val_loss", "mean_iou"), "history")
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
