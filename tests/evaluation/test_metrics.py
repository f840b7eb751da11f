"""Probabilistic and scaled metrics: WAPE, WQL, interval score, MASE (hand-checked values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storecast.evaluation.metrics import (
    interval_score,
    mase,
    quantile_loss,
    seasonal_naive_scale,
    wape,
    wmape,
    wql,
)


def test_wape_is_wmape_under_the_benchmarks_name() -> None:
    y, yhat = [10.0, -2.0, 5.0], [8.0, 0.0, 5.0]
    assert wape(y, yhat) == wmape(y, yhat) == pytest.approx(100 * 4 / 17)


def test_wql_by_hand_and_its_median_level_is_wape() -> None:
    y = np.array([10.0, 20.0])
    q = np.array([[8.0, 11.0], [21.0, 25.0]])  # levels 0.1 and 0.9
    # level 0.1: y=10 above q=8 -> 0.1*2 = 0.2; y=20 below 21 -> 0.9*1 = 0.9  => 1.1
    # level 0.9: y=10 below 11 -> 0.1*1 = 0.1; y=20 below 25 -> 0.1*5 = 0.5  => 0.6
    assert quantile_loss(y, q, [0.1, 0.9]) == pytest.approx([1.1, 0.6])
    assert wql(y, q, [0.1, 0.9]) == pytest.approx(np.mean([2 * 1.1 / 30, 2 * 0.6 / 30]))
    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 100.0, 500)
    yhat = y * rng.normal(1.0, 0.2, 500)
    assert wql(y, yhat[:, None], [0.5]) == pytest.approx(wape(y, yhat) / 100)
    assert wql(y, np.column_stack([y, y]), [0.2, 0.8]) == 0.0


def test_wql_rejects_misshapen_quantiles_and_levels_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="rows x levels"):
        wql([1.0, 2.0], [[1.0, 2.0]], [0.5, 0.6])
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        wql([1.0], [[1.0]], [1.0])


def test_wql_skips_rows_with_missing_values() -> None:
    y = [10.0, np.nan, 20.0]
    q = [[10.0], [5.0], [18.0]]
    assert wql(y, q, [0.5]) == pytest.approx(2 * 0.5 * 2 / 30)


def test_interval_score_is_width_plus_penalty_outside() -> None:
    # 80% interval: alpha = 0.2, penalty 2/alpha = 10 per unit outside.
    assert interval_score([5.0], [4.0], [6.0], 80) == pytest.approx(2.0)
    assert interval_score([7.0], [4.0], [6.0], 80) == pytest.approx(2.0 + 10 * 1.0)
    assert interval_score([3.5, 5.0], [4.0, 4.0], [6.0, 6.0], 80) == pytest.approx((2.0 + 10 * 0.5 + 2.0) / 2)


def test_mase_of_the_seasonal_naive_on_its_own_history_is_one() -> None:
    weeks = pd.date_range("2020-01-03", periods=120, freq="7D")
    rng = np.random.default_rng(1)
    frames = []
    for store in (1, 2):
        sales = 100 * store + 10 * np.sin(np.arange(120) * 2 * np.pi / 52) + rng.normal(0, 3, 120)
        frames.append(pd.DataFrame({"store": store, "week": weeks, "sales": sales}))
    history = pd.concat(frames, ignore_index=True)
    scale = seasonal_naive_scale(history, ["store"])
    assert list(scale["store"]) == [1, 2] and (scale["scale"] > 0).all()
    lagged = history.copy()
    lagged["week"] = lagged["week"] + pd.Timedelta(weeks=52)
    pairs = history.merge(lagged, on=["store", "week"], suffixes=("", "_ly")).merge(scale, on="store")
    assert mase(pairs["sales"], pairs["sales_ly"], pairs["scale"]) == pytest.approx(1.0)
    assert mase([1.0, 2.0], [1.0, 4.0], [0.0, 2.0]) == pytest.approx(1.0)  # scale 0 left out
