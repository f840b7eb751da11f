"""Reconciliation: department forecasts add up to the store forecasts, exactly, always."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from departments import department_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from storecast.errors import UsageError
from storecast.models.baselines import SeasonalNaive
from storecast.models.reconcile import forecast_departments, reconcile, store_totals

WEEKS = pd.date_range("2012-05-04", periods=3, freq="7D")
values = st.floats(min_value=-1e6, max_value=1e7, allow_nan=False, allow_infinity=False)


@st.composite
def forecasts(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_stores = draw(st.integers(1, 3))
    rows, totals = [], []
    for store in range(1, n_stores + 1):
        depts = draw(st.lists(st.integers(1, 99), min_size=1, max_size=6, unique=True))
        for week in WEEKS:
            totals.append({"store": store, "week": week, "yhat": draw(values)})
            for dept in depts:
                y = draw(st.one_of(values, st.just(0.0)))
                rows.append({"store": store, "dept": dept, "week": week, "step": 1, "yhat": y,
                             "lo_80": y - 10.0, "hi_80": y + 10.0})
    return pd.DataFrame(rows), pd.DataFrame(totals)


@given(forecasts())
@settings(max_examples=150, deadline=None)
def test_departments_sum_to_the_store_forecast(case: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    depts, stores = case
    out = reconcile(depts, stores)
    sums = out.groupby(["store", "week"], as_index=False)["yhat"].sum().merge(stores, on=["store", "week"])
    scale = np.maximum(1.0, np.abs(depts["yhat"]).sum())
    np.testing.assert_allclose(sums["yhat_x"], sums["yhat_y"], rtol=1e-9, atol=1e-9 * scale)
    # Same rows, same order; bands move with their point forecast.
    pd.testing.assert_frame_equal(out[["store", "dept", "week"]], depts[["store", "dept", "week"]])
    np.testing.assert_allclose(out["hi_80"] - out["yhat"], 10.0, atol=1e-6 * scale)


@given(forecasts())
@settings(max_examples=50, deadline=None)
def test_a_coherent_forecast_is_left_alone(case: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    depts, _ = case
    sums = depts.groupby(["store", "week"], as_index=False)["yhat"].sum()
    out = reconcile(depts, sums)
    np.testing.assert_allclose(out["yhat"], depts["yhat"], atol=1e-6 * max(1.0, np.abs(depts["yhat"]).sum()))


def test_gap_goes_to_large_departments_and_zero_stays_zero() -> None:
    depts = pd.DataFrame({"store": 1, "dept": [1, 2, 3], "week": WEEKS[0], "yhat": [300.0, 100.0, 0.0]})
    stores = pd.DataFrame({"store": [1], "week": [WEEKS[0]], "yhat": [480.0]})
    out = reconcile(depts, stores)
    assert out["yhat"].tolist() == pytest.approx([360.0, 120.0, 0.0])


def test_all_zero_store_splits_the_gap_evenly_and_bottom_up_is_unchanged() -> None:
    depts = pd.DataFrame({"store": 1, "dept": [1, 2], "week": WEEKS[0], "yhat": [0.0, 0.0]})
    stores = pd.DataFrame({"store": [1], "week": [WEEKS[0]], "yhat": [10.0]})
    assert reconcile(depts, stores)["yhat"].tolist() == [5.0, 5.0]
    pd.testing.assert_frame_equal(reconcile(depts, stores, method="bottom_up"), depts)
    with pytest.raises(UsageError, match="unknown reconciliation method"):
        reconcile(depts, stores, method="sideways")  # type: ignore[arg-type]


@given(forecasts())
@settings(max_examples=50, deadline=None)
def test_combined_meets_halfway_between_store_and_department_sum(case: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    depts, stores = case
    out = reconcile(depts, stores, method="combined")
    before = depts.groupby(["store", "week"], as_index=False)["yhat"].sum()
    after = out.groupby(["store", "week"], as_index=False)["yhat"].sum()
    both = before.merge(after, on=["store", "week"], suffixes=("_dept", "_out")).merge(stores, on=["store", "week"])
    scale = np.maximum(1.0, np.abs(depts["yhat"]).sum())
    np.testing.assert_allclose(both["yhat_out"], 0.5 * (both["yhat"] + both["yhat_dept"]), rtol=1e-9, atol=1e-9 * scale)


def test_combined_moves_departments_half_the_gap() -> None:
    depts = pd.DataFrame({"store": 1, "dept": [1, 2, 3], "week": WEEKS[0], "yhat": [300.0, 100.0, 0.0]})
    stores = pd.DataFrame({"store": [1], "week": [WEEKS[0]], "yhat": [480.0]})
    assert reconcile(depts, stores, method="combined")["yhat"].tolist() == pytest.approx([330.0, 110.0, 0.0])


@pytest.mark.parametrize("method", ["combined", "top_down"])
def test_the_job_entry_point_reconciles_with_the_store_model(method: str) -> None:
    history = department_frame(n_stores=2, n_depts=3, n_weeks=110, seed=1)
    model = SeasonalNaive(seed=0).fit(history)
    dept_fc = model.predict(13)
    out = forecast_departments(model, history, dept_fc, 13, method=method)  # type: ignore[arg-type]
    store_fc = SeasonalNaive(seed=0).fit(store_totals(history)).predict(13)
    dept_sum = dept_fc.groupby(["store", "week"], as_index=False)["yhat"].sum().rename(columns={"yhat": "dept_sum"})
    sums = out.groupby(["store", "week"], as_index=False)["yhat"].sum().merge(store_fc, on=["store", "week"])
    sums = sums.merge(dept_sum, on=["store", "week"])
    target = sums["yhat_y"] if method == "top_down" else 0.5 * (sums["yhat_y"] + sums["dept_sum"])
    assert not np.allclose(sums["yhat_y"], sums["dept_sum"])  # there is a gap to close
    np.testing.assert_allclose(sums["yhat_x"], target, rtol=1e-9)
    assert len(out) == len(dept_fc)
