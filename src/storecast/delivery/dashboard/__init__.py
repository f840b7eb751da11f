"""The interactive dashboard: one self-contained, offline HTML file.

Chain total and every level of the keys (stores, store x department, store x brand...)
behind one selector per key: actual in blue, predicted in red, 80%/95% bands, labelled holiday weeks, the
forecast horizon shaded; an accuracy view (MAPE per store and per week, largest misses);
and a monitoring panel when monitoring results are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from storecast.delivery.dashboard.data import PATH_SEP, build_payload
from storecast.delivery.dashboard.page import (
    ACTUAL_COLOR,
    PREDICTED_COLOR,
    TRACE_SPECS,
    monitoring_table,
    render_page,
)
from storecast.delivery.files import write_text_atomic

DASHBOARD_NAME = "dashboard.html"

__all__ = [
    "ACTUAL_COLOR",
    "DASHBOARD_NAME",
    "PREDICTED_COLOR",
    "TRACE_SPECS",
    "build_dashboard_html",
    "write_dashboard",
]


def build_dashboard_html(
    table: pd.DataFrame,
    holidays: Sequence[pd.Timestamp] | Mapping[pd.Timestamp, str] | None = None,
    *,
    keys: Sequence[str] | None = None,
    levels: Mapping[tuple[str, ...], pd.DataFrame] | None = None,
    metric: str = "mape",
    value_label: str = "Weekly sales ($)",
    currency: bool = True,
    monitoring: pd.DataFrame | None = None,
    title: str = "storecast: weekly sales forecast",
    subtitle: str = "",
) -> str:
    """The dashboard document for a ``predictions_table`` of the leaves (see ``build_payload``
    for ``keys``, ``levels`` and ``metric``).

    ``holidays``: week -> name, or the weeks to mark (default: the US retail calendar's
    flagged holiday weeks); ``monitoring``, when given, is shown as a table (a
    ``status``/``severity``/``level`` column of ok/warn/alert tints its rows).
    """
    payload, acc = build_payload(table, holidays, keys=keys, levels=levels, metric=metric, value_label=value_label,
                                 currency=currency)
    weeks = payload["weeks"]
    n_future = len(weeks) - payload["first_future"]
    counts = []
    for depth, plural in enumerate(payload["plurals"]):
        n = sum(1 for node in payload["nodes"] if node.count(PATH_SEP) == depth)
        counts.append(f"{n} {plural}" if depth == 0 else f"{n} {' x '.join(payload['plurals'][:depth + 1])}")
    overall = payload["overall"]
    summary = ", ".join(counts) + f", weeks {weeks[0]} to {weeks[-1]}, {n_future}-week forecast"
    if metric == "mape":
        summary += (f"; backtest MAPE {overall['mape']:.2f}%" if overall["mape"] is not None else "") + (
            f", WMAPE {overall['wmape']:.2f}%" if overall["wmape"] is not None else "")
    elif overall["wmape"] is not None:
        summary += f"; backtest WAPE of the {payload['plurals'][0]} {overall['wmape']:.2f}%"
    return render_page(
        payload, acc, title=title, subtitle=f"{subtitle} · {summary}" if subtitle else summary,
        monitoring_html=monitoring_table(monitoring),
    )


def write_dashboard(
    table: pd.DataFrame,
    holidays: Sequence[pd.Timestamp] | Mapping[pd.Timestamp, str] | None,
    out_dir: Path,
    *,
    keys: Sequence[str] | None = None,
    levels: Mapping[tuple[str, ...], pd.DataFrame] | None = None,
    metric: str = "mape",
    value_label: str = "Weekly sales ($)",
    currency: bool = True,
    monitoring: pd.DataFrame | None = None,
    title: str = "storecast: weekly sales forecast",
    subtitle: str = "",
) -> Path:
    """Write ``dashboard.html`` into ``out_dir`` atomically and return its path."""
    html = build_dashboard_html(table, holidays, keys=keys, levels=levels, metric=metric, value_label=value_label,
                                currency=currency, monitoring=monitoring, title=title, subtitle=subtitle)
    return write_text_atomic(out_dir / DASHBOARD_NAME, html)
