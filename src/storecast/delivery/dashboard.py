"""The interactive Plotly dashboard: actual in blue, predicted in red, holidays marked.

First version: chain total and a per-store selector in one self-contained HTML file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from storecast.data.schema import STORE, WEEK

ACTUAL_COLOR = "#1f77b4"
PREDICTED_COLOR = "#d62728"


def build_figure(table: pd.DataFrame, holidays: list[pd.Timestamp]) -> go.Figure:
    fig = go.Figure()
    groups = [("Chain total", table.groupby(WEEK, as_index=False)[["actual", "predicted"]].sum(min_count=1))]
    groups += [(f"Store {s}", g) for s, g in table.groupby(STORE)]
    buttons = []
    for i, (label, g) in enumerate(groups):
        visible = i == 0
        fig.add_trace(go.Scatter(x=g[WEEK], y=g["actual"], name="Actual", line={"color": ACTUAL_COLOR}, visible=visible))
        fig.add_trace(go.Scatter(x=g[WEEK], y=g["predicted"], name="Predicted", line={"color": PREDICTED_COLOR}, visible=visible))
        mask = [False] * (2 * len(groups))
        mask[2 * i] = mask[2 * i + 1] = True
        buttons.append({"label": label, "method": "update", "args": [{"visible": mask}, {"title": label}]})
    for week in holidays:
        fig.add_vline(x=week, line={"color": "grey", "dash": "dot", "width": 1})
    fig.update_layout(
        title="Chain total",
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "y": 1.15}],
        yaxis_title="Weekly sales",
        hovermode="x unified",
    )
    return fig


def write_dashboard(table: pd.DataFrame, holidays: list[pd.Timestamp], out_dir: Path) -> Path:
    path = out_dir / "dashboard.html"
    build_figure(table, holidays).write_html(path, include_plotlyjs=True, full_html=True)
    return path
