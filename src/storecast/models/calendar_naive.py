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

``years`` > 1 averages the same calendar days of that many earlier years, each older year
re-levelled to the latest one by the series' ratio of sales over the last 52 weeks to the
same weeks that many years before (a year whose ratio is unknown or outside 0.5..2 is left
out). Two years are two noisy views of the same season: on department data the average
cuts the error of the one-year view by about a tenth (docs/benchmarks.md, fev).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK
from storecast.errors import UsageError
from storecast.features.calendar import US_CALENDAR, RetailCalendar
from storecast.models.baselines import SEASON, _HistoryTail

#: An older year is used only while the series' level ratio to it stays within these bounds.
LEVEL_RATIO_BOUNDS = (0.5, 2.0)


def day_shares(weeks: pd.DatetimeIndex, years_back: int, calendar: RetailCalendar = US_CALENDAR) -> pd.DataFrame:
    """Per future week: its comparable week, the neighbour week and the neighbour's share
    (``RetailCalendar.day_shares``; the Walmart calendar by default)."""
    return calendar.day_shares(weeks, years_back)


class CalendarNaive(_HistoryTail):
    """The same calendar days one year earlier (moving holidays: the same holiday week)."""

    name = "calendar_naive"
    min_history_weeks = SEASON + 1
    description = "Last year's same calendar days (retail calendar aligned; moving holidays to their week)."

    def __init__(self, *, seed: int = 0, years: int = 1, **params: Any) -> None:
        if int(years) < 1:
            raise UsageError(f"calendar_naive years must be >= 1, got {years}")
        super().__init__(seed=seed, years=int(years), **params)
        self.years = int(years)
        self.tail_weeks = max(type(self).tail_weeks, SEASON * (self.years + 1) + 13)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        grid = self._grid(horizon)
        weeks = self.future_weeks(horizon)
        values = self.tail_.set_index([*self.keys_, WEEK])[TARGET]
        # Weeks beyond one season ahead compare with the last observed season.
        nearest = (np.arange(horizon) // SEASON) + 1
        total = np.zeros(len(grid))
        count = np.zeros(len(grid))
        for extra in range(self.years):
            years = nearest + extra
            shares = pd.concat([day_shares(weeks[years == y], int(y), self.calendar) for y in np.unique(years)])
            frame = grid.merge(shares, on=WEEK, how="left")

            def look(column: str, frame: pd.DataFrame = frame) -> np.ndarray:
                index = pd.MultiIndex.from_arrays([*(frame[k] for k in self.keys_), frame[column]])
                return values.reindex(index).to_numpy(dtype="float64")

            comp, neighbour = look("comp"), look("neighbour")
            share = np.where(np.isfinite(neighbour), frame["share"].to_numpy(), 0.0)
            view = (1.0 - share) * comp + share * np.nan_to_num(neighbour)
            if extra:
                ratio = grid[self.keys_].merge(self._level_ratio(extra), on=self.keys_, how="left")["ratio"]
                view = view * ratio.to_numpy(dtype="float64")
            seen = np.isfinite(view)
            total += np.where(seen, view, 0.0)
            count += seen
        frame = grid.copy()
        frame["yhat"] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        frame = frame.merge(self._recent_mean(8), on=self.keys_, how="left")
        frame["yhat"] = frame["yhat"].fillna(frame["fallback"])
        return frame

    def _level_ratio(self, years: int) -> pd.DataFrame:
        """Per series: sales over the last 52 weeks / the same weeks ``years`` years earlier
        (weeks seen in both), NaN outside ``LEVEL_RATIO_BOUNDS``."""
        start = self.last_week_ - pd.Timedelta(weeks=SEASON - 1)
        recent = self.tail_[self.tail_[WEEK] >= start]
        before = self.tail_.copy()
        before[WEEK] = before[WEEK] + pd.Timedelta(weeks=SEASON * years)
        pair = recent.merge(before, on=[*self.keys_, WEEK], suffixes=("", "_before"))
        sums = pair.groupby(self.keys_, as_index=False)[[TARGET, f"{TARGET}_before"]].sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = sums[TARGET] / sums[f"{TARGET}_before"]
        lo, hi = LEVEL_RATIO_BOUNDS
        sums["ratio"] = ratio.where((sums[f"{TARGET}_before"] > 0) & (ratio >= lo) & (ratio <= hi))
        return sums[[*self.keys_, "ratio"]]
