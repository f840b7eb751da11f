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
from storecast.data.schema import Dataset
from storecast.data.spec import SeriesSpec
from storecast.delivery.warehouse import RunRecord, Warehouse
from storecast.forecasting.future import given_columns, resolve_assumption
from storecast.forecasting.pipeline import ForecastPipeline, LevelForecast
from storecast.lifecycle.registry import LoadedModel, Registry


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


def resolve_future(settings: Settings, dataset: Dataset, model: str) -> tuple[Settings, str | None]:
    """Settle, before any training, what the forecast weeks' known-future drivers will be.

    Fails (``DataError`` naming the columns and weeks) when the chosen model reads drivers
    the data gives only some values for, or none with ``assume_future = "strict"``. Returns
    the settings to go on with (the assumption storecast chose, if any) and its warning."""
    from storecast.models import get_model_class

    if "known_future" not in get_model_class(model).roles_read() or not given_columns(dataset.spec):
        return settings, None
    assume, note = resolve_assumption(dataset.spec, dataset.frame, dataset.last_week, settings.horizon,
                                      given=dataset.future, history=dataset.frame,
                                      assume=settings.data.assume_future)
    if assume == settings.data.assume_future:
        return settings, note
    data = settings.data.model_copy(update={"assume_future": assume})
    return settings.model_copy(update={"data": data}), note


def forecast_with(pipeline: ForecastPipeline, horizon: int) -> LevelForecast:
    """Every level's forecast from the end of the pipeline's data, with bands and quantiles.

    Department forecasts are reconciled with the store totals' own forecasts (the method the
    backtest chose; ``combined`` on the Walmart departments: more accurate than either alone,
    docs/benchmarks.md, Department level)."""
    return pipeline.predict(horizon)


@dataclass
class ChampionForecast:
    forecast: LevelForecast
    loaded: LoadedModel
    refitted: bool


def champion_forecast(settings: Settings, dataset: Dataset, registry: Registry) -> ChampionForecast:
    """Forecast from the end of ``dataset`` with the champion.

    A champion fitted on older weeks is refitted with its stored parameters on the current
    history first (the weekly refresh): no model selection, no new calibration — that is
    retraining's job — but the forecast starts from this week, not from the training week.
    """
    loaded = registry.load()
    pipeline = loaded.pipeline
    refitted = pipeline.last_week < dataset.last_week
    if refitted:
        pipeline = pipeline.refit(dataset)
    return ChampionForecast(forecast_with(pipeline, settings.horizon), loaded, refitted)


def forecast_rows(forecast: LevelForecast, spec: SeriesSpec) -> pd.DataFrame:
    """The rows a run stores and ships as ``forecasts.parquet``: the leaves, and for a declared
    retailer's data every aggregate level too, with a ``level`` column (``total``, ``store``,
    ``store/brand``); the Walmart presets keep their leaf-only file."""
    if spec.preset is not None:
        return forecast.leaves
    return forecast.stacked(spec.keys)


def publish_forecast(
    settings: Settings,
    dataset: Dataset,
    forecast: LevelForecast,
    *,
    run_id: str,
    model: str,
    model_version: str | None,
    metrics: dict[str, float],
    backtest: pd.DataFrame | None = None,
    backtest_levels: dict[tuple[str, ...], pd.DataFrame] | None = None,
    quality: QualityReport | None = None,
    details: dict[str, object] | None = None,
    write_history: bool = True,
) -> Path:
    """Store a forecast: the warehouse run (history merged in) and ``forecasts.parquet``."""
    out = settings.out_dir
    out.mkdir(parents=True, exist_ok=True)
    rich = forecast_rows(forecast, dataset.spec).copy()
    rich["run_id"], rich["model"], rich["model_version"], rich["cutoff"] = run_id, model, model_version, dataset.last_week
    path = out / "forecasts.parquet"
    rich.to_parquet(path, index=False)
    record = RunRecord(
        run_id=run_id, model=model, cutoff=dataset.last_week, level=dataset.level, horizon=settings.horizon,
        n_series=dataset.n_series, model_version=model_version, metrics=metrics, data_source=dataset.source,
        data_fingerprint=dataset.fingerprint, details=details or {},
    )
    with Warehouse.from_settings(settings) as wh:
        wh.write_run(record, forecast.leaves, backtest=backtest, history=dataset if write_history else None,
                     quality=quality.to_dict() if quality is not None else None, spec=dataset.spec,
                     levels=_level_rows(forecast.levels, backtest_levels),
                     declaration=settings.data.model_dump(mode="json") if settings.data.declared else None)
    return path


def _level_rows(
    forecast: dict[tuple[str, ...], pd.DataFrame], backtest: dict[tuple[str, ...], pd.DataFrame] | None
) -> dict[tuple[str, ...], pd.DataFrame]:
    """Aggregate levels' forecast rows and, where given, their backtest rows, per level."""
    out = dict(forecast)
    for level, frame in (backtest or {}).items():
        if frame.empty:
            continue
        out[level] = pd.concat([out[level], frame], ignore_index=True) if level in out else frame
    return out
