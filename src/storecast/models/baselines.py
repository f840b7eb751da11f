"""Baselines reported beside every model: seasonal naive and level-scaled last year.

Both keep only the last two years of each series as learned state. A series shorter than
a year (a new department) falls back to the mean of its last weeks, so department data
with cold starts still gets a forecast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK
from storecast.models.base import Forecaster

SEASON = 52


class _HistoryTail(Forecaster):
    """Shared state for models that only need the recent history of each series."""

    tail_weeks: int = 2 * SEASON + 13

    def _fit(self, history: pd.DataFrame) -> None:
        last = history[WEEK].max()
        start = last - pd.Timedelta(weeks=self.tail_weeks - 1)
        tail = history.loc[history[WEEK] >= start, [*self.keys_, WEEK, TARGET]].dropna(subset=[TARGET])
        self.tail_ = tail.reset_index(drop=True)

    def _save_state(self, folder: Path) -> dict[str, Any]:
        self.tail_.to_parquet(folder / "tail.parquet", index=False)
        return {"tail": "tail.parquet"}

    def _load_state(self, folder: Path, state: dict[str, Any]) -> None:
        self.tail_ = pd.read_parquet(folder / state["tail"])

    def _grid(self, horizon: int) -> pd.DataFrame:
        """One row per series and future week."""
        series = self.tail_[self.keys_].drop_duplicates()
        weeks = pd.DataFrame({WEEK: self.future_weeks(horizon), "step": np.arange(1, horizon + 1)})
        return series.merge(weeks, how="cross")

    def _lookup(self, grid: pd.DataFrame, lag_weeks: int, column: str) -> pd.DataFrame:
        """Join the actual ``lag_weeks`` before each grid week as ``column``."""
        past = self.tail_.rename(columns={TARGET: column}).copy()
        past[WEEK] = past[WEEK] + pd.Timedelta(weeks=lag_weeks)
        return grid.merge(past, on=[*self.keys_, WEEK], how="left")

    def _recent_mean(self, weeks: int) -> pd.DataFrame:
        start = self.last_week_ - pd.Timedelta(weeks=weeks - 1)
        recent = self.tail_[self.tail_[WEEK] >= start]
        return recent.groupby(self.keys_, as_index=False)[TARGET].mean().rename(columns={TARGET: "fallback"})


class SeasonalNaive(_HistoryTail):
    """The same week one year (52 weeks) earlier."""

    name = "seasonal_naive"
    min_history_weeks = SEASON
    description = "Sales of the same week 52 weeks earlier."

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        grid = self._grid(horizon)
        # Weeks beyond one season ahead repeat the last observed season.
        lag = SEASON * ((grid["step"] - 1) // SEASON + 1)
        out = []
        for lag_value in sorted(lag.unique()):
            part = self._lookup(grid[lag == lag_value], int(lag_value), "yhat")
            out.append(part)
        frame = pd.concat(out, ignore_index=True).merge(self._recent_mean(8), on=self.keys_, how="left")
        frame["yhat"] = frame["yhat"].fillna(frame["fallback"])
        return frame


class YoYScaled(_HistoryTail):
    """Last year's same week times the recent year-over-year level ratio of the store."""

    name = "yoy_scaled"
    min_history_weeks = SEASON + 8
    description = "Last year's same week x (last 8 weeks / same 8 weeks a year before)."

    def __init__(self, *, seed: int = 0, level_weeks: int = 8, **params: Any) -> None:
        super().__init__(seed=seed, level_weeks=level_weeks, **params)
        self.level_weeks = level_weeks

    def _ratio(self) -> pd.DataFrame:
        start = self.last_week_ - pd.Timedelta(weeks=self.level_weeks - 1)
        recent = self.tail_[self.tail_[WEEK] >= start].copy()
        before = self.tail_.copy()
        before[WEEK] = before[WEEK] + pd.Timedelta(weeks=SEASON)
        pair = recent.merge(before, on=[*self.keys_, WEEK], suffixes=("", "_ly"))
        sums = pair.groupby(self.keys_, as_index=False)[[TARGET, f"{TARGET}_ly"]].sum()
        ratio = sums[TARGET] / sums[f"{TARGET}_ly"]
        sums["ratio"] = ratio.where(np.isfinite(ratio) & (ratio > 0.2) & (ratio < 5), 1.0)
        return sums[[*self.keys_, "ratio"]]

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        naive = SeasonalNaive(seed=self.seed)
        naive.keys_, naive.last_week_, naive.tail_ = self.keys_, self.last_week_, self.tail_
        base = naive._predict(horizon, future)
        frame = base.merge(self._ratio(), on=self.keys_, how="left")
        frame["ratio"] = frame["ratio"].fillna(1.0)
        frame["yhat"] = frame["yhat"] * frame["ratio"]
        return frame
