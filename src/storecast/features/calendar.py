"""The retail calendar for any year: named features per week and comparable-week alignment.

A week is the Friday ending a Saturday-to-Friday retail week (see ``data.schema``). The
calendar knows where holidays really fall (``features.holidays``), so it works for years
that are not in any file, and it tells which week of an earlier year is comparable to a
given week: holidays that move (Thanksgiving, Easter, the Super Bowl, Memorial Day, Labor
Day, back-to-school) align to the same holiday's week; every other week aligns to the
Friday nearest the same calendar date, which is lag 52 with its 1-2 day drift, and lag 53
once the drift has grown past half a week (the "53-week years").

Every feature names itself: ``is_thanksgiving``, ``weeks_to_easter``,
``weeks_from_labor_day``, ``pre_christmas_1``, ``month_start_days``, ``drift_days``...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd

from storecast.features.holidays import HOLIDAYS, holiday_week

#: Every holiday the calendar knows, in calendar order.
HOLIDAY_NAMES: tuple[str, ...] = tuple(HOLIDAYS)
#: Holidays whose retail week moves against the calendar date from year to year.
MOVING_HOLIDAYS: tuple[str, ...] = (
    "super_bowl", "easter", "memorial_day", "back_to_school", "labor_day", "thanksgiving",
)
#: Weeks around each holiday's week that behave like the holiday (offsets, week of = 0).
EVENT_WINDOWS: dict[str, tuple[int, ...]] = {
    "super_bowl": (0,),
    "easter": (-1, 0),
    "memorial_day": (0,),
    "independence_day": (0,),
    "back_to_school": (-1, 0),
    "labor_day": (0,),
    "thanksgiving": (-1, 0, 1),
    "christmas": (-2, -1, 0, 1),
}
#: Pre-Christmas shopping weeks named as features (weeks before the week holding Dec 25).
PRE_CHRISTMAS_WEEKS = 3
#: Days of the month whose presence in a week carries paydays and benefit payments.
MONTH_START_DAYS = 3
#: Horizon (in weeks) at which weeks_to/weeks_from features are capped.
WEEKS_CAP = 53

_DAY = np.timedelta64(1, "D")


def _as_days(weeks: Iterable[object] | pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Week dates as a datetime64[D] array (checks they are Fridays)."""
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(weeks)).to_numpy()).normalize()
    if len(idx) and (idx.dayofweek != 4).any():
        bad = idx[idx.dayofweek != 4][0]
        raise ValueError(f"retail weeks are dated by their Friday; got {bad.date()} ({bad.day_name()})")
    return idx.to_numpy().astype("datetime64[D]")


def holiday_weeks(name: str, years: Iterable[int]) -> np.ndarray:
    """Sorted retail weeks (datetime64[D]) holding holiday ``name`` in ``years``."""
    return np.array(sorted(np.datetime64(holiday_week(name, y), "D") for y in years))


def _year_span(days: np.ndarray) -> range:
    years = days.astype("datetime64[Y]").astype(int) + 1970
    return range(int(years.min()) - 1, int(years.max()) + 2)


def _to_from(days: np.ndarray, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weeks until the next mark (0 on it) and since the previous one, capped."""
    pos = np.searchsorted(marks, days, side="left")
    nxt = marks[np.minimum(pos, len(marks) - 1)]
    to = np.where(pos < len(marks), (nxt - days) // (7 * _DAY), WEEKS_CAP)
    pos_prev = np.searchsorted(marks, days, side="right") - 1
    prev = marks[np.maximum(pos_prev, 0)]
    since = np.where(pos_prev >= 0, (days - prev) // (7 * _DAY), WEEKS_CAP)
    return np.minimum(to, WEEKS_CAP).astype(int), np.minimum(since, WEEKS_CAP).astype(int)


def _month_position(days: np.ndarray) -> dict[str, np.ndarray]:
    """Which days of the month the Saturday-to-Friday week covers."""
    start = days - 6 * _DAY
    dom_end = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(int) + 1
    dom_start = (start - start.astype("datetime64[M]").astype("datetime64[D]")).astype(int) + 1
    spans_months = dom_end < 7
    # Days 1..MONTH_START_DAYS inside the week: only when the week runs into a new month
    # (or starts on its first days).
    first_days = np.where(spans_months, np.minimum(dom_end, MONTH_START_DAYS), 0)
    first_days = np.where(~spans_months & (dom_start <= MONTH_START_DAYS), MONTH_START_DAYS - dom_start + 1, first_days)
    return {
        "day_of_month": dom_end,
        "days_in_new_month": np.where(spans_months, dom_end, 0),
        "month_start_days": first_days,
        "holds_month_start": first_days > 0,
        "holds_month_end": spans_months | (days.astype("datetime64[M]") != (days + _DAY).astype("datetime64[M]")),
    }


def drift_days(weeks: Iterable[object] | pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Calendar offset of each week vs the week 52 weeks earlier, in days.

    The week 364 days earlier sits this many days later in its year's calendar: 1, or 2
    when a 29 February falls in between.
    """
    days = _as_days(weeks)
    out = np.empty(len(days), dtype=int)
    for i, d in enumerate(pd.DatetimeIndex(days)):
        earlier = d - pd.Timedelta(days=364)
        out[i] = (earlier - _same_date(d, -1)).days
    return out


def _same_date(day: pd.Timestamp, years: int) -> pd.Timestamp:
    """The same calendar date ``years`` from ``day`` (29 Feb maps to 28 Feb)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def calendar_features(weeks: Iterable[object] | pd.Series | pd.DatetimeIndex) -> pd.DataFrame:
    """Named retail-calendar features for each week (one row per input week, same order)."""
    days = _as_days(weeks)
    out: dict[str, np.ndarray] = {}
    if len(days) == 0:
        return pd.DataFrame(columns=feature_names())
    stamps = pd.DatetimeIndex(days)
    out["week_of_year"] = ((stamps.dayofyear.to_numpy() - 1) // 7 + 1).astype(int)
    out["month"] = stamps.month.to_numpy().astype(int)
    years = _year_span(days)
    for name in HOLIDAY_NAMES:
        marks = holiday_weeks(name, years)
        to, since = _to_from(days, marks)
        out[f"is_{name}"] = to == 0
        out[f"weeks_to_{name}"] = to
        out[f"weeks_from_{name}"] = since
    for k in range(1, PRE_CHRISTMAS_WEEKS + 1):
        out[f"pre_christmas_{k}"] = out["weeks_to_christmas"] == k
    # Shopping days before Christmas that the week holds (Dec 18..24 = the last 7).
    out["christmas_shopping_days"] = _days_in_window(days, 12, 18, 12, 24)
    out.update(_month_position(days))
    out["drift_days"] = drift_days(days)
    return pd.DataFrame(out, index=range(len(days)))[feature_names()]


def _days_in_window(days: np.ndarray, m1: int, d1: int, m2: int, d2: int) -> np.ndarray:
    """How many of the week's 7 days fall between (m1, d1) and (m2, d2) of the same year."""
    count = np.zeros(len(days), dtype=int)
    for back in range(7):
        day = pd.DatetimeIndex(days - back * _DAY)
        md = day.month * 100 + day.day
        count += ((md >= m1 * 100 + d1) & (md <= m2 * 100 + d2)).astype(int)
    return count


def feature_names() -> list[str]:
    """Column names ``calendar_features`` returns, in order."""
    names = ["week_of_year", "month"]
    for name in HOLIDAY_NAMES:
        names += [f"is_{name}", f"weeks_to_{name}", f"weeks_from_{name}"]
    names += [f"pre_christmas_{k}" for k in range(1, PRE_CHRISTMAS_WEEKS + 1)]
    names += ["christmas_shopping_days", "day_of_month", "days_in_new_month", "month_start_days",
              "holds_month_start", "holds_month_end", "drift_days"]
    return names


def event_labels(weeks: Iterable[object] | pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """The holiday event each week belongs to, e.g. ``thanksgiving+0``, ``christmas-1``; ``""`` if none.

    Offsets are in weeks from the holiday's own week. When windows overlap, the holiday
    listed later in ``EVENT_WINDOWS`` wins (Christmas over Thanksgiving's week after).
    """
    days = _as_days(weeks)
    labels = np.full(len(days), "", dtype=object)
    if len(days) == 0:
        return labels
    years = _year_span(days)
    for name, offsets in EVENT_WINDOWS.items():
        marks = holiday_weeks(name, years)
        to, since = _to_from(days, marks)
        for off in offsets:
            hit = (since == off) if off >= 0 else (to == -off)
            labels[hit] = f"{name}{off:+d}"
    return labels


def comparable_week(
    weeks: Iterable[object] | pd.Series | pd.DatetimeIndex, years_back: int = 1
) -> pd.DatetimeIndex:
    """For each week, the comparable retail week ``years_back`` years earlier.

    Weeks in a moving holiday's window map to the same offset from that holiday's week in
    the earlier year (Thanksgiving to Thanksgiving); every other week maps to the Friday
    nearest the same calendar date (Christmas by days-before-Christmas, Independence Day,
    ordinary weeks), i.e. lag 52 weeks, or 53 when the calendar has drifted past 3 days.
    """
    if years_back < 1:
        raise ValueError(f"years_back must be >= 1, got {years_back}")
    days = _as_days(weeks)
    stamps = pd.DatetimeIndex(days)
    out = np.empty(len(days), dtype="datetime64[D]")
    for i, d in enumerate(stamps):
        target = _same_date(d, -years_back)
        lag_weeks = round((d - target).days / 7)
        out[i] = np.datetime64((d - pd.Timedelta(weeks=lag_weeks)).date(), "D")
    if len(days) == 0:
        return pd.DatetimeIndex(out.astype("datetime64[ns]"))
    years = _year_span(days)
    for name in MOVING_HOLIDAYS:
        marks = holiday_weeks(name, years)
        to, since = _to_from(days, marks)
        for off in EVENT_WINDOWS[name]:
            hit = (since == off) if off >= 0 else (to == -off)
            for i in np.flatnonzero(hit).tolist():
                year = int(_holiday_year(name, days[i], off))
                src = holiday_week(name, year - years_back) + dt.timedelta(weeks=off)
                out[i] = np.datetime64(src, "D")
    return pd.DatetimeIndex(out.astype("datetime64[ns]"))


def _holiday_year(name: str, day: np.datetime64, offset: int) -> int:
    """The year of the holiday whose week is ``offset`` weeks from ``day``."""
    week = pd.Timestamp(day) - pd.Timedelta(weeks=offset)
    year = week.year
    for cand in (year, year - 1, year + 1):
        if np.datetime64(holiday_week(name, cand), "D") == np.datetime64(week.date(), "D"):
            return cand
    return year


__all__ = [
    "EVENT_WINDOWS",
    "HOLIDAY_NAMES",
    "MOVING_HOLIDAYS",
    "calendar_features",
    "comparable_week",
    "drift_days",
    "event_labels",
    "feature_names",
    "holiday_weeks",
]
