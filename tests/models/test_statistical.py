"""statsforecast models: per-series fallbacks, log vs level, regressors, artifacts without search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from departments import department_frame

from storecast.data.schema import Dataset
from storecast.models.base import Forecaster
from storecast.models.statistical import (
    FALLBACK_MEAN_WEEKS,
    ARIMAXModel,
    ETSModel,
    MSTLModel,
    arimax_regressors,
    dense_panel,
)

HORIZON = 13


@pytest.fixture(scope="module")
def departments() -> pd.DataFrame:
    frame = department_frame(n_stores=1, n_depts=3, n_weeks=110, seed=4)
    return frame


def test_every_department_gets_a_forecast_with_stated_fallbacks(departments: pd.DataFrame) -> None:
    model = MSTLModel(seed=0).fit(departments)
    pred = model.predict(HORIZON)
    series = departments[["store", "dept"]].drop_duplicates()
    assert len(pred) == len(series) * HORIZON
    assert np.isfinite(pred["yhat"]).all()
    kinds = {int(d): s["kind"] for d, s in zip(model.series_["dept"], model.specs_, strict=True)}
    assert kinds[1] == "model" and kinds[91] == "model"
    assert kinds[90] == "mean"  # 6 weeks: the mean of its last weeks
    new = departments[departments["dept"] == 90].sort_values("week")["sales"].tail(FALLBACK_MEAN_WEEKS)
    assert np.allclose(pred.loc[pred["dept"] == 90, "yhat"], new.mean())


def test_log_only_for_positive_series_and_gaps_are_zero_at_department_level(departments: pd.DataFrame) -> None:
    model = ETSModel(seed=0).fit(departments)
    logs = {int(d): s["log"] for d, s in zip(model.series_["dept"], model.specs_, strict=True)}
    assert logs[1] is True
    assert logs[92] is False  # returns make sales negative: modelled on the level
    index, _weeks, values = dense_panel(departments, ["store", "dept"], model.last_week_)
    gappy = values[int(np.flatnonzero(index["dept"] == 91)[0])]
    assert np.nanmin(gappy) == 0.0  # the weeks left out of the file count as no sales


def test_store_level_gaps_are_interpolated(synthetic_dataset: Dataset) -> None:
    frame = synthetic_dataset.frame
    frame = frame[frame["store"] == 1]
    holed = frame.drop(index=frame.index[50])
    _index, _weeks, values = dense_panel(holed, ["store"], frame["week"].max())
    expected = (frame["sales"].iloc[49] + frame["sales"].iloc[51]) / 2
    assert values[0, 50] == pytest.approx(expected)


def test_regressors_know_future_holidays_from_the_calendar() -> None:
    weeks = pd.date_range("2013-11-15", periods=8, freq="7D")  # beyond every shared file
    reg = arimax_regressors(weeks, fourier_order=2)
    assert reg.loc[weeks.get_loc(pd.Timestamp("2013-11-29")), "is_thanksgiving"] == 1.0
    assert reg["is_thanksgiving"].sum() == 1.0
    assert reg.loc[weeks.get_loc(pd.Timestamp("2013-12-27")), "is_christmas"] == 1.0
    assert {"fourier_sin_1", "fourier_cos_2", "month_start_days"} <= set(reg.columns)


def test_arimax_saves_its_selected_orders_and_reloads_without_search(synthetic_dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = synthetic_dataset.frame[synthetic_dataset.frame["store"] <= 2]
    model = ARIMAXModel(seed=0, fourier_order=2, search_max_series=10).fit(history)
    pred = model.predict(HORIZON)
    folder = model.save(tmp_path / "arimax")
    specs = json.loads((folder / "specs.json").read_text())
    assert all(len(s["order"]) == 3 and "is_thanksgiving" in s["columns"] for s in specs)

    def no_search(self: ARIMAXModel) -> None:
        raise AssertionError("loading must not repeat the order search")

    monkeypatch.setattr(ARIMAXModel, "_search", no_search)
    loaded = Forecaster.load(folder)
    pd.testing.assert_frame_equal(pred, loaded.predict(HORIZON))


def test_arimax_uses_the_holiday_regressor(synthetic_dataset: Dataset) -> None:
    """The synthetic Thanksgiving lift is large: the forecast must show it in that week."""
    history = synthetic_dataset.frame[synthetic_dataset.frame["store"] == 1]
    history = history[history["week"] <= "2012-10-26"]
    pred = ARIMAXModel(seed=0, fourier_order=3).fit(history).predict(8)
    thanks = pred.loc[pred["week"] == "2012-11-23", "yhat"].iloc[0]
    before = pred.loc[pred["week"] == "2012-11-16", "yhat"].iloc[0]
    assert thanks > 1.15 * before
