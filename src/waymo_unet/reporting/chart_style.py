"""What every chart builder shares: the chart type, fixed colours, column checks, labels.

One place for the look, so the run charts and the evaluation charts agree on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

# Every kind of top-level Altair chart the builders return.
AnyChart = (
    alt.Chart | alt.LayerChart | alt.FacetChart | alt.HConcatChart | alt.VConcatChart
) | alt.ConcatChart

SERIES_COLOURS = ["#4c78a8", "#f58518"]
BAR_OUTLINE = "#606060"
MEAN_RULE_COLOUR = "#d62728"


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise a ValueError naming the columns ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} table lacks columns: {', '.join(missing)}")


def format_or_na(value: float, spec: str) -> str:
    """``value`` formatted with ``spec``, or "n/a" for NaN."""
    return "n/a" if pd.isna(value) else format(value, spec)


def mean_rule(mean: float, field: str, title: str) -> alt.Chart:
    """A dashed vertical rule at ``mean``, named ``title`` in its tooltip."""
    return (
        alt.Chart(pd.DataFrame({field: [mean]}))
        .mark_rule(color=MEAN_RULE_COLOUR, strokeDash=[5, 3], strokeWidth=1.5)
        .encode(x=f"{field}:Q", tooltip=[alt.Tooltip(f"{field}:Q", title=title, format=".3f")])
    )
