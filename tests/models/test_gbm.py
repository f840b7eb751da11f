"""The global LightGBM model: determinism, artifacts, known-future covariates, departments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from departments import department_frame

from storecast.data.schema import Dataset
from storecast.models.base import Forecaster
from storecast.models.gbm import GBMModel

HORIZON = 13
SMALL = {"n_estimators": 150, "max_rows": 20_000}


@pytest.fixture(scope="module")
def promo_history(synthetic_dataset: Dataset) -> pd.DataFrame:
    """Stores whose ``is_holiday`` flag also marks store-specific events worth +40% sales.

    The events fall on ordinary weeks, so only the flag - not the calendar - explains them.
    """
    frame = synthetic_dataset.frame[synthetic_dataset.frame["store"] <= 4].copy()
    rng = np.random.default_rng(11)
    events = rng.random(len(frame)) < 0.08
    frame.loc[events, "sales"] *= 1.4
    frame["is_holiday"] = frame["is_holiday"] | events
    return frame.reset_index(drop=True)


def _scaffold(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    last = history["week"].max()
    weeks = pd.date_range(last + pd.Timedelta(weeks=1), periods=horizon, freq="7D")
    grid = history[["store"]].drop_duplicates().merge(pd.DataFrame({"week": weeks}), how="cross")
    grid["is_holiday"] = False
    return grid


def test_same_seed_same_forecast_and_saved_model_predicts_the_same(promo_history: pd.DataFrame, tmp_path: Path) -> None:
    future = _scaffold(promo_history, HORIZON)
    a = GBMModel(seed=3, **SMALL).fit(promo_history)
    b = GBMModel(seed=3, **SMALL).fit(promo_history)
    pred = a.predict(HORIZON, future)
    pd.testing.assert_frame_equal(pred, b.predict(HORIZON, future))
    folder = a.save(tmp_path / "gbm")
    assert (folder / "lightgbm.txt").read_text().startswith("tree")
    assert not list(folder.glob("*.pkl"))
    pd.testing.assert_frame_equal(pred, Forecaster.load(folder).predict(HORIZON, future))


def test_a_planned_holiday_flag_lifts_that_week_only(promo_history: pd.DataFrame) -> None:
    model = GBMModel(seed=0, **SMALL).fit(promo_history)
    plain = _scaffold(promo_history, HORIZON)
    flagged = plain.copy()
    target_week = plain["week"].iloc[4]
    flagged.loc[(flagged["store"] == 2) & (flagged["week"] == target_week), "is_holiday"] = True
    base = model.predict(HORIZON, plain)
    what_if = model.predict(HORIZON, flagged)
    hit = (base["store"] == 2) & (base["week"] == target_week)
    assert what_if.loc[hit, "yhat"].iloc[0] > 1.1 * base.loc[hit, "yhat"].iloc[0]
    pd.testing.assert_frame_equal(base[~hit], what_if[~hit])


def test_past_only_covariates_are_read_at_the_origin_not_in_the_future(promo_history: pd.DataFrame) -> None:
    model = GBMModel(seed=0, **SMALL).fit(promo_history)
    assert "temperature" in model.feature_names_
    future = _scaffold(promo_history, HORIZON)
    hot = future.assign(temperature=150.0, cpi=999.0)
    pd.testing.assert_frame_equal(model.predict(HORIZON, future), model.predict(HORIZON, hot))


def test_departments_short_gappy_and_negative_all_get_a_forecast(tmp_path: Path) -> None:
    frame = department_frame(n_stores=2, n_depts=3, n_weeks=110, seed=2)
    model = GBMModel(seed=0, **SMALL).fit(frame)
    pred = model.predict(HORIZON)
    pd.testing.assert_frame_equal(pred, Forecaster.load(model.save(tmp_path / "gbm")).predict(HORIZON))
    series = frame[["store", "dept"]].drop_duplicates()
    assert len(pred) == len(series) * HORIZON
    assert np.isfinite(pred["yhat"]).all()
    assert "dept" in model.feature_names_
    # The returns department hovers around zero; its forecast must stay small.
    returns = pred.loc[pred["dept"] == 92, "yhat"].abs().max()
    assert returns < 0.1 * pred.loc[pred["dept"] == 1, "yhat"].mean()
