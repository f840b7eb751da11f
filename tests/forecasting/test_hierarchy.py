"""Reconciliation on the hierarchy: leaves add up to every anchor level, exactly, always."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from departments import department_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from storecast.data.spec import RECRUITING_SPEC
from storecast.errors import UsageError
from storecast.forecasting.hierarchy import aggregate_history
from storecast.forecasting.hierarchy import reconcile as reconcile_tree
from storecast.models.baselines import SeasonalNaive


def reconcile(depts: pd.DataFrame, stores: pd.DataFrame, method: str = "top_down") -> pd.DataFrame:
    """Departments reconciled with store totals (the two-level case)."""
    return reconcile_tree(depts, ["store", "dept"], {("store",): stores}, method=method)  # type: ignore[arg-type]

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
def test_departments_reconcile_with_a_store_model(method: str) -> None:
    history = department_frame(n_stores=2, n_depts=3, n_weeks=110, seed=1)
    dept_fc = SeasonalNaive(seed=0).fit(history).predict(13)
    totals = aggregate_history(history, RECRUITING_SPEC, ("store",))
    store_fc = SeasonalNaive(seed=0).fit(totals).predict(13)
    out = reconcile(dept_fc, store_fc, method=method)
    dept_sum = dept_fc.groupby(["store", "week"], as_index=False)["yhat"].sum().rename(columns={"yhat": "dept_sum"})
    sums = out.groupby(["store", "week"], as_index=False)["yhat"].sum().merge(store_fc, on=["store", "week"])
    sums = sums.merge(dept_sum, on=["store", "week"])
    target = sums["yhat_y"] if method == "top_down" else 0.5 * (sums["yhat_y"] + sums["dept_sum"])
    assert not np.allclose(sums["yhat_y"], sums["dept_sum"])  # there is a gap to close
    np.testing.assert_allclose(sums["yhat_x"], target, rtol=1e-9)
    assert len(out) == len(dept_fc)


def _three_levels(seed: int) -> tuple[pd.DataFrame, dict[tuple[str, ...], pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    week = WEEKS[0]
    leaves = pd.DataFrame([{"region": r, "store": f"{r}{s}", "item": i, "week": week, "yhat": float(rng.uniform(0, 100))}
                           for r in "AB" for s in range(3) for i in range(4)])
    stores = leaves.groupby(["region", "store", "week"], as_index=False)["yhat"].sum()
    stores["yhat"] *= rng.uniform(0.7, 1.3, len(stores))
    regions = leaves.groupby(["region", "week"], as_index=False)["yhat"].sum()
    regions["yhat"] *= rng.uniform(0.7, 1.3, len(regions))
    return leaves, {("region",): regions, ("region", "store"): stores}


@pytest.mark.parametrize("method", ["combined", "mint", "top_down"])
def test_three_levels_reconcile_and_a_coherent_forecast_stays(method: str) -> None:
    leaves, anchors = _three_levels(3)
    keys = ["region", "store", "item"]
    mse = {("region",): 0.01, ("region", "store"): 0.02, tuple(keys): 0.05}
    out = reconcile_tree(leaves, keys, anchors, method=method, relative_mse=mse)  # type: ignore[arg-type]
    assert len(out) == len(leaves) and np.isfinite(out["yhat"]).all()
    assert not np.allclose(out["yhat"], leaves["yhat"])  # the anchors moved the leaves
    if method == "top_down":  # the top anchors decide, the leaves only share them out
        np.testing.assert_allclose(out.groupby("region")["yhat"].sum().to_numpy(),
                                   anchors[("region",)]["yhat"].to_numpy(), rtol=1e-9)
    coherent = {lv: leaves.groupby([*lv, "week"], as_index=False)["yhat"].sum() for lv in anchors}
    same = reconcile_tree(leaves, keys, coherent, method=method, relative_mse=mse)  # type: ignore[arg-type]
    np.testing.assert_allclose(same["yhat"], leaves["yhat"], rtol=1e-9, atol=1e-9)


def test_mint_trusts_the_more_accurate_level() -> None:
    leaves, anchors = _three_levels(4)
    keys = ["region", "store", "item"]
    sharp = reconcile_tree(leaves, keys, {("region",): anchors[("region",)]}, method="mint",
                           relative_mse={("region",): 1e-6, tuple(keys): 1.0})
    vague = reconcile_tree(leaves, keys, {("region",): anchors[("region",)]}, method="mint",
                           relative_mse={("region",): 1.0, tuple(keys): 1e-6})
    own = anchors[("region",)]["yhat"].to_numpy()
    np.testing.assert_allclose(sharp.groupby("region")["yhat"].sum().to_numpy(), own, rtol=1e-3)
    np.testing.assert_allclose(vague.groupby("region")["yhat"].sum().to_numpy(),
                               leaves.groupby("region")["yhat"].sum().to_numpy(), rtol=1e-3)
