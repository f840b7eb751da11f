"""The Python API: ``storecast.forecast`` / ``backtest`` / ``fit`` on a DataFrame with a declaration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import storecast
from panels import BRANDS, promo_chain
from storecast.errors import DataError, UsageError

HORIZON = 6
SPEC = storecast.DataSpec(keys=["store", "brand"], date="week_start", target="units", week_label="start",
                          known_future=["deal", "feature", "price"])


@pytest.fixture(scope="module")
def chain() -> pd.DataFrame:
    return promo_chain()


@pytest.fixture(scope="module")
def fitted(chain: pd.DataFrame) -> storecast.Forecast:
    return storecast.fit(chain, SPEC, horizon=HORIZON, model="drivers")


def test_forecast_has_every_series_keys_weeks_bands_and_quantiles(fitted: storecast.Forecast, chain: pd.DataFrame) -> None:
    table = fitted.predict()
    quantiles = [f"q{q / 10:g}" for q in range(1, 10)]
    assert list(table.columns[:5]) == ["store", "brand", "week", "step", "yhat"]
    assert {"lo_80", "hi_80", "lo_95", "hi_95", *quantiles} <= set(table.columns)
    assert len(table) == chain[["store", "brand"]].drop_duplicates().shape[0] * HORIZON
    assert set(table["brand"]) == set(BRANDS) and table["store"].dtype.kind == "i"
    last = pd.Timestamp(chain["week_start"].max())
    assert (table["week"].dt.dayofweek == 3).all()  # dated by their Thursday, as the data is
    assert table["week"].min() == last + pd.Timedelta(weeks=1)
    values = table[quantiles].to_numpy()
    assert (np.diff(values, axis=1) >= -1e-9).all()  # monotone
    assert (table[["lo_95", *quantiles]].to_numpy() >= 0).all()  # unit sales never went below zero
    assert fitted.warnings and "deal, feature, price" in fitted.warnings[0]


def test_every_level_adds_up(fitted: storecast.Forecast) -> None:
    table = fitted.predict(all_levels=True)
    assert set(table["level"]) == {"total", "store", "store/brand"}
    leaves = table[table["level"] == "store/brand"].groupby("week")["yhat"].sum()
    total = table[table["level"] == "total"].set_index("week")["yhat"]
    np.testing.assert_allclose(total.loc[leaves.index], leaves, rtol=1e-9)
    stores = table[table["level"] == "store"]
    assert stores["brand"].isna().all() and stores["store"].notna().all()


def test_backtest_returns_a_leaderboard_or_every_prediction(chain: pd.DataFrame) -> None:
    board = storecast.backtest(chain, SPEC, models=["seasonal_naive", "yoy_scaled"], horizon=4, windows=2, step=4)
    assert list(board["model"]) == sorted(board["model"], key=lambda m: board.set_index("model").loc[m, "mape"])
    assert {"wmape", "wql", "mase"} <= set(board.columns)
    rows = storecast.backtest(chain, SPEC, models=["seasonal_naive"], horizon=4, windows=2, step=4, predictions=True)
    assert list(rows.columns[:8]) == ["store", "brand", "week", "cutoff", "step", "model", "actual", "yhat"]
    assert rows["cutoff"].nunique() == 2 and rows["step"].max() == 4


def test_planned_drivers_given_as_future_rows(chain: pd.DataFrame) -> None:
    last = pd.Timestamp(chain["week_start"].max())
    plan = chain[["store", "brand"]].drop_duplicates().merge(
        pd.DataFrame({"week_start": [(last + pd.Timedelta(weeks=k)).strftime("%Y-%m-%d") for k in (1, 2)]}),
        how="cross").assign(deal=1, feature=0.0, price=0.03)
    f = storecast.fit(chain, SPEC, horizon=2, model="seasonal_naive", future=plan)
    assert f.warnings == []  # the plan covers the forecast weeks: nothing assumed
    with pytest.raises(DataError, match=r"deal, feature, price.*1 weeks|forecast weeks"):
        storecast.fit(chain, SPEC, horizon=3, model="drivers", future=plan)  # week 3 of the plan is missing


def test_bad_calls_name_the_problem(chain: pd.DataFrame) -> None:
    with pytest.raises(UsageError, match="DataSpec"):
        storecast.forecast(chain, None, 4)
    with pytest.raises(DataError, match="'units_sold'"):
        storecast.forecast(chain, SPEC.model_copy(update={"target": "units_sold"}), 4)
