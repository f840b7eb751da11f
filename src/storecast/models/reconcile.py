"""Make department forecasts add up to the store forecasts (hierarchical reconciliation).

Each store's total has two forecasts: a store-level model's (the anchor) and the sum of
its department forecasts. ``combined`` (the default of ``forecast_departments``) takes
their equal mean as the store's target - two forecasts of similar accuracy are better
combined than either alone (store-total MAPE on walmart-recruiting, 4 windows: anchor
4.17%, department sum 4.09%, mean 3.87%; equal weights for the same reason as in
``PooledBlend``, not fitted); ``top_down`` takes the anchor alone. The gap between the
target and the sum of the departments is spread over the departments in proportion to
their absolute forecasts. That is the weighted least-squares
projection onto "departments sum to the store" with weights ``|yhat|`` - it works with
negative department forecasts (returns), where plain top-down proportions break, leaves a
department forecast at zero at zero unless the whole store is at zero (then the gap is
split evenly), and moves interval bounds by the same amount as their point forecast.

``bottom_up`` instead makes the store forecast the sum of the departments.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from storecast.data.schema import DEPT, HOLIDAY, STORE, TARGET, WEEK
from storecast.errors import StorecastError, UsageError
from storecast.models.base import Forecaster

Method = Literal["combined", "top_down", "bottom_up"]
METHODS: tuple[str, ...] = ("combined", "top_down", "bottom_up")
BAND_COLUMNS = ("lo_80", "hi_80", "lo_95", "hi_95")


def store_totals(history: pd.DataFrame) -> pd.DataFrame:
    """Department history summed to store level (a week is a holiday if any department says so)."""
    if DEPT not in history.columns:
        raise UsageError("store_totals needs department data (a 'dept' column)")
    agg: dict[str, tuple[str, str]] = {TARGET: (TARGET, "sum")}
    if HOLIDAY in history.columns:
        agg[HOLIDAY] = (HOLIDAY, "max")
    out = history.groupby([STORE, WEEK], as_index=False, sort=True).agg(**agg)
    # Store-level covariates repeat on every department row; keep the first.
    extra = [c for c in history.columns if c not in (STORE, DEPT, WEEK, TARGET, HOLIDAY)]
    if extra:
        first = history.groupby([STORE, WEEK], as_index=False, sort=True)[extra].first()
        out = out.merge(first, on=[STORE, WEEK], how="left")
    return out


#: What the job (and the service) deliver: departments meet the mean of the store model and their sum.
DEFAULT_METHOD: Method = "combined"


def reconcile(dept_forecast: pd.DataFrame, store_forecast: pd.DataFrame | None = None, *, method: Method = "top_down") -> pd.DataFrame:
    """Department forecasts adjusted so that, per store and week, they sum to the store's.

    ``dept_forecast`` has ``store, dept, week, yhat`` (and optionally interval columns);
    ``store_forecast`` has ``store, week, yhat``. ``top_down`` makes the departments sum to
    it; ``combined`` to the mean of it and the departments' own sum. Store-weeks missing
    from ``store_forecast`` keep the department sum (bottom-up). Returns the department
    frame with ``yhat`` (and bands) adjusted, same rows and order.
    """
    if method not in METHODS:
        raise UsageError(f"unknown reconciliation method {method!r}; use {', '.join(METHODS)}")
    out = dept_forecast.copy()
    if method == "bottom_up" or store_forecast is None:
        return out
    keys = [STORE, WEEK]
    yhat = out["yhat"].to_numpy(dtype="float64")
    group = out.groupby(keys, sort=False).ngroup().to_numpy()
    n_groups = int(group.max()) + 1 if len(group) else 0
    dept_sum = np.bincount(group, weights=yhat, minlength=n_groups)
    weight = np.abs(yhat)
    weight_sum = np.bincount(group, weights=weight, minlength=n_groups)
    count = np.bincount(group, minlength=n_groups).astype("float64")

    firsts = out.groupby(keys, sort=False).head(1)
    first_rows = firsts[keys].reset_index(drop=True)
    target = first_rows.merge(store_forecast[[*keys, "yhat"]], on=keys, how="left")["yhat"].to_numpy(dtype="float64")
    target = np.where(np.isfinite(target), target, dept_sum)
    if method == "combined":
        target = 0.5 * (target + dept_sum)
    gap = target - dept_sum
    share = np.where(weight_sum[group] > 0, weight / np.where(weight_sum[group] > 0, weight_sum[group], 1.0), 1.0 / count[group])
    delta = share * gap[group]
    out["yhat"] = yhat + delta
    for col in BAND_COLUMNS:
        if col in out.columns:
            out[col] = out[col].to_numpy(dtype="float64") + delta
    return out


def forecast_departments(
    model: Forecaster,
    history: pd.DataFrame,
    dept_forecast: pd.DataFrame,
    horizon: int,
    future: pd.DataFrame | None = None,
    *,
    anchor: str | None = None,
    method: Method = DEFAULT_METHOD,
) -> pd.DataFrame:
    """Reconcile ``model``'s department forecast with a forecast of the store totals.

    The store forecast comes from the model named ``anchor`` (the job passes the store-level
    default, the most accurate model for store totals), or, without one, from a twin of
    ``model`` (same parameters and seed), fitted on the department history summed per
    store. If the store-level fit fails (for example too little history at store level),
    the department forecast is returned as it is, which is coherent bottom-up. ``method``
    as in ``reconcile``.
    """
    store_forecast = store_anchor_forecast(model, history, horizon, future, anchor=anchor)
    if store_forecast is None:
        return dept_forecast.copy()
    return reconcile(dept_forecast, store_forecast, method=method)


def store_anchor_forecast(
    model: Forecaster,
    history: pd.DataFrame,
    horizon: int,
    future: pd.DataFrame | None = None,
    *,
    anchor: str | None = None,
) -> pd.DataFrame | None:
    """The store-total forecast department forecasts are reconciled with (see
    ``forecast_departments``); None when it cannot be fitted (then stay bottom-up)."""
    totals = store_totals(history)
    store_future = None
    if future is not None and not future.empty:
        store_future = store_totals(future.assign(**{TARGET: 0.0})).drop(columns=[TARGET])
    try:
        if anchor is not None:
            from storecast.models import create_model

            twin = create_model(anchor, seed=model.seed).fit(totals)
        else:
            twin = type(model)(seed=model.seed, **model.params).fit(totals)
        return twin.predict(horizon, store_future)
    except StorecastError:
        return None


__all__ = ["BAND_COLUMNS", "DEFAULT_METHOD", "METHODS", "Method", "forecast_departments", "reconcile", "store_anchor_forecast", "store_totals"]
