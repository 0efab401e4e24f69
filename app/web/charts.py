"""The dashboard's charts: plotly figures built from the statistics' results, drawn in the page
by plotly.js, which the app serves itself from the plotly package (``/static/plotly.min.js``).

Every chart comes with its text alternative (a sentence and the table of what it draws), and
says nothing by colour alone: the groups are named on the axis or the legend, and where two
series share an axis they differ in line dash, marker symbol or bar pattern as well.
Box plots are drawn from the quartiles the statistics computed, never from raw points, so a
repository of 100,000 issues draws as fast as one of 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from app.formatting import NON_PTM_COLOUR, PTM_COLOUR, fmt_number
from app.stats.resolution import box_summary
from app.stats.results import GroupStats, Month
from app.taxonomy import THEMES

UNSURE_COLOUR = "#6b6b6b"
_FONT = {"family": "system-ui, sans-serif", "size": 14, "color": "#1f1f1f"}
CONFIG = {"responsive": True, "displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    figure: str  # plotly's JSON of the figure
    summary: str  # the text alternative in one sentence
    columns: Sequence[str]  # the table of what is drawn
    rows: Sequence[Sequence[str]]


def _layout(figure: go.Figure, y_title: str, x_title: str = "") -> str:
    figure.update_layout(
        template=None, font=_FONT, paper_bgcolor="white", plot_bgcolor="white", height=360,
        margin={"l": 60, "r": 10, "t": 10, "b": 50}, legend={"orientation": "h", "y": -0.2},
        yaxis={"title": {"text": y_title}, "gridcolor": "#d9d9d9", "zeroline": False},
        xaxis={"title": {"text": x_title}},
    )
    return str(figure.to_json())


def _box(name: str, days: Sequence[int], colour: str, hover: str | None = None) -> go.Box | None:
    box = box_summary(days)
    if box is None:
        return None
    return go.Box(name=name, x=[name], hovertext=[hover or name], showlegend=False, q1=[box.q1], median=[box.median], q3=[box.q3], lowerfence=[box.low],
                  upperfence=[box.high], mean=[sum(days) / len(days)], marker_color=colour, line_color=colour,
                  fillcolor="rgba(0,0,0,0)", boxmean=True, hoverinfo="y+text")


def _box_rows(named: Sequence[tuple[str, Sequence[int]]]) -> list[list[str]]:
    rows = []
    for name, days in named:
        box = box_summary(days)
        if box is not None:
            rows.append([name, str(len(days)), fmt_number(box.q1), fmt_number(box.median), fmt_number(box.q3),
                         fmt_number(max(days))])
    return rows


BOX_COLUMNS = ("group", "closed", "25th pct days", "median days", "75th pct days", "max days")


def resolution_boxes(group: GroupStats) -> Chart:
    named = [("PTM-related", group["ptm"]["days"], PTM_COLOUR), ("not PTM-related", group["non_ptm"]["days"],
                                                                  NON_PTM_COLOUR)]
    figure = go.Figure([b for name, days, colour in named if (b := _box(name, days, colour)) is not None])
    medians = ", ".join(f"{name} median {fmt_number(summary['median'])} days (n = {summary['n']})"
                        for name, summary in (("PTM-related", group["ptm"]), ("not PTM-related", group["non_ptm"])))
    return Chart("chart-resolution", "Days to close, PTM-related vs not", _layout(figure, "days to close"),
                 f"Box plot of days to close: {medians}.", BOX_COLUMNS, _box_rows([(n, d) for n, d, _ in named]))


def theme_boxes(group: GroupStats) -> Chart:
    named = [(f"{code} {THEMES[code]}", group["themes"][code]["days"]) for code in THEMES
             if group["themes"][code]["n"]]
    # the axis names each box by its code (the table and the hover give the theme's name)
    figure = go.Figure([b for name, days in named if (b := _box(name.split()[0], days, PTM_COLOUR, name)) is not None])
    busiest = max(named, key=lambda item: len(item[1]), default=None)
    summary = (f"Box plot of days to close per theme, {len(named)} themes; the most issues: {busiest[0]} "
               f"({len(busiest[1])})." if busiest else "No closed PTM-related issue has a theme yet.")
    return Chart("chart-themes", "Days to close per theme (PTM-related issues)", _layout(figure, "days to close"),
                 summary, BOX_COLUMNS, _box_rows(named))


def monthly_share(months: Sequence[Month]) -> Chart:
    x = [m["month"] for m in months]
    labelled = [None if m["ptm_share"] is None else 100 * m["ptm_share"] for m in months]
    estimated = [None if m["ptm_share_estimated"] is None else 100 * m["ptm_share_estimated"] for m in months]
    figure = go.Figure([
        go.Scatter(x=x, y=labelled, name="by label", mode="lines+markers", line={"color": PTM_COLOUR},
                   marker={"symbol": "circle"}, hovertemplate="%{x}: %{y:.0f}% by label<extra></extra>"),
        go.Scatter(x=x, y=estimated, name="estimated from probabilities", mode="lines+markers",
                   line={"color": "#1f1f1f", "dash": "dash"}, marker={"symbol": "diamond"},
                   hovertemplate="%{x}: %{y:.0f}% estimated<extra></extra>"),
    ])
    figure.update_yaxes(range=[0, 100], ticksuffix="%")
    rows = [[m["month"], str(sum(m["opened"].values())), _percent(m["ptm_share"]), _percent(m["ptm_share_estimated"])]
            for m in months]
    shown = [r for r in rows if r[1] != "0"]
    summary = (f"PTM-related share of new issues per month, {len(months)} months from {x[0]} to {x[-1]}."
               if months else "No issues in this period.")
    return Chart("chart-share", "PTM-related share of new issues per month", _layout(figure, "share of new issues"),
                 summary, ("month", "new issues", "PTM share by label", "PTM share estimated"), shown)


def monthly_flow(months: Sequence[Month]) -> Chart:
    x = [m["month"] for m in months]
    series: list[tuple[str, str, str, str, str]] = [
        ("opened, PTM-related", "opened", "ptm", PTM_COLOUR, ""),
        ("opened, not PTM-related", "opened", "non_ptm", NON_PTM_COLOUR, "/"),
        ("closed, PTM-related", "closed", "ptm", PTM_COLOUR, "x"),
        ("closed, not PTM-related", "closed", "non_ptm", NON_PTM_COLOUR, "."),
    ]
    bars = [go.Bar(x=x, y=[_count(m, kind, group) for m in months], name=name, marker_color=colour,
                   marker_pattern_shape=pattern, offsetgroup=kind, hovertemplate=f"%{{x}}: %{{y}} {name}<extra></extra>")
            for name, kind, group, colour, pattern in series]
    figure = go.Figure(bars)
    figure.update_layout(barmode="relative")
    rows = [[m["month"], *(str(_count(m, kind, group)) for _, kind, group, _, _ in series)] for m in months]
    return Chart("chart-flow", "Issues opened and closed per month", _layout(figure, "issues"),
                 f"Bars of issues opened and closed per month, PTM-related and not, over {len(months)} months.",
                 ("month", *(name for name, *_ in series)), rows)


def _count(month: Month, kind: str, group: str) -> int:
    return (month["opened"] if kind == "opened" else month["closed"])[group]


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def chart_payload(charts: Sequence[Chart]) -> dict[str, Any]:
    """What the page's script draws: each chart's element id, figure and plotly.js settings."""
    return {"config": CONFIG, "charts": [{"id": c.id, "figure": c.figure} for c in charts]}
