"""The main job, called the same way by the CLI, the API and the scheduled flows.

``run_job``: read -> validate -> backtest -> fit on all history -> forecast -> deliver.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from storecast import __version__
from storecast.config import Settings
from storecast.data.readers import read_history
from storecast.data.schema import HOLIDAY, TARGET, WEEK, Dataset
from storecast.delivery.dashboard import write_dashboard
from storecast.delivery.predictions import predictions_table, write_predictions_csv
from storecast.delivery.warehouse import Warehouse
from storecast.evaluation.backtest import BacktestResult, backtest
from storecast.features.holidays import flagged_holiday_weeks
from storecast.models import BASELINES, DEFAULT_MODEL, create_model
from storecast.models.intervals import ConformalIntervals

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


def future_scaffold(dataset: Dataset, horizon: int) -> pd.DataFrame:
    """Keys x the next ``horizon`` weeks with the calendar's known-future holiday flags."""
    weeks = pd.date_range(dataset.last_week + pd.Timedelta(weeks=1), periods=horizon, freq="7D")
    flagged = {pd.Timestamp(w) for w in flagged_holiday_weeks(weeks[0].date(), weeks[-1].date())}
    series = dataset.frame[dataset.keys].drop_duplicates()
    grid = series.merge(pd.DataFrame({WEEK: weeks}), how="cross")
    grid[HOLIDAY] = grid[WEEK].isin(flagged)
    return grid


def make_run_id(dataset: Dataset, model: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}-{model}-{dataset.fingerprint[:8]}"


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

    say("reading data")
    dataset = data if isinstance(data, Dataset) else read_history(data, settings, fmt)
    timings["read_s"] = time.perf_counter() - t0

    model_name = DEFAULT_MODEL if settings.model == "auto" else settings.model
    names = list(dict.fromkeys([model_name, *BASELINES]))
    t = time.perf_counter()
    result: BacktestResult = backtest(
        dataset, names,
        horizon=settings.horizon, windows=settings.backtest_windows, step=settings.backtest_step,
        seed=settings.seed, progress=lambda m: say(f"backtest {m}"),
    )
    timings["backtest_s"] = time.perf_counter() - t

    say(f"training {model_name} on all history")
    t = time.perf_counter()
    model = create_model(model_name, seed=settings.seed).fit(dataset.frame)
    future = future_scaffold(dataset, settings.horizon)
    forecast = model.predict(settings.horizon, future)
    calib = ConformalIntervals.from_residuals(result.residuals(model_name))
    forecast = calib.apply(forecast)
    timings["train_forecast_s"] = time.perf_counter() - t

    run_id = make_run_id(dataset, model_name)
    board = result.leaderboard()
    metrics = {k: float(v) for k, v in board.set_index("model").loc[model_name].items()}

    say("writing outputs")
    t = time.perf_counter()
    out = settings.out_dir
    out.mkdir(parents=True, exist_ok=True)
    own = result.predictions[result.predictions["model"] == model_name]
    table = predictions_table(dataset.frame, own, forecast, dataset.keys)
    files = {"csv": write_predictions_csv(table, dataset.keys, out)}

    rich = forecast.copy()
    rich["run_id"], rich["model"], rich["cutoff"] = run_id, model_name, dataset.last_week
    files["parquet"] = out / "forecasts.parquet"
    rich.to_parquet(files["parquet"], index=False)

    holidays = [pd.Timestamp(w) for w in flagged_holiday_weeks(dataset.first_week.date(), forecast[WEEK].max().date())]
    files["dashboard"] = write_dashboard(table, holidays, out)

    wh = Warehouse(settings.resolved_warehouse_url)
    try:
        sales = dataset.frame[[*dataset.keys, WEEK, TARGET]]
        runs = pd.DataFrame([{"run_id": run_id, "model": model_name, "cutoff": dataset.last_week,
                              "fingerprint": dataset.fingerprint, "mape": metrics["mape"]}])
        wh.write_run(run_id, sales, rich, runs)
    finally:
        wh.dispose()
    timings["deliver_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0

    files["run_json"] = out / "run.json"
    files["run_json"].write_text(json.dumps({
        "run_id": run_id,
        "storecast_version": __version__,
        "data": {"source": dataset.source, "fingerprint": dataset.fingerprint, "level": dataset.level,
                 "series": dataset.n_series, "first_week": str(dataset.first_week.date()),
                 "last_week": str(dataset.last_week.date())},
        "model": model_name,
        "horizon": settings.horizon,
        "backtest": {"windows": settings.backtest_windows, "step": settings.backtest_step,
                     "cutoffs": [str(c.date()) for c in result.cutoffs],
                     "metrics": metrics,
                     "leaderboard": json.loads(board.replace({np.nan: None}).to_json(orient="records"))},
        "warehouse": settings.resolved_warehouse_url,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }, indent=2))
    return RunResult(run_id, model_name, out, files, metrics, board, forecast, timings, settings.resolved_warehouse_url)
