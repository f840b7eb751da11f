"""The retail calendar for any year, any week and any country: named features per week and
comparable-week alignment.

A ``RetailCalendar`` is built from a ``CalendarSpec`` (``data.spec``): the week (the weekday
it ends on, and whether its first or last day names it), the holidays (the US retail events,
or a country's public holidays from the ``holidays`` package) and the retailer's events. It
knows where each holiday really falls, so it works for years that are not in any file, and
it tells which week of an earlier year is comparable to a given week: holidays that move
(Thanksgiving, Easter, the Super Bowl, ...; for another country every holiday whose date
changes from year to year, and recurring retailer events) align to the same holiday's week;
every other week aligns to the week ending nearest the same calendar date, which is lag 52
with its 1-2 day drift, and lag 53 once the drift has grown past half a week.

Every feature names itself: ``is_thanksgiving``, ``weeks_to_easter``,
``weeks_from_labor_day``, ``pre_christmas_1``, ``month_start_days``, ``drift_days``...
Week dates in and out are the data's own labels; internally the calendar works on the last
day of each week. The module-level functions are the Walmart calendar's (US retail
holidays, Saturday-to-Friday weeks named by their Friday).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from storecast.data.spec import US_RETAIL, CalendarSpec
from storecast.features.holidays import (
    FLAGGED_HOLIDAYS,
    US_RETAIL_HOLIDAYS,
    HolidaySource,
    country_holidays,
    event_holidays,
)

#: The US retail calendar's holidays that move against the calendar date from year to year.
MOVING_HOLIDAYS: tuple[str, ...] = (
    "super_bowl", "easter", "memorial_day", "back_to_school", "labor_day", "thanksgiving",
)
#: Weeks around each US holiday's week that behave like the holiday (offsets, week of = 0).
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
#: Every holiday the US retail calendar knows, in calendar order.
HOLIDAY_NAMES: tuple[str, ...] = tuple(US_RETAIL_HOLIDAYS.names)
#: Pre-Christmas shopping weeks named as features (weeks before the week holding Dec 25).
PRE_CHRISTMAS_WEEKS = 3
#: Days of the month whose presence in a week carries paydays and benefit payments.
MONTH_START_DAYS = 3
#: Horizon (in weeks) at which weeks_to/weeks_from features are capped.
WEEKS_CAP = 53
#: Years looked at to tell a moving holiday from a fixed-date one.
_MOVING_PROBE = range(2001, 2031)

_DAY = np.timedelta64(1, "D")
_LABEL_RE = re.compile(r"^(?P<name>.+?)(?P<offset>[+-]\d+)$")


def _same_date(day: pd.Timestamp, years: int) -> pd.Timestamp:
    """The same calendar date ``years`` from ``day`` (29 Feb maps to 28 Feb)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _to_from(days: np.ndarray, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weeks until the next mark (0 on it) and since the previous one, capped."""
    if len(marks) == 0:
        capped = np.full(len(days), WEEKS_CAP, dtype=int)
        return capped, capped.copy()
    pos = np.searchsorted(marks, days, side="left")
    nxt = marks[np.minimum(pos, len(marks) - 1)]
    to = np.where(pos < len(marks), (nxt - days) // (7 * _DAY), WEEKS_CAP)
    pos_prev = np.searchsorted(marks, days, side="right") - 1
    prev = marks[np.maximum(pos_prev, 0)]
    since = np.where(pos_prev >= 0, (days - prev) // (7 * _DAY), WEEKS_CAP)
    return np.minimum(to, WEEKS_CAP).astype(int), np.minimum(since, WEEKS_CAP).astype(int)


def _year_span(days: np.ndarray) -> range:
    years = days.astype("datetime64[Y]").astype(int) + 1970
    return range(int(years.min()) - 1, int(years.max()) + 2)


class RetailCalendar:
    """Holidays placed in the data's weeks, calendar features, and year-over-year alignment."""

    def __init__(self, spec: CalendarSpec = US_RETAIL) -> None:
        self.spec = spec
        self.week = spec.week
        sources: list[HolidaySource] = []
        if spec.country == "US":
            sources.append(US_RETAIL_HOLIDAYS)
        elif spec.country:
            sources.append(country_holidays(spec.country))
        if spec.events:
            sources.append(event_holidays(spec.events))
        self._sources = sources
        self._owner = {name: src for src in sources for name in src.names}
        self.labels = {name: src.labels.get(name, name) for src in sources for name in src.names}
        us = spec.country == "US"
        if us:
            self.windows = dict(EVENT_WINDOWS)
            self.windows.update({n: (0,) for n in self._owner if n not in EVENT_WINDOWS})
            self.moving = MOVING_HOLIDAYS + tuple(n for n in self._owner if n not in EVENT_WINDOWS and self._moves(n))
            self.flagged: tuple[str, ...] = FLAGGED_HOLIDAYS
            self.christmas: str | None = "christmas"
        else:
            self.christmas = next((n for n in self._owner if self._on_christmas(n)), None)
            self.windows = {n: self._window(n) for n in self._owner}
            self.moving = tuple(n for n in self._owner if self._moves(n))
            self.flagged = tuple(self._owner)
        #: every holiday and event, in the order of ``windows`` (later wins where windows overlap)
        self.holidays: tuple[str, ...] = tuple(self.windows)

    # ---- holiday dates --------------------------------------------------------------------
    def _date(self, name: str, year: int) -> dt.date | None:
        return self._owner[name].date(name, year)

    def _moves(self, name: str) -> bool:
        seen = {(d.month, d.day) for y in _MOVING_PROBE if (d := self._date(name, y)) is not None}
        return len(seen) > 1

    def _on_christmas(self, name: str) -> bool:
        days = [d for y in _MOVING_PROBE if (d := self._date(name, y)) is not None]
        return bool(days) and all((d.month, d.day) == (12, 25) for d in days)

    def _window(self, name: str) -> tuple[int, ...]:
        if name == self.christmas:
            return EVENT_WINDOWS["christmas"]
        if "easter" in name or "good_friday" in name:
            return (-1, 0)
        return (0,)

    def holiday_end(self, name: str, year: int) -> dt.date | None:
        """The last day of the week holding holiday ``name`` in ``year`` (None if it does not occur)."""
        day = self._date(name, year)
        return None if day is None else self.week.end_containing(day)

    def holiday_week(self, name: str, year: int) -> dt.date | None:
        """The label date of the week holding holiday ``name`` in ``year``."""
        end = self.holiday_end(name, year)
        return None if end is None else end - dt.timedelta(days=self.week.offset_days)

    def _marks(self, name: str, years: Iterable[int]) -> np.ndarray:
        """Sorted week ends (datetime64[D]) holding holiday ``name`` in ``years``."""
        ends = [np.datetime64(e, "D") for y in years if (e := self.holiday_end(name, y)) is not None]
        return np.array(sorted(ends), dtype="datetime64[D]")

    def holiday_weeks(self, name: str, years: Iterable[int]) -> np.ndarray:
        """Sorted label dates (datetime64[D]) of the weeks holding ``name`` in ``years``."""
        return self._marks(name, years) - self.week.offset_days * _DAY

    def flagged_weeks(self, first: dt.date, last: dt.date) -> list[dt.date]:
        """Label dates between ``first`` and ``last`` of weeks holding a flagged holiday (the
        Walmart files' four for the US retail calendar; every holiday otherwise)."""
        out = {self.holiday_week(n, y) for y in range(first.year - 1, last.year + 2) for n in self.flagged}
        return sorted(w for w in out if w is not None and first <= w <= last)

    def named_weeks(self, first: pd.Timestamp, last: pd.Timestamp, names: Iterable[str] | None = None) -> dict[pd.Timestamp, str]:
        """Week label -> display name of every (or each named) holiday's week in the span."""
        out: dict[pd.Timestamp, str] = {}
        for year in range(first.year - 1, last.year + 2):
            for name in (self.flagged if names is None else names):
                week = self.holiday_week(name, year)
                if week is not None and first <= pd.Timestamp(week) <= last:
                    stamp = pd.Timestamp(week)
                    out[stamp] = f"{out[stamp]}, {self.labels[name]}" if stamp in out else self.labels[name]
        return dict(sorted(out.items()))

    # ---- weeks ---------------------------------------------------------------------------------
    def _as_days(self, weeks: Iterable[object] | pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """Week labels -> the weeks' last days as datetime64[D] (checks the labels' weekday)."""
        idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(weeks)).to_numpy()).normalize()
        expected = self.week.label_weekday
        if len(idx) and (idx.dayofweek != expected).any():
            bad = idx[idx.dayofweek != expected][0]
            raise ValueError(f"weeks are dated by their {('last', 'first')[self.week.offset_days > 0]} day, a "
                             f"{pd.Timestamp(2024, 1, 1 + expected).day_name()} ({self.week.describe()}); "
                             f"got {bad.date()} ({bad.day_name()})")
        days = idx.to_numpy().astype("datetime64[D]")
        return days + self.week.offset_days * _DAY

    def _labels(self, ends: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex((ends - self.week.offset_days * _DAY).astype("datetime64[ns]"))

    def drift_days(self, weeks: Iterable[object] | pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """Calendar offset of each week vs the week 52 weeks earlier, in days.

        The week 364 days earlier sits this many days later in its year's calendar: 1, or 2
        when a 29 February falls in between.
        """
        days = self._as_days(weeks)
        out = np.empty(len(days), dtype=int)
        for i, d in enumerate(pd.DatetimeIndex(days)):
            earlier = d - pd.Timedelta(days=364)
            out[i] = (earlier - _same_date(d, -1)).days
        return out

    def feature_names(self) -> list[str]:
        """Column names ``calendar_features`` returns, in order."""
        names = ["week_of_year", "month"]
        for name in self.holidays:
            names += [f"is_{name}", f"weeks_to_{name}", f"weeks_from_{name}"]
        if self.christmas is not None:
            names += [f"pre_christmas_{k}" for k in range(1, PRE_CHRISTMAS_WEEKS + 1)]
            names += ["christmas_shopping_days"]
        names += ["day_of_month", "days_in_new_month", "month_start_days", "holds_month_start", "holds_month_end",
                  "drift_days"]
        return names

    def calendar_features(self, weeks: Iterable[object] | pd.Series | pd.DatetimeIndex) -> pd.DataFrame:
        """Named retail-calendar features for each week (one row per input week, same order)."""
        days = self._as_days(weeks)
        out: dict[str, np.ndarray] = {}
        if len(days) == 0:
            return pd.DataFrame(columns=self.feature_names())
        stamps = pd.DatetimeIndex(days)
        out["week_of_year"] = ((stamps.dayofyear.to_numpy() - 1) // 7 + 1).astype(int)
        out["month"] = stamps.month.to_numpy().astype(int)
        years = _year_span(days)
        for name in self.holidays:
            to, since = _to_from(days, self._marks(name, years))
            out[f"is_{name}"] = to == 0
            out[f"weeks_to_{name}"] = to
            out[f"weeks_from_{name}"] = since
        if self.christmas is not None:
            for k in range(1, PRE_CHRISTMAS_WEEKS + 1):
                out[f"pre_christmas_{k}"] = out[f"weeks_to_{self.christmas}"] == k
            # Shopping days before Christmas that the week holds (Dec 18..24 = the last 7).
            out["christmas_shopping_days"] = _days_in_window(days, 12, 18, 12, 24)
        out.update(_month_position(days))
        out["drift_days"] = self.drift_days(self._labels(days))
        return pd.DataFrame(out, index=range(len(days)))[self.feature_names()]

    def event_labels(self, weeks: Iterable[object] | pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """The holiday event each week belongs to, e.g. ``thanksgiving+0``, ``christmas-1``; ``""`` if none.

        Offsets are in weeks from the holiday's own week. When windows overlap, the holiday
        listed later in ``windows`` wins (Christmas over Thanksgiving's week after).
        """
        days = self._as_days(weeks)
        labels = np.full(len(days), "", dtype=object)
        if len(days) == 0:
            return labels
        years = _year_span(days)
        for name, offsets in self.windows.items():
            to, since = _to_from(days, self._marks(name, years))
            for off in offsets:
                hit = (since == off) if off >= 0 else (to == -off)
                labels[hit] = f"{name}{off:+d}"
        return labels

    def event_names(self) -> list[str]:
        """Every event label ``event_labels`` can return, in window order."""
        return [f"{n}{o:+d}" for n, offs in self.windows.items() for o in offs]

    def is_moving_label(self, label: str) -> bool:
        """Whether an ``event_labels`` value belongs to a moving holiday."""
        match = _LABEL_RE.match(label)
        return bool(match) and match.group("name") in self.moving  # type: ignore[union-attr]

    def comparable_week(self, weeks: Iterable[object] | pd.Series | pd.DatetimeIndex, years_back: int = 1) -> pd.DatetimeIndex:
        """For each week, the comparable retail week ``years_back`` years earlier.

        Weeks in a moving holiday's window map to the same offset from that holiday's week
        in the earlier year (Thanksgiving to Thanksgiving); every other week maps to the week
        ending nearest the same calendar date (Christmas by days-before-Christmas, fixed-date
        holidays, ordinary weeks), i.e. lag 52 weeks, or 53 when the calendar has drifted
        past 3 days.
        """
        if years_back < 1:
            raise ValueError(f"years_back must be >= 1, got {years_back}")
        days = self._as_days(weeks)
        stamps = pd.DatetimeIndex(days)
        out = np.empty(len(days), dtype="datetime64[D]")
        for i, d in enumerate(stamps):
            target = _same_date(d, -years_back)
            lag_weeks = round((d - target).days / 7)
            out[i] = np.datetime64((d - pd.Timedelta(weeks=lag_weeks)).date(), "D")
        if len(days) == 0:
            return self._labels(out)
        years = _year_span(days)
        for name in self.moving:
            to, since = _to_from(days, self._marks(name, years))
            for off in self.windows[name]:
                hit = (since == off) if off >= 0 else (to == -off)
                for i in np.flatnonzero(hit).tolist():
                    year = int(self._holiday_year(name, days[i], off))
                    src = self.holiday_end(name, year - years_back)
                    if src is not None:
                        out[i] = np.datetime64(src + dt.timedelta(weeks=off), "D")
        return self._labels(out)

    def _holiday_year(self, name: str, day: np.datetime64, offset: int) -> int:
        """The year of the holiday whose week is ``offset`` weeks from ``day`` (a week end)."""
        week = pd.Timestamp(day) - pd.Timedelta(weeks=offset)
        year = week.year
        for cand in (year, year - 1, year + 1):
            end = self.holiday_end(name, cand)
            if end is not None and np.datetime64(end, "D") == np.datetime64(week.date(), "D"):
                return cand
        return year

    def day_shares(self, weeks: pd.DatetimeIndex, years_back: int) -> pd.DataFrame:
        """Per week: its comparable week, the neighbour week and the neighbour's share.

        The comparable week ends ``e`` days after the same calendar date ``years_back`` years
        earlier; its first ``e`` days (or last ``-e``) are missing from the comparable span
        and sit in the week before (or after): that neighbour gets weight ``|e| / 7``.
        Moving-holiday weeks get no neighbour (weight 0).
        """
        comp = self.comparable_week(weeks, years_back)
        same = weeks - pd.DateOffset(years=years_back)  # 29 Feb maps to 28 Feb
        if self.week.offset_days:  # compare the weeks' last days, as the calendar does
            ends = weeks + pd.Timedelta(days=self.week.offset_days)
            same = ends - pd.DateOffset(years=years_back) - pd.Timedelta(days=self.week.offset_days)
        offset = (comp - same).days.to_numpy()
        labels = self.event_labels(weeks)
        moving = np.array([self.is_moving_label(str(label)) for label in labels], dtype=bool)
        share = np.where(moving, 0.0, np.abs(offset) / 7.0)
        neighbour = comp - pd.to_timedelta(np.sign(offset) * 7, unit="D")
        return pd.DataFrame({"week": weeks, "comp": comp, "neighbour": neighbour, "share": share})


def _month_position(days: np.ndarray) -> dict[str, np.ndarray]:
    """Which days of the month the week (ending on ``days``) covers."""
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


def _days_in_window(days: np.ndarray, m1: int, d1: int, m2: int, d2: int) -> np.ndarray:
    """How many of the week's 7 days fall between (m1, d1) and (m2, d2) of the same year."""
    count = np.zeros(len(days), dtype=int)
    for back in range(7):
        day = pd.DatetimeIndex(days - back * _DAY)
        md = day.month * 100 + day.day
        count += ((md >= m1 * 100 + d1) & (md <= m2 * 100 + d2)).astype(int)
    return count


@functools.lru_cache(maxsize=32)
def calendar_for(spec: CalendarSpec) -> RetailCalendar:
    """The (cached) calendar of a spec."""
    return RetailCalendar(spec)


#: The Walmart files' calendar: US retail holidays, weeks ending (and dated) Friday.
US_CALENDAR = calendar_for(US_RETAIL)
calendar_features = US_CALENDAR.calendar_features
comparable_week = US_CALENDAR.comparable_week
drift_days = US_CALENDAR.drift_days
event_labels = US_CALENDAR.event_labels
feature_names = US_CALENDAR.feature_names
holiday_weeks = US_CALENDAR.holiday_weeks

__all__ = [
    "EVENT_WINDOWS",
    "HOLIDAY_NAMES",
    "MOVING_HOLIDAYS",
    "RetailCalendar",
    "US_CALENDAR",
    "calendar_features",
    "calendar_for",
    "comparable_week",
    "drift_days",
    "event_labels",
    "feature_names",
    "holiday_weeks",
]
