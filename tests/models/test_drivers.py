"""The planned-drivers model: a pooled promotion lift it must recover, calibrated monotone
quantiles, an exact decomposition and an artifact that predicts the same after loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from storecast.data.spec import CalendarSpec, SeriesSpec, WeekSpec
from storecast.models.base import Forecaster
from storecast.models.drivers import DriversModel

HORIZON = 13
KEYS = ["store", "brand"]
#: Dominick's shape: Thursday-start weeks, planned price/deal/feature, a store attribute.
SPEC = SeriesSpec(keys=("store", "brand"), known_future=("price", "deal", "feature"), static=("income",),
                  calendar=CalendarSpec(WeekSpec.parse("WED", "start"), None), missing_weeks="gap",
                  key_types=("int", "text"))
SMALL = {"n_estimators": 120, "max_rows": 30_000, "min_data_in_leaf": 100, "num_leaves": 7}
DEAL_LIFT = 2.0


def promo_panel(n_stores: int = 8, n_weeks: int = 90, seed: int = 5) -> pd.DataFrame:
    """Stores x brands, Thursday weeks; a deal doubles sales, a 10% price cut adds 30%,
    a feature ad adds 50%, a rival brand's deal takes 15%; log-normal noise (sd 0.15)."""
    rng = np.random.default_rng(seed)
    brands = ["Alpha 64oz", "Beta 64oz", "Gamma 96oz"]
    weeks = pd.date_range("1990-06-14", periods=n_weeks, freq="7D")
    rows = []
    deal = rng.random((n_stores, len(brands), n_weeks)) < 0.2
    for s in range(n_stores):
        store_level = rng.normal(8.0, 0.5)
        for b, brand in enumerate(brands):
            regular = 0.03 + 0.005 * b
            cut = np.where(deal[s, b], 0.1, 0.0)
            feature = (deal[s, b] & (rng.random(n_weeks) < 0.5)).astype(float)
            rivals = deal[s, [k for k in range(len(brands)) if k != b]].mean(axis=0)
            log_sales = (store_level + 0.3 * b + np.log(DEAL_LIFT) * deal[s, b] + 3.0 * cut
                         + np.log(1.5) * feature - 0.15 * rivals + rng.normal(0, 0.15, n_weeks))
            rows.append(pd.DataFrame({
                "store": s + 1, "brand": brand, "week": weeks, "sales": np.round(np.exp(log_sales)),
                "price": regular * (1 - cut), "deal": deal[s, b].astype(float), "feature": feature,
                "income": 10.0 + s,
            }))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return promo_panel()


@pytest.fixture(scope="module")
def split(panel: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    cutoff = panel["week"].max() - pd.Timedelta(weeks=HORIZON)
    return panel[panel["week"] <= cutoff], panel[panel["week"] > cutoff]


@pytest.fixture(scope="module")
def model(split: tuple[pd.DataFrame, pd.DataFrame]) -> DriversModel:
    return DriversModel(seed=1, **SMALL).fit(split[0], SPEC)


def _regular_plan(test: pd.DataFrame) -> pd.DataFrame:
    plan = test.drop(columns="sales").copy()
    plan["deal"] = 0.0
    plan["feature"] = 0.0
    plan["price"] = plan.groupby("brand")["price"].transform("max")
    return plan


def test_a_planned_deal_gets_the_pooled_lift(model: DriversModel, split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    plan = _regular_plan(split[1])
    week = plan["week"].min() + pd.Timedelta(weeks=4)
    on_deal = plan.copy()
    deal_rows = on_deal["week"] == week
    on_deal.loc[deal_rows, "deal"] = 1.0
    on_deal.loc[deal_rows, "price"] *= 0.9
    base = model.predict(HORIZON, plan).set_index([*KEYS, "week"])["yhat"]
    promoted = model.predict(HORIZON, on_deal).set_index([*KEYS, "week"])["yhat"]
    ratio = (promoted / base).xs(week, level="week")
    # the deal (x2) and the 10% cut (x1.35), lessened by every rival's deal (x0.86^2)
    assert 1.8 < float(np.median(ratio)) < 3.6
    others = (promoted / base).drop(week, level="week")
    assert float(np.median(others)) == pytest.approx(1.0, abs=0.15)


def test_quantiles_are_monotone_and_roughly_calibrated(model: DriversModel, split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    test = split[1]
    qs = model.predict_quantiles(HORIZON, test.drop(columns="sales"))
    cols = [f"q{q}" for q in range(10, 100, 10)]
    assert list(qs.columns) == [*KEYS, "week", "step", *cols]
    values = qs[cols].to_numpy()
    assert (np.diff(values, axis=1) >= 0).all()
    scored = test.merge(qs, on=[*KEYS, "week"])
    inside = ((scored["sales"] >= scored["q10"]) & (scored["sales"] <= scored["q90"])).mean()
    below = (scored["sales"] <= scored["q50"]).mean()
    assert 0.6 < inside < 0.97
    assert 0.3 < below < 0.7


def test_any_levels_and_no_calibration_give_the_point(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    model = DriversModel(seed=1, calibrate=False, **SMALL).fit(split[0], SPEC)
    future = split[1].drop(columns="sales")
    qs = model.predict_quantiles(HORIZON, future, levels=(0.05, 0.5, 0.975))
    point = model.predict(HORIZON, future)
    assert list(qs.columns)[-3:] == ["q05", "q50", "q98"]
    np.testing.assert_allclose(qs["q05"], point["yhat"])
    with pytest.raises(Exception, match="levels"):
        model.predict_quantiles(HORIZON, future, levels=(0.0, 0.5))


def test_decomposition_is_exact_and_sees_the_own_deal(model: DriversModel, split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    future = split[1].drop(columns="sales")
    parts = model.decompose(HORIZON, future)
    np.testing.assert_allclose(parts["baseline"] + parts["competition"] + parts["own_drivers"], parts["yhat"], rtol=1e-9)
    pd.testing.assert_series_equal(parts["yhat"], model.predict(HORIZON, future)["yhat"])
    merged = parts.merge(future, on=[*KEYS, "week"])
    on_deal = merged[merged["deal"] > 0]
    off = merged[(merged["deal"] == 0) & (merged["feature"] == 0)]
    assert (on_deal["own_drivers"] / on_deal["yhat"]).median() > 0.3
    assert (off["own_drivers"] / off["yhat"]).abs().median() < 0.15


def test_saved_model_predicts_the_same(model: DriversModel, split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    future = split[1].drop(columns="sales")
    folder = model.save(tmp_path / "drivers")
    assert (folder / "lightgbm.txt").read_text().startswith("tree")
    assert not list(folder.glob("*.pkl"))
    loaded = Forecaster.load(folder)
    pd.testing.assert_frame_equal(model.predict(HORIZON, future), loaded.predict(HORIZON, future))
    assert isinstance(loaded, DriversModel)
    pd.testing.assert_frame_equal(model.predict_quantiles(HORIZON, future), loaded.predict_quantiles(HORIZON, future))


def test_same_seed_same_forecast(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    future = split[1].drop(columns="sales")
    a = DriversModel(seed=2, calibrate=False, **SMALL).fit(split[0], SPEC).predict(HORIZON, future)
    b = DriversModel(seed=2, calibrate=False, **SMALL).fit(split[0], SPEC).predict(HORIZON, future)
    pd.testing.assert_frame_equal(a, b)


def test_missing_declared_driver_is_a_clear_error(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    with pytest.raises(Exception, match="declared drivers"):
        DriversModel(drivers=("price", "deal", "display")).fit(split[0], SPEC)
