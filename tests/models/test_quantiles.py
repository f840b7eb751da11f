"""Scaled conformal quantiles: monotone, median = point, calibrated on fresh data, scale learned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storecast.errors import UsageError
from storecast.evaluation.metrics import coverage, wql
from storecast.models.quantiles import (
    DEFAULT_LEVELS,
    ScaledQuantiles,
    quantile_column,
    quantile_forecast,
    series_noise,
)


def _panel(seed: int, n_series: int = 300, steps: int = 13) -> pd.DataFrame:
    """Series of very different sizes whose errors grow like level**0.5 and with the step."""
    rng = np.random.default_rng(seed)
    level = np.exp(rng.uniform(np.log(50), np.log(50_000), n_series))
    rows = []
    for step in range(1, steps + 1):
        yhat = level * rng.uniform(0.8, 1.2, n_series)
        sd = 3.0 * np.sqrt(yhat) * (1 + 0.05 * step)
        y = yhat + sd * rng.standard_t(5, n_series)
        rows.append(pd.DataFrame({"series": np.arange(n_series), "step": step, "yhat": yhat, "y": y}))
    return pd.concat(rows, ignore_index=True)


def test_quantiles_are_monotone_with_the_median_at_the_point_forecast() -> None:
    cal, new = _panel(0), _panel(1)
    out = quantile_forecast(new.drop(columns="y"), cal, [0.9, 0.1, 0.5, 0.25], keys=["series"])
    q = out[[quantile_column(lv) for lv in (0.1, 0.25, 0.5, 0.9)]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    assert np.allclose(out["q0.5"], out["yhat"])
    assert (out["lo_95"] <= out["lo_80"]).all() and (out["hi_80"] <= out["hi_95"]).all()


def test_bands_cover_fresh_data_and_the_scale_beats_a_relative_band() -> None:
    cal, new = _panel(0), _panel(1)
    fitted = ScaledQuantiles.from_residuals(cal, keys=["series"])
    out = fitted.apply(new.drop(columns="y"), keys=["series"])
    assert 77 <= coverage(new["y"], out["lo_80"], out["hi_80"]) <= 83
    assert 93 <= coverage(new["y"], out["lo_95"], out["hi_95"]) <= 97
    # errors grow like level**0.5: the fitted exponent says so, and a band proportional to
    # the forecast (the level feature with exponent 1) scores a worse quantile loss.
    assert fitted.coef[1] == pytest.approx(0.5, abs=0.1)
    relative = ScaledQuantiles.from_residuals(cal.iloc[:100], keys=["series"])  # too few: level alone
    assert relative.features == ("level",) and relative.coef == (0.0, 1.0)
    levels = list(DEFAULT_LEVELS)
    cols = [quantile_column(lv) for lv in levels]
    scaled = wql(new["y"], out[cols], levels)
    proportional = wql(new["y"], relative.apply(new.drop(columns="y"), keys=["series"])[cols], levels)
    assert scaled < 0.9 * proportional


def test_steps_beyond_the_calibrated_ones_widen_through_the_step_term() -> None:
    fitted = ScaledQuantiles.from_residuals(_panel(0), keys=["series"])
    far = pd.DataFrame({"series": [0, 0], "step": [13, 39], "yhat": [1000.0, 1000.0]})
    width = fitted.apply(far, keys=["series"]).eval("hi_80 - lo_80")
    assert width[1] > width[0]


def test_noise_feature_and_round_trip() -> None:
    cal = _panel(0)
    rng = np.random.default_rng(2)
    noise = pd.DataFrame({"series": np.arange(300), "noise": rng.uniform(1, 10, 300)})
    fitted = ScaledQuantiles.from_residuals(cal.merge(noise, on="series"), keys=["series"])
    assert fitted.features == ("level", "noise", "step")
    again = ScaledQuantiles.from_record(fitted.to_record())
    frame = _panel(1).merge(noise, on="series").drop(columns="y")
    pd.testing.assert_frame_equal(fitted.apply(frame, keys=["series"]), again.apply(frame, keys=["series"]))
    # Without the column the feature is dropped rather than failing.
    assert ScaledQuantiles.from_residuals(cal, keys=["series"]).features == ("level", "step")
    with pytest.raises(UsageError, match="levels"):
        fitted.z([0.0, 0.5])


def test_series_noise_counts_only_consecutive_weeks() -> None:
    weeks = pd.date_range("2021-01-01", periods=6, freq="7D")
    history = pd.DataFrame({
        "store": [1] * 6 + [2] * 3,
        "week": list(weeks) + [weeks[0], weeks[2], weeks[3]],
        "sales": [10, 12, 9, 9, 15, 14, 5, 100, 104],
    })
    noise = series_noise(history, ["store"]).set_index("store")["noise"]
    assert noise[1] == pytest.approx((2 + 3 + 0 + 6 + 1) / 5)
    assert noise[2] == pytest.approx(4.0)  # the 2-week gap is not a change
