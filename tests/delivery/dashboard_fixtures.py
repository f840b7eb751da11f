"""Small seeded predictions tables for the dashboard tests (store and store x dept level).

Built the way the main job builds them: a rolling backtest for out-of-sample history,
a fit on all history for the forecast, conformal bands on both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storecast.data.readers import WALMART_MAP
from storecast.data.schema import DEPT, HOLIDAY, STORE, TARGET, WEEK, Dataset
from storecast.delivery.predictions import predictions_table
from storecast.evaluation.backtest import backtest
from storecast.models import create_model
from storecast.models.intervals import ConformalIntervals
from storecast.synthetic import walmart_like

HORIZON, WINDOWS = 8, 3
MODEL = "seasonal_naive"


def store_dataset(n_stores: int = 4, n_weeks: int = 120, seed: int = 5) -> Dataset:
    frame = walmart_like(n_stores=n_stores, n_weeks=n_weeks, seed=seed).rename(columns=WALMART_MAP)
    frame[HOLIDAY] = frame[HOLIDAY].astype(bool)
    return Dataset.from_frame(frame[[STORE, WEEK, TARGET, HOLIDAY]], source="synthetic")


def dept_dataset(n_stores: int = 3, n_depts: int = 4, n_weeks: int = 120, seed: int = 6) -> Dataset:
    """Each store's sales split over departments with fixed shares and some noise."""
    rng = np.random.default_rng(seed)
    stores = store_dataset(n_stores, n_weeks, seed).frame
    parts = []
    for dept in range(1, n_depts + 1):
        share = rng.uniform(0.05, 0.4)
        part = stores.assign(**{DEPT: dept * 3})
        part[TARGET] = (part[TARGET] * share * rng.normal(1, 0.03, len(part))).round(2)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    # One department opens late, so series of different lengths are covered.
    late = (frame[DEPT] == 3) & (frame[STORE] == 1) & (frame[WEEK] < frame[WEEK].min() + pd.Timedelta(weeks=20))
    return Dataset.from_frame(frame[~late].reset_index(drop=True), source="synthetic-dept")


def predictions_for(dataset: Dataset) -> pd.DataFrame:
    result = backtest(dataset, [MODEL], horizon=HORIZON, windows=WINDOWS, step=HORIZON, seed=0)
    model = create_model(MODEL, seed=0).fit(dataset.frame)
    weeks = pd.date_range(dataset.last_week + pd.Timedelta(weeks=1), periods=HORIZON, freq="7D")
    future = dataset.frame[dataset.keys].drop_duplicates().merge(pd.DataFrame({WEEK: weeks}), how="cross")
    future[HOLIDAY] = False
    forecast = ConformalIntervals.from_residuals(result.residuals(MODEL)).apply(model.predict(HORIZON, future))
    return predictions_table(dataset.frame, result.predictions, forecast, dataset.keys)
