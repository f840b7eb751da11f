"""US retail holidays for any year, and the retail week they fall in.

A retail week runs Saturday to Friday and is dated by its Friday (see data.schema), so
Christmas 2010 (a Saturday) falls in the week dated 2010-12-31, which is the week the
Walmart files flag; the big shopping week is the one before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from dateutil.easter import easter


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


def retail_week(day: dt.date) -> dt.date:
    """The Friday that ends the Saturday-to-Friday week containing ``day``."""
    return day + dt.timedelta(days=(4 - day.weekday()) % 7)


def holiday_week(name: str, year: int) -> dt.date:
    """The retail week (a Friday) holding holiday ``name`` in ``year``."""
    return retail_week(HOLIDAYS[name](year))


def flagged_holiday_weeks(first: dt.date, last: dt.date) -> list[dt.date]:
    """Weeks between ``first`` and ``last`` that the Walmart files flag as holiday weeks."""
    out = [holiday_week(n, y) for y in range(first.year - 1, last.year + 2) for n in FLAGGED_HOLIDAYS]
    return sorted(w for w in out if first <= w <= last)
