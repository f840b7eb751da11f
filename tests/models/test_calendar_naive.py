"""Calendar-aligned naive: same calendar days last year, moving holidays to their week."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storecast.models.calendar_naive import CalendarNaive, day_shares


def _series(last: str, store: int = 1) -> pd.DataFrame:
    """One store whose sales encode the week: 1000 + weeks since 2010-02-05."""
    weeks = pd.date_range("2010-02-05", last, freq="7D")
    return pd.DataFrame({"store": store, "week": weeks, "sales": 1000.0 + np.arange(len(weeks))})


def _value(week: str) -> float:
    return 1000.0 + (pd.Timestamp(week) - pd.Timestamp("2010-02-05")).days / 7


def _forecast(history: pd.DataFrame, horizon: int = 13) -> pd.Series:
    pred = CalendarNaive().fit(history).predict(horizon)
    return pred.set_index("week")["yhat"]


def test_pre_christmas_week_takes_the_same_calendar_days() -> None:
    yhat = _forecast(_series("2011-10-28"))
    # Dec 17-23 2011 = Dec 17 2010 (week ending Dec 17) + Dec 18-23 2010 (week ending Dec 24).
    expected = (6 * _value("2010-12-24") + _value("2010-12-17")) / 7
    assert yhat[pd.Timestamp("2011-12-23")] == pytest.approx(expected)
    # Thanksgiving moves with the holiday: its week maps to last year's Thanksgiving week.
    assert yhat[pd.Timestamp("2011-11-25")] == pytest.approx(_value("2010-11-26"))


def test_leap_day_drift_and_moving_easter() -> None:
    yhat = _forecast(_series("2012-01-27"))
    # Across 29 Feb 2012 the lag-52 week sits 2 days late: 5/7 of it, 2/7 of the week before.
    expected = (5 * _value("2011-03-11") + 2 * _value("2011-03-04")) / 7
    assert yhat[pd.Timestamp("2012-03-09")] == pytest.approx(expected)
    # Easter 2012 (8 Apr) week compares with Easter 2011 (24 Apr) week, not lag 52.
    assert yhat[pd.Timestamp("2012-04-13")] == pytest.approx(_value("2011-04-29"))


def test_missing_neighbour_and_new_series_fall_back() -> None:
    history = _series("2011-10-28")
    history = history[history["week"] != pd.Timestamp("2010-12-17")]
    new = _series("2011-10-28", store=2).tail(6)
    yhat = CalendarNaive().fit(pd.concat([history, new])).predict(13)
    one = yhat[yhat["store"] == 1].set_index("week")["yhat"]
    assert one[pd.Timestamp("2011-12-23")] == pytest.approx(_value("2010-12-24"))
    two = yhat[yhat["store"] == 2]["yhat"]
    assert np.allclose(two, new["sales"].mean())


def test_day_shares_beyond_one_year() -> None:
    weeks = pd.date_range("2012-12-21", periods=2, freq="7D")
    shares = day_shares(weeks, 2)
    # Two years back, Dec 15-21 2010: the comparable week ends Dec 24 2010 (3 days late).
    assert shares["comp"].iloc[0] == pd.Timestamp("2010-12-24")
    assert shares["neighbour"].iloc[0] == pd.Timestamp("2010-12-17")
    assert shares["share"].iloc[0] == pytest.approx(3 / 7)


def _two_views(history: pd.DataFrame, horizon: int) -> tuple[pd.Series, pd.Series]:
    one = CalendarNaive(years=1).fit(history).predict(horizon).set_index("week")["yhat"]
    two = CalendarNaive(years=2).fit(history).predict(horizon).set_index("week")["yhat"]
    return one, two


def test_two_years_average_the_releveled_older_view() -> None:
    # Sales encode the week (1000 + t): the level over the last 52 weeks vs the 52 before is
    # known exactly, so the older year's view re-levelled by it is checkable by hand.
    history = _series("2012-01-27")
    one, two = _two_views(history, 13)
    t = np.arange(len(history))
    ratio = (1000.0 + t[-52:]).sum() / (1000.0 + t[-104:-52]).sum()
    week = pd.Timestamp("2012-02-24")  # ordinary week: 1 year back = same days of 2011, 2 = of 2010
    assert two[week] == pytest.approx((one[week] + _two_back(history, week) * ratio) / 2)


def _two_back(history: pd.DataFrame, week: pd.Timestamp) -> float:
    shares = day_shares(pd.DatetimeIndex([week]), 2).iloc[0]
    values = history.set_index("week")["sales"]
    return float((1 - shares["share"]) * values[shares["comp"]] + shares["share"] * values[shares["neighbour"]])


def test_two_years_cut_noise_and_fall_back_to_one_year() -> None:
    rng = np.random.default_rng(5)
    weeks = pd.date_range("2010-02-05", "2012-10-26", freq="7D")
    season = 1000 + 300 * np.sin(2 * np.pi * np.arange(len(weeks)) / 52.18)
    frames = [pd.DataFrame({"store": s, "week": weeks, "sales": season * (1 + 0.05 * s) + rng.normal(0, 60, len(weeks))})
              for s in range(1, 31)]
    full = pd.concat(frames, ignore_index=True)
    cutoff = pd.Timestamp("2012-01-27")
    history, actual = full[full["week"] <= cutoff], full[full["week"] > cutoff]
    errors = {}
    for years in (1, 2):
        pred = CalendarNaive(years=years).fit(history).predict(39).merge(actual, on=["store", "week"])
        errors[years] = float(np.abs(pred["yhat"] - pred["sales"]).mean())
    assert errors[2] < 0.9 * errors[1]  # two noisy views of the season average out
    # With a single year of history there is nothing to average: identical forecasts.
    short = history[history["week"] > cutoff - pd.Timedelta(weeks=60)]
    one, two = _two_views(short, 13)
    pd.testing.assert_series_equal(one, two)


def test_an_older_year_at_another_level_is_left_out() -> None:
    history = _series("2012-01-27")
    history.loc[history["week"] <= "2011-01-28", "sales"] *= 5  # the older year 5x larger
    one, two = _two_views(history, 13)
    pd.testing.assert_series_equal(one, two)
