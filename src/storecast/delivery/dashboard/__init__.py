"""The interactive dashboard: one self-contained, offline HTML file.

Chain total and every store (and, for department data, every store x department) behind
selectors: actual in blue, predicted in red, 80%/95% bands, labelled holiday weeks, the
forecast horizon shaded; an accuracy view (MAPE per store and per week, largest misses);
and a monitoring panel when monitoring results are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from storecast.delivery.dashboard.data import build_payload
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
    holidays: Sequence[pd.Timestamp] | None = None,
    *,
    monitoring: pd.DataFrame | None = None,
    title: str = "storecast: weekly sales forecast",
    subtitle: str = "",
) -> str:
    """The dashboard document for a ``predictions_table`` (store or store x dept level).

    ``holidays`` restricts the marked weeks (default: the calendar's flagged holiday weeks);
    ``monitoring``, when given, is shown as a table (a ``status``/``severity``/``level``
    column of ok/warn/alert tints its rows).
    """
    payload, acc = build_payload(table, holidays)
    weeks = payload["weeks"]
    n_future = len(weeks) - payload["first_future"]
    summary = (
        f"{len(payload['stores'])} stores"
        + (f", {sum(len(d) for d in payload['depts'].values())} store-departments" if payload["level"] == "dept" else "")
        + f", weeks {weeks[0]} to {weeks[-1]}, {n_future}-week forecast"
        + (f"; backtest MAPE {payload['overall']['mape']:.2f}%" if payload["overall"]["mape"] is not None else "")
        + (f", WMAPE {payload['overall']['wmape']:.2f}%" if payload["overall"]["wmape"] is not None else "")
    )
    return render_page(
        payload, acc, title=title, subtitle=f"{subtitle} · {summary}" if subtitle else summary,
        monitoring_html=monitoring_table(monitoring),
    )


def write_dashboard(
    table: pd.DataFrame,
    holidays: Sequence[pd.Timestamp] | None,
    out_dir: Path,
    *,
    monitoring: pd.DataFrame | None = None,
    title: str = "storecast: weekly sales forecast",
    subtitle: str = "",
) -> Path:
    """Write ``dashboard.html`` into ``out_dir`` atomically and return its path."""
    html = build_dashboard_html(table, holidays, monitoring=monitoring, title=title, subtitle=subtitle)
    return write_text_atomic(out_dir / DASHBOARD_NAME, html)
