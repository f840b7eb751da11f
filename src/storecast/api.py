"""The Python API: the same declaration and forecasting core as the CLI, on a DataFrame.

>>> import storecast
>>> spec = storecast.DataSpec(keys=["store", "brand"], date="week_start", target="units",
...                           week_label="start", known_future=["deal", "feature", "price"])
>>> table = storecast.forecast(df, spec, horizon=13)          # keys, week, step, yhat, bands, q0.1..q0.9
>>> board = storecast.backtest(df, spec, horizon=13)          # one row per model: MAPE, WAPE, WQL, MASE...

Nothing is written: no warehouse, no registry, no files. Future values of known-future
drivers come as rows of ``df`` after the last week with sales (target left empty) or as
``future=``. Settings not given as arguments come from ``settings`` (default: the
``STORECAST_*`` environment and ``storecast.toml``, as for the CLI).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from storecast.config import Settings
from storecast.data.declared import dataset_from_dataframe
from storecast.data.schema import Dataset
from storecast.data.spec import DataSpec
from storecast.errors import UsageError
from storecast.evaluation.backtest import backtest as run_backtest
from storecast.evaluation.report import predictions_frame
from storecast.forecasting.pipeline import ForecastPipeline
from storecast.lifecycle.retrain import Fitted, fit_pipeline, resolve_model_name
from storecast.lifecycle.steps import load_gated
from storecast.models import BASELINES

Data: TypeAlias = pd.DataFrame | str | Path


def _settings(spec: DataSpec | None, settings: Settings | None, **overrides: Any) -> Settings:
    base = settings or Settings()
    update = {k: v for k, v in overrides.items() if v is not None}
    if spec is not None:
        update["data"] = spec
    return base.model_copy(update=update) if update else base


def _dataset(data: Data, spec: DataSpec | None, settings: Settings, future: pd.DataFrame | None) -> Dataset:
    """Read (a path) or take (a DataFrame) the data under the declaration, through the quality
    gate: a ``QualityGateError`` lists every problem found."""
    if isinstance(data, pd.DataFrame):
        if spec is None:
            raise UsageError("a DataFrame needs its declaration: storecast.forecast(df, storecast.DataSpec(keys=[...], "
                             "date=..., target=...))")
        frame = data
        if future is not None:
            frame = pd.concat([data, future.assign(**{spec.target: float("nan")})], ignore_index=True, sort=False)
        dataset, _ = load_gated(settings, dataset_from_dataframe(frame, spec))
        return dataset
    if future is not None:
        raise UsageError("future= goes with a DataFrame; for a file, declare DataSpec(future_file=...)")
    dataset, _ = load_gated(settings, Path(data))
    return dataset


@dataclass
class Forecast:
    """A fitted forecasting pipeline with its backtest; ``predict`` forecasts from the end of
    the data (every level with ``all_levels=True``)."""

    fitted: Fitted
    dataset: Dataset

    @property
    def pipeline(self) -> ForecastPipeline:
        return self.fitted.pipeline

    @property
    def model(self) -> str:
        return self.fitted.name

    @property
    def leaderboard(self) -> pd.DataFrame:
        """Backtest metrics per model (the chosen one and the baselines)."""
        return self.fitted.leaderboard

    @property
    def metrics(self) -> dict[str, float]:
        """Backtest metrics of what the pipeline delivers (reconciled, calibrated)."""
        return {**self.fitted.metrics, **self.fitted.delivered}

    @property
    def warnings(self) -> list[str]:
        return list(self.fitted.notes)

    def predict(self, horizon: int | None = None, *, all_levels: bool = False) -> pd.DataFrame:
        weeks = horizon or self.fitted.settings.horizon
        made = self.pipeline.predict(weeks)
        keys = list(self.dataset.keys)
        table = made.stacked(keys) if all_levels else made.leaves
        return table.reset_index(drop=True)


def fit(
    data: Data,
    spec: DataSpec | None = None,
    *,
    horizon: int | None = None,
    model: str | None = None,
    quantiles: Sequence[float] | None = None,
    future: pd.DataFrame | None = None,
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
) -> Forecast:
    """Backtest, reconcile, calibrate and fit as ``storecast run`` does, without writing anything."""
    cfg = _settings(spec, settings, horizon=horizon, model=model,
                    quantiles=list(quantiles) if quantiles is not None else None)
    dataset = _dataset(data, spec, cfg, future)
    return Forecast(fit_pipeline(cfg, dataset, progress=progress), dataset)


def forecast(
    data: Data,
    spec: DataSpec | None = None,
    horizon: int | None = None,
    *,
    model: str | None = None,
    quantiles: Sequence[float] | None = None,
    future: pd.DataFrame | None = None,
    all_levels: bool = False,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Forecast every series ``horizon`` weeks past the data: the key columns, ``week`` (dated as
    the data dates its weeks), ``step``, ``yhat``, the 80%/95% bands and ``q<level>`` quantiles;
    with ``all_levels`` also the total and every prefix of the keys (a ``level`` column)."""
    fitted = fit(data, spec, horizon=horizon, model=model, quantiles=quantiles, future=future, settings=settings)
    return fitted.predict(horizon, all_levels=all_levels)


def backtest(
    data: Data,
    spec: DataSpec | None = None,
    *,
    models: Sequence[str] | None = None,
    horizon: int | None = None,
    windows: int | None = None,
    step: int | None = None,
    quantiles: Sequence[float] | None = None,
    predictions: bool = False,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Rolling-origin backtest: one row per model with its metrics (MAPE, WMAPE, WAPE, WQL,
    MASE, coverage...), or with ``predictions=True`` one row per series x origin x week
    (keys, week, cutoff, step, model, actual, yhat, quantiles)."""
    cfg = _settings(spec, settings, horizon=horizon, backtest_windows=windows, backtest_step=step,
                    quantiles=list(quantiles) if quantiles is not None else None)
    dataset = _dataset(data, spec, cfg, None)
    names = list(models) if models else list(dict.fromkeys([resolve_model_name(cfg, dataset.level), *BASELINES]))
    result = run_backtest(dataset, names, horizon=cfg.horizon, windows=cfg.backtest_windows, step=cfg.backtest_step,
                          seed=cfg.seed, jobs=cfg.resolved_backtest_jobs, quantiles=cfg.quantiles)
    return predictions_frame(result) if predictions else result.leaderboard()
