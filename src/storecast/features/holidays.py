"""Holidays for any year: the US retail calendar, any country's public holidays, retailer events.

A holiday *source* answers "on which date does holiday X fall in year Y" for a fixed list
of named holidays. Three kinds:

- ``US_RETAIL_HOLIDAYS``: the eight US retail events storecast has always used (Super Bowl,
  Easter, Memorial Day, Independence Day, back-to-school, Labor Day, Thanksgiving,
  Christmas), computed by rule;
- ``country_holidays(code)``: a country's (and subdivision's) public holidays from the
  maintained ``holidays`` package, names in English where the package has them, observed-day
  duplicates left out;
- retailer events (``date,name`` pairs): a name's first date in each year.

Which retail week a holiday falls in depends on the data's week (``data.spec.WeekSpec``):
Christmas 2010, a Saturday, is in the Walmart week ending Friday 2010-12-31, but in the
Dominick's week that started Thursday 2010-12-23.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dateutil.easter import easter

from storecast.data.spec import FRIDAY_END, WeekSpec, slug


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th (1-based) ``weekday`` (Mon=0) of a month."""
    first = dt.date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def super_bowl(year: int) -> dt.date:
    """First Sunday of February until 2021, second Sunday since the 2022 season change."""
    return _nth_weekday(year, 2, 6, 1 if year <= 2021 else 2)


def easter_sunday(year: int) -> dt.date:
    return easter(year)


def memorial_day(year: int) -> dt.date:
    return _last_weekday(year, 5, 0)


def independence_day(year: int) -> dt.date:
    return dt.date(year, 7, 4)


def back_to_school(year: int) -> dt.date:
    """The peak back-to-school shopping day: taken as the first Saturday on or after Aug 1 + 2 weeks."""
    return _nth_weekday(year, 8, 5, 2)


def labor_day(year: int) -> dt.date:
    return _nth_weekday(year, 9, 0, 1)


def thanksgiving(year: int) -> dt.date:
    return _nth_weekday(year, 11, 3, 4)


def christmas(year: int) -> dt.date:
    return dt.date(year, 12, 25)


HOLIDAYS: dict[str, Callable[[int], dt.date]] = {
    "super_bowl": super_bowl,
    "easter": easter_sunday,
    "memorial_day": memorial_day,
    "independence_day": independence_day,
    "back_to_school": back_to_school,
    "labor_day": labor_day,
    "thanksgiving": thanksgiving,
    "christmas": christmas,
}

#: The four holidays the Walmart files flag (their ``Holiday_Flag``/``IsHoliday``).
FLAGGED_HOLIDAYS = ("super_bowl", "labor_day", "thanksgiving", "christmas")
#: How the dashboard and reports name the US retail events.
US_LABELS = {
    "super_bowl": "Super Bowl", "easter": "Easter", "memorial_day": "Memorial Day",
    "independence_day": "Independence Day", "back_to_school": "Back to school", "labor_day": "Labor Day",
    "thanksgiving": "Thanksgiving", "christmas": "Christmas",
}


@dataclass(frozen=True)
class HolidaySource:
    """Named holidays with a date per year (``None`` in a year the holiday does not occur)."""

    names: tuple[str, ...]
    date: Callable[[str, int], dt.date | None]
    labels: dict[str, str]

    def week_end(self, name: str, year: int, week: WeekSpec) -> dt.date | None:
        day = self.date(name, year)
        return None if day is None else week.end_containing(day)


def _us_date(name: str, year: int) -> dt.date | None:
    return HOLIDAYS[name](year)


US_RETAIL_HOLIDAYS = HolidaySource(tuple(HOLIDAYS), _us_date, US_LABELS)


@functools.lru_cache(maxsize=64)
def _country_year(code: str, year: int) -> tuple[tuple[str, dt.date, str], ...]:
    """(slug, date, display name) of a country's holidays in one year, observed days left out."""
    import holidays as holidays_pkg

    country, _, subdiv = code.partition("-")
    kwargs: dict[str, object] = {"years": year}
    if subdiv:
        kwargs["subdiv"] = subdiv
    try:
        table = holidays_pkg.country_holidays(country, language="en_US", **kwargs)  # type: ignore[arg-type]
    except (NotImplementedError, ValueError, KeyError):
        table = holidays_pkg.country_holidays(country, **kwargs)  # type: ignore[arg-type]
    out: list[tuple[str, dt.date, str]] = []
    seen: set[str] = set()
    for day, names in sorted(table.items()):
        for name in str(names).split("; "):
            if "observed" in name.lower():
                continue
            key = slug(name)
            if key in seen:
                continue  # a holiday's first day in the year names it
            seen.add(key)
            out.append((key, day, name))
    return tuple(out)


def check_country(code: str) -> None:
    """``ValueError`` naming the supported codes when ``code`` is unknown to ``holidays``."""
    import holidays as holidays_pkg

    country, _, subdiv = code.partition("-")
    supported = holidays_pkg.list_supported_countries()
    if country not in supported:
        raise ValueError(f"unknown country code {code!r}; use an ISO 3166 code such as US, DE, GB, FR, BR "
                         f"({len(supported)} supported by the holidays package)")
    if subdiv and subdiv not in supported[country]:
        raise ValueError(f"unknown subdivision {subdiv!r} of {country}; known: {', '.join(supported[country][:30])}")


#: Years scanned to list a country's holidays (one-off holidays outside it are ignored).
_SCAN_YEARS = range(1990, 2041)


@functools.lru_cache(maxsize=16)
def country_holidays(code: str) -> HolidaySource:
    """A country's public holidays (``US`` is the retail calendar above, not this)."""
    check_country(code)
    names: dict[str, str] = {}
    for year in _SCAN_YEARS:
        for key, _day, label in _country_year(code, year):
            names.setdefault(key, label)

    def date(name: str, year: int) -> dt.date | None:
        for key, day, _label in _country_year(code, year):
            if key == name:
                return day
        return None

    return HolidaySource(tuple(names), date, names)


def event_holidays(events: Iterable[tuple[dt.date, str]]) -> HolidaySource:
    """The retailer's events as holidays: each name's first date in each year."""
    by_name: dict[str, dict[int, dt.date]] = {}
    labels: dict[str, str] = {}
    for day, name in sorted(events):
        key = "event_" + slug(name)
        labels.setdefault(key, name)
        by_name.setdefault(key, {}).setdefault(day.year, day)

    def date(name: str, year: int) -> dt.date | None:
        return by_name.get(name, {}).get(year)

    return HolidaySource(tuple(by_name), date, labels)


def retail_week(day: dt.date, week: WeekSpec = FRIDAY_END) -> dt.date:
    """The label date of the week containing ``day`` (the Friday ending a Walmart week)."""
    return week.end_containing(day) - dt.timedelta(days=week.offset_days)


def holiday_week(name: str, year: int, week: WeekSpec = FRIDAY_END) -> dt.date:
    """The retail week (its label date) holding US retail holiday ``name`` in ``year``."""
    return retail_week(HOLIDAYS[name](year), week)


def flagged_holiday_weeks(first: dt.date, last: dt.date, week: WeekSpec = FRIDAY_END) -> list[dt.date]:
    """Weeks between ``first`` and ``last`` that the Walmart files flag as holiday weeks."""
    out = [holiday_week(n, y, week) for y in range(first.year - 1, last.year + 2) for n in FLAGGED_HOLIDAYS]
    return sorted(w for w in out if first <= w <= last)
