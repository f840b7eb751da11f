"""Sub-weekly (daily) sales to the declared weeks, before anything else sees them.

Rules (also in the README):
- the target is summed over the days of the week;
- a covariate is aggregated by its kind unless the declaration says otherwise
  (``aggregate``): a flag (only 0/1 values) takes the week's **max** (a promotion on any day
  makes a promotion week), a count (whole numbers beyond 0/1, such as customers) the
  **sum**, a price or level (anything else) the **mean**, text (a category) the **max**;
- missing days inside a series' span count as zero sales (closed days), and are counted in
  the report;
- incomplete weeks at either end are dropped with a warning naming them: the file's first
  and last weeks when its dates do not cover them fully, and a series' own first or last
  week when it starts or stops mid-week (a store opening on a Wednesday);
- a series with one row a week in a file of daily rows (weekly totals mixed into a daily
  export) and the same series-day twice are errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from storecast.data.quality import Issue
from storecast.data.spec import WeekSpec

WEEK = "week"
TARGET = "sales"
#: A file is sub-weekly when its most common weekday holds less than this share of its dates
#: (a weekly file with a few mistyped dates stays weekly and the gate names those rows).
WEEKLY_MODAL_SHARE = 0.6
_SHOWN = 5


@dataclass
class Aggregated:
    frame: pd.DataFrame  # keys, week, target, covariates: one row per series-week
    lines: np.ndarray | None  # first file line of each week's rows
    issues: list[Issue]
    how: dict[str, str]  # covariate -> the aggregation used


def is_sub_weekly(dates: pd.Series) -> tuple[bool, int]:
    """Whether dates are finer than weekly, and the most common weekday (Monday = 0)."""
    days = pd.DatetimeIndex(pd.unique(dates.dropna()))
    counts = np.bincount(days.dayofweek, minlength=7)
    modal = int(np.argmax(counts))
    return bool(counts.sum() and counts[modal] / counts.sum() < WEEKLY_MODAL_SHARE), modal


def aggregation_of(values: pd.Series) -> str:
    """The default weekly aggregation of a daily covariate (see the module docstring)."""
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        return "max"
    v = values.dropna().to_numpy(dtype="float64")
    if len(v) == 0:
        return "mean"
    if np.isin(v, (0.0, 1.0)).all():
        return "max"
    if (v == np.round(v)).all() and (v >= 0).all():
        return "sum"
    return "mean"


def _names(days: Sequence[pd.Timestamp]) -> str:
    shown = ", ".join(str(pd.Timestamp(d).date()) for d in list(days)[:_SHOWN])
    return shown + (f" and {len(days) - _SHOWN} more" if len(days) > _SHOWN else "")


def to_weeks(
    frame: pd.DataFrame,
    keys: Sequence[str],
    week: WeekSpec,
    covariates: Sequence[str],
    *,
    lines: np.ndarray | None = None,
    how: dict[str, str] | None = None,
    display: str = "data",
) -> Aggregated:
    """Aggregate daily rows (``keys``, ``week`` = the day, ``sales``, covariates) to weeks.

    Rows with a target and future rows (no target, after the last day with one) are
    aggregated separately; future weeks are kept whole or not at all like the others.
    """
    keys = list(keys)
    day = pd.to_datetime(frame[WEEK]).dt.normalize()
    frame = frame.assign(**{WEEK: day})
    line = np.arange(len(frame), dtype=np.int64) + 2 if lines is None else np.asarray(lines, dtype=np.int64)
    frame = frame.assign(_line=line)
    issues: list[Issue] = []

    dup = frame.duplicated([*keys, WEEK], keep=False)
    if dup.any():
        rows = sorted(frame.loc[dup, "_line"].tolist())
        raise _failure(Issue("duplicates", "error", f"{int(dup.sum())} rows repeat a series and day "
                             f"(e.g. rows {', '.join(map(str, rows[:_SHOWN]))}); a daily file has one row per series and day",
                             rows, count=len(rows), file=display), display)
    _check_mixed(frame, keys, display, issues)

    has_target = frame[TARGET].notna()
    last_actual = frame.loc[has_target, WEEK].max()
    future = ~has_target & (frame[WEEK] > last_actual)
    how = dict(how or {})
    chosen = {c: how.get(c) or aggregation_of(frame.loc[has_target | future, c]) for c in covariates}
    parts, part_lines = [], []
    for mask, is_future in ((~future, False), (future, True)):
        if not mask.any():
            continue
        weekly, kept_lines, found = _aggregate(frame[mask], keys, week, chosen, is_future, display)
        parts.append(weekly)
        part_lines.append(kept_lines)
        issues += found
    out = pd.concat(parts, ignore_index=True) if parts else frame.iloc[:0]
    all_lines = np.concatenate(part_lines) if part_lines else np.array([], dtype=np.int64)
    listed = ", ".join(f"{c} {a}" for c, a in chosen.items())
    issues.insert(0, Issue(
        "aggregated", "info",
        f"{len(frame)} daily rows aggregated into {len(out)} series-weeks ({week.describe()}); "
        f"sales summed" + (f"; covariates: {listed}" if listed else ""), count=len(out)))
    return Aggregated(out, all_lines if lines is not None else None, issues, chosen)


def _check_mixed(frame: pd.DataFrame, keys: list[str], display: str, issues: list[Issue]) -> None:
    """A series with one row a week in a daily file: weekly totals mixed into daily rows."""
    weekdays = frame[WEEK].dt.dayofweek
    per = frame.assign(_wd=weekdays).groupby(keys, sort=False).agg(
        n=("_wd", "size"), kinds=("_wd", "nunique"), line=("_line", "min"))
    weekly = per[(per["n"] >= 4) & (per["kinds"] == 1)]
    if len(weekly):
        series = [dict(zip(keys, k if isinstance(k, tuple) else (k,), strict=True)) for k in weekly.index[:_SHOWN]]
        rows = sorted(int(r) for r in weekly["line"])
        raise _failure(Issue(
            "mixed_granularity", "error",
            f"{len(weekly)} series have one row a week while the file holds daily rows (weekly totals mixed "
            f"into a daily export?), e.g. {series[0]} from row {rows[0]}; give every series at the same grain",
            rows, count=len(weekly), file=display), display)


def _aggregate(
    frame: pd.DataFrame, keys: list[str], week: WeekSpec, chosen: dict[str, str], is_future: bool, display: str
) -> tuple[pd.DataFrame, np.ndarray, list[Issue]]:
    issues: list[Issue] = []
    day = frame[WEEK]
    label = week.label_containing(day)
    start = pd.DatetimeIndex(label) - pd.Timedelta(days=week.offset_days)  # each week's first day
    frame = frame.assign(_label=label, _start=start)
    # Edges of the block: weeks its dates do not cover whole.
    lo, hi = day.min(), day.max()
    lo_start = frame.loc[day == lo, "_start"].iloc[0]
    hi_end = frame.loc[day == hi, "_start"].iloc[0] + pd.Timedelta(days=6)
    edge = []
    if lo > lo_start:
        edge.append(frame.loc[day == lo, "_label"].iloc[0])
    if hi < hi_end and frame.loc[day == hi, "_label"].iloc[0] not in edge:
        edge.append(frame.loc[day == hi, "_label"].iloc[0])
    grouped = frame.groupby([*keys, "_label"], sort=True)
    n_days = grouped[WEEK].transform("nunique")
    # A series' own first/last week cut by its start or stop mid-week.
    series_first = frame.groupby(keys, sort=False)[WEEK].transform("min")
    series_last = frame.groupby(keys, sort=False)[WEEK].transform("max")
    own_start = (frame["_label"] == week.label_containing(series_first)) & (series_first > frame["_start"])
    own_end = (frame["_label"] == week.label_containing(series_last)) & (series_last < frame["_start"] + pd.Timedelta(days=6))
    drop = frame["_label"].isin(edge) | own_start | own_end
    if edge:
        days_held = {lab: int(frame.loc[frame["_label"] == lab, WEEK].nunique()) for lab in edge}
        what = "future week" if is_future else "week"
        issues.append(Issue(
            "partial_weeks", "warning",
            f"dropped the incomplete {what}(s) at the ends of the data: "
            + ", ".join(f"{pd.Timestamp(lab).date()} ({n} of 7 days)" for lab, n in days_held.items()),
            sorted(frame.loc[frame["_label"].isin(edge), "_line"].astype(int).tolist())[:1000],
            count=len(edge), file=display))
    cut = (own_start | own_end) & ~frame["_label"].isin(edge)
    if cut.any():
        weeks_cut = frame.loc[cut, [*keys, "_label"]].drop_duplicates()
        issues.append(Issue(
            "partial_weeks", "warning",
            f"dropped {len(weeks_cut)} series-week(s) where a series starts or stops mid-week "
            f"(e.g. {dict(zip(keys, weeks_cut.iloc[0][keys].tolist(), strict=True))} week "
            f"{pd.Timestamp(weeks_cut.iloc[0]['_label']).date()})",
            sorted(frame.loc[cut, "_line"].astype(int).tolist())[:1000], count=len(weeks_cut), file=display))
    kept = frame[~drop]
    if kept.empty:
        return kept.drop(columns=["_label", "_start", "_line"]), np.array([], dtype=np.int64), issues
    closed = (7 - n_days[~drop]).groupby([*(kept[k] for k in keys), kept["_label"]]).first()
    if not is_future and int(closed.sum()):
        issues.append(Issue(
            "closed_days", "info",
            f"{int(closed.sum())} missing day(s) inside {int((closed > 0).sum())} series-week(s) counted as zero "
            "sales (closed days)", count=int(closed.sum())))
    agg: dict[str, tuple[str, str]] = {"_line": ("_line", "min")}
    if not is_future:
        agg[TARGET] = (TARGET, "sum")
    for col, name in chosen.items():
        agg[col] = (col, name)
    out = kept.groupby([*keys, "_label"], sort=True).agg(**agg).reset_index()
    out = out.rename(columns={"_label": WEEK})
    if is_future:
        out[TARGET] = np.nan
    kept_lines = out.pop("_line").to_numpy(dtype=np.int64)
    return out[[*keys, WEEK, TARGET, *chosen]], kept_lines, issues


def _failure(issue: Issue, display: str) -> Exception:
    from storecast.data.parsing import ReadFailure

    return ReadFailure([issue], display)
