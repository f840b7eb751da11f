"""The jobs every door calls (CLI, API, Prefect flows, the simulation).

``run_job``: read -> quality gate -> backtest -> fit -> register (champion if none or
better) -> forecast -> deliver (CSV, Parquet, dashboard, warehouse, run.json).
``refresh_job``: the weekly refresh: ingest a new file -> forecast with the champion ->
export -> monitor -> retrain if the policy says so (monthly, or a drift alert).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from storecast import __version__
from storecast.config import Settings
from storecast.data.schema import WEEK, Dataset
from storecast.delivery.dashboard import write_dashboard
from storecast.delivery.predictions import level_tables, predictions_table, write_predictions_csv
from storecast.delivery.warehouse import Warehouse
from storecast.errors import NotFoundError
from storecast.features.calendar import calendar_for
from storecast.lifecycle.monitoring import (
    Check,
    MonitorReport,
    dispatch_alerts,
    latest_checks,
    monitor_job,
)
from storecast.lifecycle.registry import Registry
from storecast.lifecycle.retrain import (
    RetrainDecision,
    RetrainResult,
    retrain_job,
    retraining_due,
    train_challenger,
)
from storecast.lifecycle.steps import (
    champion_forecast,
    forecast_with,
    load_gated,
    make_run_id,
    publish_forecast,
)
from storecast.models import MODELS, get_model_class
from storecast.redaction import redact_url

__all__ = ["RefreshResult", "RunResult", "refresh_job", "run_job"]

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class RunResult:
    run_id: str
    model: str
    out_dir: Path
    files: dict[str, Path]
    metrics: dict[str, float]
    leaderboard: pd.DataFrame
    forecast: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    warehouse_url: str = ""
    model_version: str = ""
    promoted: bool = False
    promotion_reason: str = ""
    level: str = "store"
    #: warnings the user should read (e.g. known-future values storecast had to assume)
    notes: list[str] = field(default_factory=list)


def run_job(
    settings: Settings,
    data: Path | Dataset,
    *,
    fmt: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    say("reading and validating data")
    dataset, quality = load_gated(settings, data, fmt)
    timings["read_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    trained = train_challenger(settings, dataset, registry=Registry(settings), trigger="run", progress=say)
    model_name, result, metrics, run_id = trained.version.model_name, trained.backtest, trained.metrics, trained.run_id
    forecast = forecast_with(trained.pipeline, settings.horizon)
    timings["backtest_train_s"] = time.perf_counter() - t

    say("writing outputs")
    t = time.perf_counter()
    out = settings.out_dir
    out.mkdir(parents=True, exist_ok=True)
    own = trained.evaluation.leaves  # what the pipeline delivered at each backtest origin
    table = predictions_table(dataset.frame, own, forecast.leaves, dataset.keys)
    levels = level_tables(dataset, trained.evaluation, forecast) if dataset.spec.preset is None else None
    files = {"csv": write_predictions_csv(table, dataset.keys, out, spec=dataset.spec, levels=levels)}
    files["parquet"] = publish_forecast(
        settings, dataset, forecast, run_id=run_id, model=model_name, model_version=trained.version.version,
        metrics=metrics, backtest=own, backtest_levels=trained.evaluation.levels, quality=quality,
        details={"promoted": trained.promoted, "promotion_reason": trained.reason, "trigger": "run",
                 "reconciliation": trained.evaluation.method, "delivered": trained.delivered},
    )
    calendar = calendar_for(dataset.spec.calendar)
    last = forecast.leaves[WEEK].max()
    # No run id or timestamp on the page: the same data, settings and seed give the same file.
    subtitle = f"{Path(dataset.source).name}, model {model_name}, data to {dataset.last_week.date()}"
    if dataset.spec.preset is not None:  # the Walmart files: their four flagged holidays, MAPE
        holidays = [pd.Timestamp(w) for w in calendar.flagged_weeks(dataset.first_week.date(), last.date())]
        files["dashboard"] = write_dashboard(table, holidays, out, monitoring=latest_checks(settings),
                                             subtitle=subtitle)
    else:  # any retailer: its country's holidays and events by name, every level, WAPE
        named = calendar.named_weeks(dataset.first_week, last)
        files["dashboard"] = write_dashboard(table, named, out, keys=dataset.keys, levels=levels, metric="wmape",
                                             value_label=f"Weekly {settings.data.target}", currency=False,
                                             monitoring=latest_checks(settings), subtitle=subtitle)
    timings["deliver_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0

    board = trained.leaderboard
    files["run_json"] = out / "run.json"
    files["run_json"].write_text(json.dumps({
        "run_id": run_id,
        "storecast_version": __version__,
        "data": {"source": dataset.source, "fingerprint": dataset.fingerprint, "level": dataset.level,
                 "keys": dataset.keys, "week": dataset.spec.week.to_dict(), "country": dataset.spec.calendar.country,
                 "known_future": list(dataset.spec.known_future), "past_only": list(dataset.spec.past_only),
                 "static": list(dataset.spec.static), "assume_future": trained.pipeline.assume_future,
                 "series": dataset.n_series, "first_week": str(dataset.first_week.date()),
                 "last_week": str(dataset.last_week.date())},
        "model": model_name,
        "model_version": trained.version.version,
        "promoted": trained.promoted,
        "promotion_reason": trained.reason,
        "horizon": settings.horizon,
        "quantiles": list(settings.quantiles),
        "reconciliation": {"method": trained.evaluation.method, "leaf_wape": trained.evaluation.scores,
                           "anchor_failures": trained.evaluation.anchor_failures},
        "backtest": {"windows": settings.backtest_windows, "step": settings.backtest_step,
                     "cutoffs": [str(c.date()) for c in result.cutoffs],
                     "metrics": {k: (None if not np.isfinite(v) else v) for k, v in metrics.items()},
                     "delivered": {k: (None if not np.isfinite(v) else v) for k, v in trained.delivered.items()},
                     "by_history": history_breakdown(dataset, own),
                     "leaderboard": json.loads(board.replace({np.nan: None}).to_json(orient="records"))},
        "warnings": trained.notes,
        "warehouse": redact_url(settings.resolved_warehouse_url),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }, indent=2))
    return RunResult(run_id, model_name, out, files, metrics, board, forecast.leaves, timings,
                     redact_url(settings.resolved_warehouse_url), trained.version.version, trained.promoted, trained.reason,
                     dataset.level, trained.notes)


def history_breakdown(dataset: Dataset, delivered: pd.DataFrame) -> list[dict[str, object]]:
    """Delivered backtest accuracy by how many weeks of history a series had at the origin
    (series that start late: under 13, 13-26, 26-52 and 52+ weeks)."""
    from storecast.evaluation.metrics import mape, wmape
    from storecast.forecasting.pipeline import history_lengths

    parts = []
    for cutoff, part in delivered.groupby("cutoff", sort=True):
        lengths = history_lengths(dataset.frame, dataset.keys, pd.Timestamp(cutoff))
        parts.append(part.merge(lengths, on=dataset.keys, how="left"))
    if not parts:
        return []
    frame = pd.concat(parts, ignore_index=True)
    bins = pd.cut(frame["history_weeks"], [0, 13, 26, 52, 10_000], right=False,
                  labels=["<13 weeks", "13-26 weeks", "26-52 weeks", "52+ weeks"])
    rows = []
    for label, g in frame.groupby(bins, observed=True):
        rows.append({"history": str(label), "series": int(g[dataset.keys].drop_duplicates().shape[0]),
                     "rows": len(g), "wape": round(wmape(g["y"], g["yhat"]), 3), "mape": round(mape(g["y"], g["yhat"]), 3)})
    return rows


# ---- the weekly refresh ---------------------------------------------------------------------
@dataclass
class RefreshResult:
    run_id: str
    model_version: str
    as_of: pd.Timestamp
    forecast: pd.DataFrame
    report: MonitorReport
    decision: RetrainDecision
    retrain: RetrainResult | None = None
    ingest: object | None = None


def forecast_step(settings: Settings, dataset: Dataset, registry: Registry) -> tuple[str, str, pd.DataFrame]:
    """Forecast from the newest week with the champion and publish it; returns run id, version."""
    made = champion_forecast(settings, dataset, registry)
    version = made.loaded.version
    run_id = make_run_id(dataset, version.model_name)
    publish_forecast(
        settings, dataset, made.forecast, run_id=run_id, model=version.model_name, model_version=version.version,
        metrics=version.metrics, details={"trigger": "refresh", "refitted": made.refitted}, write_history=False,
    )
    return run_id, version.version, made.forecast.leaves


def refresh_job(
    settings: Settings,
    data: Path | None = None,
    *,
    fmt: str | None = None,
    allow_restatement: bool = False,
    retrain: bool = True,
    today: dt.date | None = None,
    progress: Progress | None = None,
) -> RefreshResult:
    """Ingest ``data`` (if given), forecast with the champion, monitor, retrain if due.

    A file the quality gate rejects stops the refresh before anything is forecast or
    retrained: the champion stays, an alert goes out, and the ``DataError`` is raised.
    """
    say = progress or (lambda _msg: None)
    ingested = None
    if data is not None:
        from storecast.lifecycle.ingest import ingest_job

        say(f"ingesting {data}")
        ingested = ingest_job(settings, data, allow_restatement=allow_restatement, fmt=fmt, today=today)
        if ingested.status == "rejected":
            dispatch_alerts(
                [Check("quality_gate", str(data), float("nan"), 0.0, 0.0, "alert",
                       f"weekly file rejected, champion kept: {ingested.message}")],
                settings, source="refresh",
            )
            ingested.raise_for_status()
    with Warehouse.from_settings(settings) as wh:
        history = wh.history()
    if history is None:
        raise NotFoundError("the warehouse holds no sales yet; run `storecast run` or ingest a file first")
    registry = Registry(settings)
    say("forecasting with the champion")
    run_id, version, forecast = forecast_step(settings, history, registry)
    say("monitoring")
    report = monitor_job(settings, history=history, registry=registry)
    champion = registry.champion()
    trained_to = pd.Timestamp(champion.trained_to) if champion and champion.trained_to else None
    reads = (get_model_class(champion.model_name).covariates_read(history.spec)
             if champion and champion.model_name in MODELS else None)
    decision = retraining_due(
        history.last_week, trained_to, report.drift_alerts(reads), every_weeks=settings.retrain_every_weeks
    )
    result = RefreshResult(run_id, version, history.last_week, forecast, report, decision, ingest=ingested)
    if retrain and decision.due:
        say(f"retraining ({decision.trigger}: {decision.reason})")
        result.retrain = retrain_job(settings, history, trigger=decision.trigger or "manual", progress=say)
    return result
