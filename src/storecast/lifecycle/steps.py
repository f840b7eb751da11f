"""The steps every job is built from: gated loading, champion forecasts, publishing.

The jobs (``jobs.run_job``, ``jobs.refresh_job``, ``retrain.retrain_job``) and the Prefect
flows are sequences of these functions, so the doors and the simulation share one code path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from storecast.config import Settings
from storecast.data.quality import QualityReport, gate, validate
from storecast.data.readers import load
from storecast.data.schema import HOLIDAY, WEEK, Dataset
from storecast.delivery.warehouse import RunRecord, Warehouse
from storecast.features.holidays import flagged_holiday_weeks
from storecast.lifecycle.registry import LoadedModel, Registry
from storecast.models import resolve_model
from storecast.models.base import Forecaster
from storecast.models.intervals import ConformalIntervals
from storecast.models.reconcile import forecast_departments


def make_run_id(dataset: Dataset, model: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S%f}"[:-3] + f"-{model}-{dataset.fingerprint[:8]}"


def load_gated(settings: Settings, data: Path | Dataset, fmt: str | None = None) -> tuple[Dataset, QualityReport]:
    """Read and validate; ``QualityGateError`` (nothing trained, nothing written) on errors."""
    if isinstance(data, Dataset):
        dataset: Dataset | None = data
        report = validate(data, settings)
    else:
        dataset, report = load(data, settings, fmt)
    gate(report)
    assert dataset is not None  # gate() raised otherwise
    return dataset, report


def future_scaffold(dataset: Dataset, horizon: int) -> pd.DataFrame:
    """Keys x the next ``horizon`` weeks with the calendar's known-future holiday flags."""
    weeks = pd.date_range(dataset.last_week + pd.Timedelta(weeks=1), periods=horizon, freq="7D")
    flagged = {pd.Timestamp(w) for w in flagged_holiday_weeks(weeks[0].date(), weeks[-1].date())}
    series = dataset.frame[dataset.keys].drop_duplicates()
    grid = series.merge(pd.DataFrame({WEEK: weeks}), how="cross")
    grid[HOLIDAY] = grid[WEEK].isin(flagged)
    return grid


def forecast_with(model: Forecaster, intervals: ConformalIntervals, dataset: Dataset, horizon: int) -> pd.DataFrame:
    """Point forecast of ``model`` from the end of ``dataset`` plus its conformal bands.

    Department forecasts are reconciled so each store's departments add up to the equal mean
    of the store-level default model's forecast of the store total and the departments' own
    sum (``models.reconcile``, ``combined``: more accurate than either alone,
    docs/benchmarks.md, Department level).
    """
    future = future_scaffold(dataset, horizon)
    forecast = model.predict(horizon, future)
    if dataset.level == "dept":
        forecast = forecast_departments(
            model, dataset.frame, forecast, horizon, future, anchor=resolve_model("auto", "store")
        )
    return intervals.apply(forecast)


@dataclass
class ChampionForecast:
    forecast: pd.DataFrame
    loaded: LoadedModel
    refitted: bool


def champion_forecast(settings: Settings, dataset: Dataset, registry: Registry) -> ChampionForecast:
    """Forecast from the end of ``dataset`` with the champion.

    A champion fitted on older weeks is refitted with its stored parameters on the current
    history first (the weekly refresh): no model selection, no new calibration — that is
    retraining's job — but the forecast starts from this week, not from the training week.
    """
    loaded = registry.load()
    model = loaded.model
    refitted = model.last_week_ < dataset.last_week
    if refitted:
        model = type(model)(seed=model.seed, **model.params).fit(dataset.frame)
    forecast = forecast_with(model, loaded.intervals, dataset, settings.horizon)
    return ChampionForecast(forecast, loaded, refitted)


def publish_forecast(
    settings: Settings,
    dataset: Dataset,
    forecast: pd.DataFrame,
    *,
    run_id: str,
    model: str,
    model_version: str | None,
    metrics: dict[str, float],
    backtest: pd.DataFrame | None = None,
    quality: QualityReport | None = None,
    details: dict[str, object] | None = None,
    write_history: bool = True,
) -> Path:
    """Store a forecast: the warehouse run (history merged in) and ``forecasts.parquet``."""
    out = settings.out_dir
    out.mkdir(parents=True, exist_ok=True)
    rich = forecast.copy()
    rich["run_id"], rich["model"], rich["model_version"], rich["cutoff"] = run_id, model, model_version, dataset.last_week
    path = out / "forecasts.parquet"
    rich.to_parquet(path, index=False)
    record = RunRecord(
        run_id=run_id, model=model, cutoff=dataset.last_week, level=dataset.level, horizon=settings.horizon,
        n_series=dataset.n_series, model_version=model_version, metrics=metrics, data_source=dataset.source,
        data_fingerprint=dataset.fingerprint, details=details or {},
    )
    with Warehouse.from_settings(settings) as wh:
        wh.write_run(record, forecast, backtest=backtest, history=dataset if write_history else None,
                     quality=quality.to_dict() if quality is not None else None)
    return path
