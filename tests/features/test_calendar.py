"""The retail calendar: holidays land in the right week for any year, features are consistent."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storecast.features.calendar import (
    HOLIDAY_NAMES,
    calendar_features,
    comparable_week,
    drift_days,
    event_labels,
    feature_names,
)
from storecast.features.holidays import holiday_week


@pytest.mark.parametrize(
    ("name", "year", "week"),
    [
        ("thanksgiving", 2010, "2010-11-26"),
        ("thanksgiving", 2013, "2013-11-29"),
        ("christmas", 2010, "2010-12-31"),  # Christmas on a Saturday opens the week
        ("christmas", 2012, "2012-12-28"),
        ("super_bowl", 2012, "2012-02-10"),
        ("super_bowl", 2021, "2021-02-12"),  # first Sunday of February
        ("super_bowl", 2022, "2022-02-18"),  # second Sunday since the 2022 season
        ("easter", 2011, "2011-04-29"),
        ("easter", 2012, "2012-04-13"),
        ("labor_day", 2011, "2011-09-09"),
        ("memorial_day", 2030, "2030-05-31"),
    ],
)
def test_holiday_weeks_for_many_years(name: str, year: int, week: str) -> None:
    assert holiday_week(name, year) == dt.date.fromisoformat(week)
    feats = calendar_features(pd.DatetimeIndex([week]))
    assert bool(feats.loc[0, f"is_{name}"])


def test_features_name_themselves_and_keep_order() -> None:
    weeks = pd.date_range("2010-11-05", "2011-01-14", freq="7D")
    feats = calendar_features(weeks[::-1])
    assert list(feats.columns) == feature_names()
    assert {f"weeks_to_{h}" for h in HOLIDAY_NAMES} <= set(feats.columns)
    by_week = feats.set_axis(weeks[::-1])
    assert by_week.loc["2010-12-24", "pre_christmas_1"]
    assert by_week.loc["2010-12-24", "christmas_shopping_days"] == 7
    assert by_week.loc["2010-12-31", "christmas_shopping_days"] == 0
    assert by_week.loc["2010-12-03", "month_start_days"] == 3
    assert by_week.loc["2010-11-26", "weeks_to_christmas"] == 5


def test_christmas_eve_shifts_into_the_christmas_week() -> None:
    # 2011: Christmas on Sunday, so the week holding it also holds Christmas Eve.
    feats = calendar_features(pd.DatetimeIndex(["2011-12-23", "2011-12-30"]))
    assert list(feats["christmas_shopping_days"]) == [6, 1]


def test_event_labels() -> None:
    weeks = pd.DatetimeIndex(["2010-11-19", "2010-11-26", "2010-12-03", "2010-12-24", "2011-03-04"])
    assert list(event_labels(weeks)) == ["thanksgiving-1", "thanksgiving+0", "thanksgiving+1", "christmas-1", ""]


def test_comparable_week_aligns_moving_holidays() -> None:
    # Thanksgiving 2013 is lag 52 + 1 week from Thanksgiving 2012.
    assert comparable_week(pd.DatetimeIndex(["2013-11-29"]))[0] == pd.Timestamp("2012-11-23")
    # Easter 2012 (week of 13 April) aligns with Easter 2011 (week of 29 April).
    assert comparable_week(pd.DatetimeIndex(["2012-04-13"]))[0] == pd.Timestamp("2011-04-29")
    # An ordinary week: lag 52.
    assert comparable_week(pd.DatetimeIndex(["2012-06-15"]))[0] == pd.Timestamp("2011-06-17")
    # Six years back the drift has grown past half a week: lag 313 instead of 312.
    assert comparable_week(pd.DatetimeIndex(["2016-06-03"]), 6)[0] == pd.Timestamp("2010-06-04")


def test_rejects_non_fridays() -> None:
    with pytest.raises(ValueError, match="Friday"):
        calendar_features(pd.DatetimeIndex(["2012-06-14"]))


fridays = st.integers(min_value=0, max_value=52 * 110).map(
    lambda k: pd.Timestamp("1990-01-05") + pd.Timedelta(weeks=k)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(fridays, min_size=1, max_size=8))
def test_calendar_invariants(weeks: list[pd.Timestamp]) -> None:
    idx = pd.DatetimeIndex(weeks)
    feats = calendar_features(idx)
    assert len(feats) == len(idx)
    for name in HOLIDAY_NAMES:
        on = feats[f"is_{name}"].to_numpy()
        assert np.array_equal(on, feats[f"weeks_to_{name}"].to_numpy() == 0)
        assert np.array_equal(on, feats[f"weeks_from_{name}"].to_numpy() == 0)
        # Every holiday comes once a year: never more than 53 weeks away.
        assert (feats[f"weeks_to_{name}"] <= 53).all() and (feats[f"weeks_from_{name}"] <= 53).all()
    assert feats["month_start_days"].between(0, 3).all()
    assert set(np.unique(drift_days(idx))) <= {1, 2}
    one = comparable_week(idx, 1)
    assert (one.dayofweek == 4).all()
    lag = (idx - one).days // 7
    # Easter moves up to five weeks between years; everything else by at most one.
    assert lag.min() >= 46 and lag.max() <= 58
    assert (idx - one).days.to_numpy().min() % 7 == 0


@settings(max_examples=40, deadline=None)
@given(fridays, st.integers(min_value=1, max_value=6))
def test_ordinary_weeks_align_to_the_nearest_calendar_date(week: pd.Timestamp, years: int) -> None:
    if event_labels(pd.DatetimeIndex([week]))[0]:
        return
    back = comparable_week(pd.DatetimeIndex([week]), years)[0]
    try:
        same = week.replace(year=week.year - years)
    except ValueError:
        same = week.replace(year=week.year - years, day=28)
    assert abs((back - same).days) <= 3
