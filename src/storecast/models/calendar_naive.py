"""Calendar-aligned naive: last year's same days by the retail calendar, not lag 52.

Lag 52 compares a week with the week 364 days earlier, which sits 1-2 days later in its
year's calendar. That drift matters wherever sales follow the date: the week before
Christmas 2011 (Dec 17-23) held one pre-Christmas day fewer than its lag-52 week of 2010
(Dec 18-24). So each future week is compared with the same calendar days a year earlier:
the comparable week (``features.calendar.comparable_week``) blended with its neighbour by
the days they each hold, e.g. 6/7 of the Dec 24 2010 week + 1/7 of the Dec 17 2010 week.
Weeks bound to a moving holiday (Thanksgiving, Easter, Super Bowl, ...) compare with the
same holiday week instead, unblended. Nothing is fitted beyond the history tail.

A series without the comparable weeks (a new department) falls back to the mean of its
last 8 weeks, as ``seasonal_naive`` does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK
from storecast.features.calendar import US_CALENDAR, RetailCalendar
from storecast.models.baselines import SEASON, _HistoryTail


def day_shares(weeks: pd.DatetimeIndex, years_back: int, calendar: RetailCalendar = US_CALENDAR) -> pd.DataFrame:
    """Per future week: its comparable week, the neighbour week and the neighbour's share
    (``RetailCalendar.day_shares``; the Walmart calendar by default)."""
    return calendar.day_shares(weeks, years_back)


class CalendarNaive(_HistoryTail):
    """The same calendar days one year earlier (moving holidays: the same holiday week)."""

    name = "calendar_naive"
    min_history_weeks = SEASON + 1
    description = "Last year's same calendar days (retail calendar aligned; moving holidays to their week)."

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        grid = self._grid(horizon)
        weeks = self.future_weeks(horizon)
        # Weeks beyond one season ahead compare with the last observed season.
        years = (np.arange(horizon) // SEASON) + 1
        shares = pd.concat([day_shares(weeks[years == y], int(y), self.calendar) for y in np.unique(years)])
        frame = grid.merge(shares, on=WEEK, how="left")
        values = self.tail_.set_index([*self.keys_, WEEK])[TARGET]

        def look(column: str) -> np.ndarray:
            index = pd.MultiIndex.from_arrays([*(frame[k] for k in self.keys_), frame[column]])
            return values.reindex(index).to_numpy(dtype="float64")

        comp, neighbour = look("comp"), look("neighbour")
        share = np.where(np.isfinite(neighbour), frame["share"].to_numpy(), 0.0)
        frame["yhat"] = (1.0 - share) * comp + share * np.nan_to_num(neighbour)
        frame = frame.drop(columns=["comp", "neighbour", "share"]).merge(self._recent_mean(8), on=self.keys_, how="left")
        frame["yhat"] = frame["yhat"].fillna(frame["fallback"])
        return frame
