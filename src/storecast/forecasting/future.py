"""The forecast weeks' inputs: every series x the next weeks, with the known-future drivers.

Where each known-future column comes from, in order:
- Walmart's ``is_holiday`` (the US retail calendar): the calendar's flagged holidays;
- a retailer event's flag (``event_<name>``): the events file, placed in its week;
- every other driver (prices, promotions, ...): the values the data gives for the forecast
  weeks (rows after the last week with sales, or ``--future FILE``). When some are missing,
  ``assume`` says what to use — ``last`` (each series' last known value) or ``zero``.
  Without it (``resolve_assumption``): data that gives *no* forecast-week values at all is
  forecast as if each series' last values continued, with a warning naming the columns and
  weeks (recorded in run.json); data that gives some but not all stops with an error naming
  them, as does ``strict``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from storecast.data.events import add_event_flags, event_columns
from storecast.data.schema import HOLIDAY, WEEK
from storecast.data.spec import SeriesSpec
from storecast.errors import DataError
from storecast.features.calendar import calendar_for

ASSUMPTIONS = ("last", "zero", "strict")


def derived_columns(spec: SeriesSpec) -> set[str]:
    """Known-future columns storecast fills itself (calendar holiday flags, event flags)."""
    out = set(event_columns(spec))
    if HOLIDAY in spec.known_future and spec.calendar.country == "US":
        out.add(HOLIDAY)
    return out


def given_columns(spec: SeriesSpec) -> list[str]:
    """Known-future columns whose forecast-week values must come from the data."""
    derived = derived_columns(spec)
    return [c for c in spec.known_future if c not in derived]


def future_weeks(last_week: pd.Timestamp, horizon: int) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(last_week) + pd.Timedelta(weeks=1), periods=horizon, freq="7D")


def future_frame(
    spec: SeriesSpec,
    series: pd.DataFrame,
    last_week: pd.Timestamp,
    horizon: int,
    *,
    given: pd.DataFrame | None = None,
    history: pd.DataFrame | None = None,
    assume: str | None = None,
    required: bool = True,
) -> pd.DataFrame:
    """Keys x the next ``horizon`` weeks with every known-future column filled.

    ``series`` holds the key columns; ``given`` the data's values for forecast weeks;
    ``history`` (for ``assume="last"``) the canonical history. ``required=False`` (a model
    that reads no drivers) leaves unknown values missing instead of failing.
    """
    keys = list(spec.keys)
    weeks = future_weeks(last_week, horizon)
    grid = series[keys].drop_duplicates().merge(pd.DataFrame({WEEK: weeks}), how="cross")
    if HOLIDAY in derived_columns(spec):
        calendar = calendar_for(spec.calendar)
        flagged = {pd.Timestamp(w) for w in calendar.flagged_weeks(weeks[0].date(), weeks[-1].date())}
        grid[HOLIDAY] = grid[WEEK].isin(flagged)
    if spec.keyed_events:
        grid = add_event_flags(grid, spec)
    columns = given_columns(spec)
    if not columns:
        return grid
    if given is not None and not given.empty:
        have = [c for c in columns if c in given.columns]
        part = given[[*keys, WEEK, *have]].drop_duplicates([*keys, WEEK], keep="first")
        grid = grid.merge(part, on=[*keys, WEEK], how="left")
    for c in columns:
        if c not in grid.columns:
            grid[c] = np.nan
    missing = grid[columns].isna()
    if not missing.any().any():
        return grid
    if assume == "zero":
        grid[columns] = grid[columns].fillna(0.0)
    elif assume == "last":
        grid = _fill_last(grid, keys, columns, history)
    elif assume not in (None, "strict"):
        raise DataError(f"--assume-future must be one of {', '.join(ASSUMPTIONS)}, got {assume!r}")
    elif required:
        raise missing_future_error(grid, keys, columns, missing)
    return grid


def resolve_assumption(
    spec: SeriesSpec, series: pd.DataFrame, last_week: pd.Timestamp, horizon: int,
    *, given: pd.DataFrame | None, history: pd.DataFrame | None, assume: str | None,
) -> tuple[str | None, str | None]:
    """The assumption a forecast runs with, and a warning when storecast chose it.

    An explicit ``assume`` stands (``strict``: any missing value is an error). Without one,
    data that gives no forecast-week value for any known-future column continues each
    series' last values and says so; data that gives some values but not all is an error
    (naming the columns and weeks), since a half-given plan is more likely a mistake.
    """
    columns = given_columns(spec)
    if assume is not None or not columns:
        if assume in (None, "strict") and columns:
            future_frame(spec, series, last_week, horizon, given=given, history=history, assume=None, required=True)
        return assume, None
    has_any = given is not None and not given.empty and any(
        c in given.columns and given[c].notna().any() for c in columns)
    if has_any:
        future_frame(spec, series, last_week, horizon, given=given, history=history, assume=None, required=True)
        return None, None
    weeks = future_weeks(last_week, horizon)
    note = (f"no values for the known-future column(s) {', '.join(columns)} in the forecast weeks "
            f"{weeks[0].date()}..{weeks[-1].date()}: forecast as if each series' last values continue; "
            "give the plan as rows after the last week, with --future FILE, or say --assume-future "
            "last|zero|strict")
    return "last", note


def _fill_last(grid: pd.DataFrame, keys: list[str], columns: Sequence[str], history: pd.DataFrame | None) -> pd.DataFrame:
    """Each series' last known value (given forecast weeks first, then the history)."""
    out = grid.sort_values([*keys, WEEK], kind="stable")
    if history is not None and not history.empty:
        have = [c for c in columns if c in history.columns]
        last = history.sort_values([*keys, WEEK]).groupby(keys, sort=False)[have].last().reset_index()
        seeded = out.merge(last.rename(columns={c: f"_last_{c}" for c in have}), on=keys, how="left")
        for c in have:
            seeded[c] = seeded[c].fillna(seeded.groupby(keys, sort=False)[c].ffill()).fillna(seeded[f"_last_{c}"])
        out = seeded.drop(columns=[f"_last_{c}" for c in have])
    for c in columns:
        out[c] = out.groupby(keys, sort=False)[c].ffill()
    return out.sort_index()


def missing_future_error(grid: pd.DataFrame, keys: list[str], columns: Sequence[str], missing: pd.DataFrame) -> DataError:
    cols = [c for c in columns if missing[c].any()]
    rows = missing.any(axis=1)
    weeks = sorted(grid.loc[rows, WEEK].unique())
    span = (f"{pd.Timestamp(weeks[0]).date()}" if len(weeks) == 1
            else f"{pd.Timestamp(weeks[0]).date()}..{pd.Timestamp(weeks[-1]).date()} ({len(weeks)} weeks)")
    n_series = grid.loc[rows, keys].drop_duplicates().shape[0]
    return DataError(
        f"known-future column(s) {', '.join(cols)} have no values for the forecast weeks {span} of "
        f"{n_series} series; give them as rows after the last week of the data (sales left empty), with "
        "--future FILE, or say what to assume with --assume-future last|zero",
        details={"columns": cols, "weeks": [str(pd.Timestamp(w).date()) for w in weeks], "series": n_series},
    )
