"""Replay history week by week through the production maintenance loop.

``simulate(settings, data, start)``: the main job runs on the history up to ``start``; then
for every later week the week's rows are written as a weekly file and ``refresh_job`` runs
on it exactly as in production (ingest behind the quality gate, champion forecast,
monitoring, retraining when the policy says so). Everything lives in a scratch folder: a
DuckDB file warehouse and a sqlite MLflow registry, so the replay never touches the real
ones and alerts are collected instead of POSTed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storecast.config import Settings
from storecast.data.schema import WEEK, Dataset
from storecast.errors import UsageError
from storecast.lifecycle.jobs import refresh_job, run_job
from storecast.lifecycle.monitoring import accuracy_frames
from storecast.lifecycle.registry import Registry
from storecast.lifecycle.steps import load_gated

Progress = Callable[[str], None]

#: canonical column -> the seed file's column, for the weekly files the replay writes
_WALMART_OUT = {"store": "Store", WEEK: "Date", "sales": "Weekly_Sales", "is_holiday": "Holiday_Flag",
                "temperature": "Temperature", "fuel_price": "Fuel_Price", "cpi": "CPI", "unemployment": "Unemployment"}


@dataclass
class SimulationResult:
    start: str
    end: str
    weekly: pd.DataFrame  # week, realized_mape, realized_mape_all_steps, n, promised_mape, champion, status, retrained
    retrains: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    realized_mape: float
    realized_mape_all_steps: float
    promised_mape: float
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        weekly = self.weekly.assign(week=self.weekly[WEEK].dt.date.astype(str))
        return {
            "start": self.start, "end": self.end, "weeks": len(self.weekly),
            "realized_mape": clean(self.realized_mape),
            "realized_mape_all_steps": clean(self.realized_mape_all_steps),
            "promised_mape": clean(self.promised_mape),
            "retrains": self.retrains, "alerts": self.alerts,
            "weekly": weekly.replace({np.nan: None}).to_dict(orient="records"),
            "seconds": round(self.seconds, 1),
            "files": {k: str(v) for k, v in self.files.items()},
        }


def _write_week(frame: pd.DataFrame, path: Path) -> Path:
    out = frame[[c for c in _WALMART_OUT if c in frame]].rename(columns=_WALMART_OUT)
    out["Date"] = pd.to_datetime(out["Date"]).dt.strftime("%Y-%m-%d")  # unambiguous, unlike 01-06-2012
    out["Holiday_Flag"] = out["Holiday_Flag"].astype(int)
    out.to_csv(path, index=False)
    return path


def simulate(
    settings: Settings,
    data: Path | Dataset,
    start: dt.date,
    *,
    fmt: str | None = None,
    out: Path | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Replay ``data`` from ``start`` (the last week the first model may see)."""
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    dataset, _ = load_gated(settings, data, fmt)
    if dataset.level != "store":
        raise UsageError("simulate replays store-level (Walmart.csv-shaped) data; department data is not supported")
    origin = pd.Timestamp(start)
    frame = dataset.frame
    head = frame[frame[WEEK] <= origin]
    weeks = sorted(frame.loc[frame[WEEK] > origin, WEEK].unique())
    if head.empty or not weeks:
        raise UsageError(
            f"--start {start} must fall inside the data ({dataset.first_week.date()} .. {dataset.last_week.date()})"
        )
    with tempfile.TemporaryDirectory(prefix="storecast-simulate-") as tmp:
        scratch = Path(tmp)
        sim = settings.model_copy(update={
            "out_dir": scratch / "out", "warehouse_url": f"duckdb:///{(scratch / 'warehouse.duckdb').as_posix()}",
            "mlflow_tracking_uri": f"sqlite:///{(scratch / 'mlflow.db').as_posix()}", "alert_webhook_url": "",
        })
        say(f"initial run on history to {origin.date()}")
        run_job(sim, Dataset.from_frame(head.reset_index(drop=True), source=f"{dataset.source} to {origin.date()}"))
        registry = Registry(sim)
        retrains: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for i, week in enumerate(weeks, 1):
            week = pd.Timestamp(week)
            say(f"week {i}/{len(weeks)}: {week.date()}")
            champion = registry.champion()
            path = _write_week(frame[frame[WEEK] == week], scratch / f"week_{week.date()}.csv")
            result = refresh_job(sim, path, fmt="walmart", today=(week + pd.Timedelta(days=1)).date())
            for check in result.report.alerts:
                alerts.append({"week": str(week.date()), "check": check.name, "subject": check.subject,
                               "message": check.message})
            if result.retrain is not None:
                train = result.retrain.train
                retrains.append({
                    "week": str(week.date()), "trigger": result.decision.trigger, "reason": result.decision.reason,
                    "version": train.version.version, "promoted": train.promoted, "decision": train.reason,
                    "challenger_mape": round(train.challenger_mape, 3),
                })
            weekly = result.report.weekly
            this = weekly[weekly[WEEK] == week]
            rows.append({
                WEEK: week,
                "realized_mape": float(this["realized_mape"].iloc[0]) if not this.empty else float("nan"),
                "realized_mape_all_steps": float(this["realized_mape_all_steps"].iloc[0]) if not this.empty else float("nan"),
                "n": int(this["n"].iloc[0]) if not this.empty else 0,
                "champion": champion.version if champion else None,
                "promised_mape": float(champion.metrics.get("mape", float("nan"))) if champion else float("nan"),
                "status": result.report.status,
                "retrained": result.decision.trigger if result.retrain is not None else "",
            })
        errors = accuracy_frames(sim)
    table = pd.DataFrame(rows)
    by_step = errors["by_step"]
    all_steps = float(np.average(by_step["mape"], weights=by_step["n"])) if not by_step.empty else float("nan")
    summary = SimulationResult(
        start=str(origin.date()), end=str(pd.Timestamp(weeks[-1]).date()), weekly=table, retrains=retrains,
        alerts=alerts, realized_mape=float(table["realized_mape"].mean()), realized_mape_all_steps=all_steps,
        promised_mape=float(table["promised_mape"].mean()), seconds=time.perf_counter() - t0,
    )
    if out is not None:
        summary.files = write_outputs(summary, out)
    return summary


def write_outputs(result: SimulationResult, out: Path) -> dict[str, Path]:
    """``simulation.json`` and ``simulation.html`` (realized vs promised MAPE, retrains marked)."""
    import plotly.graph_objects as go

    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "simulation.json", "chart": out / "simulation.html"}
    files["json"].write_text(json.dumps(result.to_dict(), indent=2))
    w = result.weekly
    fig = go.Figure()
    fig.add_scatter(x=w[WEEK], y=w["realized_mape"], name="realized MAPE (1 week ahead)", mode="lines+markers")
    fig.add_scatter(x=w[WEEK], y=w["promised_mape"], name="backtest promise", line={"dash": "dash"})
    for r in result.retrains:
        fig.add_vline(x=pd.Timestamp(r["week"]).timestamp() * 1000, line={"color": "gray", "dash": "dot"},
                      annotation_text=r["trigger"], annotation_position="top")
    fig.update_layout(title=f"storecast simulate {result.start} .. {result.end}: realized MAPE "
                            f"{result.realized_mape:.2f}% vs promised {result.promised_mape:.2f}%",
                      yaxis_title="MAPE %", xaxis_title="week", template="plotly_white")
    fig.write_html(files["chart"], include_plotlyjs=True, full_html=True)
    return files
