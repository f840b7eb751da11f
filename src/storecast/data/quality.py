"""The quality gate: every check reports issues with a severity and the offending rows.

``validate(dataset, settings)`` never raises for data problems; it returns a
``QualityReport`` and the caller decides (``gate(report)`` raises when there are errors).
An *error* blocks ingest and training; a *warning* is reported.

Rows are 1-based file lines (header = line 1) taken from ``Dataset.source_rows``; for a
dataset built in memory they are empty and the series keys say where. Error issues keep
every offending row (ingest quarantines them); warning issues keep the first
``MAX_WARNING_ROWS`` and ``count`` holds the true number.

All checks are vectorised over the sorted canonical frame (series boundaries from key
changes, gaps and duplicates from week differences): no per-series Python loops.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pandera.errors as pa_errors

from storecast.config import Settings
from storecast.data.schema import (
    HOLIDAY,
    TARGET,
    WEEK,
    Dataset,
    canonical_schema,
    is_sorted,
)
from storecast.errors import QualityGateError

Severity = Literal["error", "warning", "info"]
MAX_WARNING_ROWS = 1000
MAX_SERIES = 1000
#: a series needs this many weeks before it can have outliers against its own history
MIN_OUTLIER_HISTORY = 13
_MAD_TO_SIGMA = 1.4826


@dataclass
class Issue:
    """One problem found by one check.

    ``rows`` are 1-based file lines, ``series`` the affected series keys (for series-level
    checks), ``count`` the number of offending rows/series/values (defaults to the number
    of rows, else series, else 1), ``file`` the file when it is not the report's source.
    """

    check: str
    severity: Severity
    message: str
    rows: list[int] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    file: str | None = None

    def __post_init__(self) -> None:
        if not self.count:
            self.count = len(self.rows) or len(self.series) or 1
        if self.severity != "error":
            self.rows = self.rows[:MAX_WARNING_ROWS]
        self.series = self.series[:MAX_SERIES]


@dataclass
class QualityReport:
    """Everything the gate found in one input, in check order."""

    source: str
    issues: list[Issue] = field(default_factory=list)
    n_rows: int = 0
    n_series: int = 0

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def infos(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "info"]

    @property
    def has_errors(self) -> bool:
        return any(i.severity == "error" for i in self.issues)

    def error_rows(self) -> set[int]:
        """File lines of the main source that some error points at (to quarantine)."""
        return {r for i in self.errors if i.file is None for r in i.rows}

    def summary(self) -> str:
        e, w = len(self.errors), len(self.warnings)
        verdict = "errors block this data" if e else "ok"
        return f"{self.source}: {self.n_rows} rows, {self.n_series} series; {e} error(s), {w} warning(s): {verdict}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: counts per severity and every issue with its row references."""
        return {
            "source": self.source,
            "ok": not self.has_errors,
            "n_rows": self.n_rows,
            "n_series": self.n_series,
            "counts": {"errors": len(self.errors), "warnings": len(self.warnings), "infos": len(self.infos)},
            "issues": [asdict(i) for i in self.issues],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per (check, severity, row, message); issues without rows get row NA."""
        records = [
            {"check": i.check, "severity": i.severity, "row": row, "message": i.message,
             "file": i.file or self.source}
            for i in self.issues
            for row in (i.rows or [None])  # type: ignore[list-item]
        ]
        frame = pd.DataFrame(records, columns=["check", "severity", "row", "message", "file"])
        frame["row"] = frame["row"].astype("Int64")
        return frame


def gate(report: QualityReport) -> None:
    """Raise ``QualityGateError`` (exit code 2, HTTP 422) when the report has errors."""
    if not report.has_errors:
        return
    first = report.errors[0]
    where = f" (row {first.rows[0]})" if first.rows else ""
    more = len(report.errors) - 1
    tail = f"; and {more} more error(s)" if more else ""
    raise QualityGateError(
        f"quality gate failed: {first.check}{where}: {first.message}{tail}; "
        "run `storecast validate` for the full report",
        report=report, path=report.source,
    )


# ---- the checks ----------------------------------------------------------------------------


class _Ctx:
    """Sorted arrays shared by the checks: series ids, week days, and which rows are new."""

    def __init__(self, dataset: Dataset, reference: Dataset | None) -> None:
        keys = dataset.keys
        frame = dataset.frame
        lines = dataset.source_rows
        n = len(frame)
        cols = [c for c in (*keys, WEEK, TARGET, HOLIDAY) if c in frame.columns]
        if reference is not None and set(reference.keys) == set(keys) and len(reference.frame):
            ref = reference.frame[[c for c in cols if c in reference.frame.columns]]
            both = pd.concat([ref, frame[cols]], ignore_index=True)
            is_new = np.r_[np.zeros(len(ref), dtype=bool), np.ones(n, dtype=bool)]
            new_pos = np.r_[np.full(len(ref), -1), np.arange(n)]
            order = np.lexsort([~is_new, both[WEEK].to_numpy(), *[both[k].to_numpy() for k in reversed(keys)]])
            both = both.iloc[order].reset_index(drop=True)
            self.is_new, self.pos = is_new[order], new_pos[order]
        else:
            both = frame  # the checks only read: no copy
            order = np.arange(n)
            if not is_sorted(frame, [*keys, WEEK]):
                order = np.lexsort([frame[WEEK].to_numpy(), *[frame[k].to_numpy() for k in reversed(keys)]])
                both = both.iloc[order].reset_index(drop=True)
            self.is_new, self.pos = np.ones(n, dtype=bool), order
        self.keys = keys
        self.frame = both
        self.lines_of_new = lines
        self.days = both[WEEK].to_numpy().astype("datetime64[D]").astype(np.int64)
        key_arrays = [both[k].to_numpy() for k in keys]
        change = np.zeros(len(both), dtype=bool)
        change[0] = True
        for arr in key_arrays:
            change[1:] |= arr[1:] != arr[:-1]
        self.starts = change
        self.sid = np.cumsum(change) - 1
        self.n_series = int(self.sid[-1] + 1) if len(both) else 0
        diff = np.empty(len(both), dtype=np.int64)
        diff[0] = 0
        diff[1:] = self.days[1:] - self.days[:-1]
        diff[change] = -1  # no predecessor in the same series
        self.diff = diff

    def rows(self, mask: np.ndarray) -> list[int]:
        """File lines of the new rows selected by ``mask`` (over the combined sorted frame)."""
        pos = self.pos[mask & self.is_new]
        if self.lines_of_new is None:
            return []
        return sorted(int(r) for r in self.lines_of_new[pos])

    def series(self, mask: np.ndarray) -> list[dict[str, Any]]:
        """Distinct series keys among the rows selected by ``mask``."""
        sel = self.frame.loc[mask, self.keys].drop_duplicates().head(MAX_SERIES)
        return [{k: plain_key(v) for k, v in rec.items()} for rec in sel.to_dict("records")]


def plain_key(value: object) -> object:
    """A key value as JSON: an int for integer keys, else its text."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    return str(value)


def _schema_issues(dataset: Dataset) -> list[Issue]:
    """Columns and dtypes against the declared canonical schema (checked on zero rows: cheap)."""
    try:
        canonical_schema(dataset.spec).validate(dataset.frame.head(0), lazy=True)
    except pa_errors.SchemaErrors as exc:
        issues = []
        for case in exc.failure_cases.to_dict("records"):
            column, check, got = case.get("column"), str(case.get("check")), case.get("failure_case")
            if "column_in_dataframe" in check:
                issues.append(Issue("missing_columns", "error", f"required column {got!r} is missing"))
            elif "dtype" in check:
                issues.append(Issue("types", "error", f"column {column!r} has type {got}, expected {check}"))
        return issues
    return []


def validate(
    dataset: Dataset,
    settings: Settings,
    *,
    reference: Dataset | None = None,
    today: dt.date | None = None,
) -> QualityReport:
    """Run every check on ``dataset``; with ``reference`` (the warehouse history), the
    per-series checks (gaps, outliers, appear/disappear, staleness) see old and new weeks
    together but only new rows are reported. Restatements are ingest's business."""
    report = QualityReport(source=dataset.source, n_rows=len(dataset.frame))
    report.issues = _schema_issues(dataset)
    if report.has_errors or dataset.frame.empty:
        if dataset.frame.empty:
            report.issues.append(Issue("no_rows", "error", "the data has no rows"))
        return report
    ctx = _Ctx(dataset, reference)
    report.n_series = int(dataset.frame.groupby(dataset.keys).ngroups) if reference is not None else ctx.n_series
    today = today or dt.date.today()
    issues = report.issues
    issues += _value_checks(ctx, dataset, settings)
    issues += _grid_checks(ctx, today, dataset)
    issues += _holiday_check(ctx)
    issues += _outlier_check(ctx, settings)
    issues += _presence_checks(ctx, settings, reference)
    issues += _covariate_checks(dataset)
    return report


def _value_checks(ctx: _Ctx, dataset: Dataset, settings: Settings) -> list[Issue]:
    sales = ctx.frame[TARGET].to_numpy(dtype="float64")
    new = ctx.is_new
    out: list[Issue] = []
    nan = np.isnan(sales) & new
    if nan.any():
        rows = ctx.rows(nan)
        out.append(Issue("nan_inf", "error", f"{int(nan.sum())} row(s) have no sales value", rows, count=int(nan.sum())))
    inf = np.isinf(sales) & new
    if inf.any():
        rows = ctx.rows(inf)
        out.append(Issue("nan_inf", "error", f"{int(inf.sum())} row(s) have infinite sales", rows, count=int(inf.sum())))
    big = (np.abs(sales) > settings.max_sales) & np.isfinite(sales) & new
    if big.any():
        rows = ctx.rows(big)
        out.append(Issue("implausible", "error",
                         f"{int(big.sum())} row(s) have weekly sales beyond ±{settings.max_sales:g} "
                         f"(max_sales), e.g. {np.abs(sales[big]).max():.4g}",
                         rows, count=int(big.sum())))
    neg = (sales < 0) & new
    if neg.any():
        rows = ctx.rows(neg)
        severity: Severity = "error" if dataset.level == "store" else "warning"  # one key: whole stores
        why = "store-level sales cannot be negative" if severity == "error" else "returns exceed sales in these department weeks"
        out.append(Issue("negative_sales", severity, f"{int(neg.sum())} row(s) have negative sales: {why}",
                         rows, ctx.series(neg), count=int(neg.sum())))
    return out


def _grid_checks(ctx: _Ctx, today: dt.date, dataset: Dataset) -> list[Issue]:
    out: list[Issue] = []
    new, diff = ctx.is_new, ctx.diff
    week = dataset.spec.week
    # 1970-01-01 was a Thursday (weekday 3), so a day count d falls on weekday (d + 3) % 7.
    off_day = ((ctx.days + 3) % 7 != week.label_weekday) & new
    if off_day.any():
        rows = ctx.rows(off_day)
        day = pd.Timestamp(2024, 1, 1 + week.label_weekday).day_name()
        if week.name == "FRI/end":
            why = "dated on a day other than Friday, the end of the retail week"
        else:
            why = (f"dated on a day other than {day} ({week.describe()}; declare the week with "
                   "--week-ending and --week-label)")
        out.append(Issue("off_grid", "error", f"{int(off_day.sum())} row(s) are {why}", rows, count=int(off_day.sum())))
    prev_new = np.r_[False, new[:-1]]
    dup = diff == 0
    dup_new = dup & new & prev_new  # a new row restating a reference week is ingest's business
    if dup_new.any():
        mask = dup_new | np.r_[dup_new[1:], False]
        rows = ctx.rows(mask)
        out.append(Issue("duplicates", "error",
                         f"{int(dup_new.sum())} series-week(s) appear more than once",
                         rows, ctx.series(dup_new), count=int(dup_new.sum())))
    spaced = (diff > 0) & (diff % 7 != 0) & new
    if spaced.any():
        rows = ctx.rows(spaced)
        out.append(Issue("off_grid", "error",
                         f"{int(spaced.sum())} row(s) are not a whole number of weeks after the series' previous "
                         f"week", rows, ctx.series(spaced), count=int(spaced.sum())))
    gap = (diff > 7) & (diff % 7 == 0) & new
    if gap.any():
        missing = int((diff[gap] // 7 - 1).sum())
        rows = ctx.rows(gap)
        series = ctx.series(gap)
        n_series = len(np.unique(ctx.sid[gap]))
        out.append(Issue("gaps", "warning",
                         f"{n_series} series miss {missing} week(s) in {int(gap.sum())} gap(s); rows are "
                         f"the first week after each gap", rows, series, count=int(gap.sum())))
    limit = (np.datetime64(today, "D") - np.datetime64(0, "D")).astype(np.int64)
    future = (ctx.days > limit) & new
    if future.any():
        rows = ctx.rows(future)
        out.append(Issue("future_dated", "error",
                         f"{int(future.sum())} row(s) are dated after today ({today.isoformat()})",
                         rows, count=int(future.sum())))
    return out


def _holiday_check(ctx: _Ctx) -> list[Issue]:
    if HOLIDAY not in ctx.frame.columns:
        return []
    new = ctx.is_new
    flags = ctx.frame[HOLIDAY].to_numpy()[new]
    days = ctx.days[new]
    codes = days - days.min()  # weeks index a short day range: bincount, no hashing
    ones = np.bincount(codes, weights=flags)
    total = np.bincount(codes)
    split = (ones > 0) & (ones < total)
    if not split.any():
        return []
    majority = ones * 2 >= total
    odd_new = split[codes] & (flags.astype(bool) != majority[codes])
    mask = np.zeros(len(new), dtype=bool)
    mask[np.flatnonzero(new)[odd_new]] = True
    rows = ctx.rows(mask)
    return [Issue("holiday_disagreement", "error",
                  f"{int(split.sum())} week(s) have a holiday flag that differs across stores; the rows "
                  f"are those that disagree with the week's majority", rows, ctx.series(mask), count=int(mask.sum()))]


def _series_median(values: np.ndarray, ctx: _Ctx) -> np.ndarray:
    """Per-series median (NaN-aware). A rectangular panel (every series the same length, the
    usual case) is one reshape and a partition; otherwise a grouped median."""
    lengths = np.bincount(ctx.sid)
    if len(lengths) and (lengths == lengths[0]).all():
        panel = values.reshape(len(lengths), lengths[0])
        # np.nanmedian goes through masked arrays for short rows: only use it when needed
        return np.nanmedian(panel, axis=1) if np.isnan(values).any() else np.median(panel, axis=1)
    return pd.Series(values).groupby(ctx.sid, sort=False).median().to_numpy()


def _outlier_check(ctx: _Ctx, settings: Settings) -> list[Issue]:
    sales = ctx.frame[TARGET].to_numpy(dtype="float64")
    if not np.isfinite(sales).all():
        sales = np.where(np.isfinite(sales), sales, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN series: median NaN, no outliers
        median = _series_median(sales, ctx)
        dev = np.abs(sales - median[ctx.sid])
        mad = _series_median(dev, ctx)
    long_enough = np.bincount(ctx.sid) >= MIN_OUTLIER_HISTORY
    scale = np.where(long_enough & (mad > 0), _MAD_TO_SIGMA * mad, np.inf)
    outlier = (dev > settings.outlier_mad_threshold * scale[ctx.sid]) & ctx.is_new
    if not outlier.any():
        return []
    rows = ctx.rows(outlier)
    return [Issue("outliers", "warning",
                  f"{int(outlier.sum())} week(s) lie more than {settings.outlier_mad_threshold:g} robust deviations "
                  f"(MAD) from their series' median", rows, ctx.series(outlier), count=int(outlier.sum()))]


def _presence_checks(ctx: _Ctx, settings: Settings, reference: Dataset | None) -> list[Issue]:
    out: list[Issue] = []
    days, sid = ctx.days, ctx.sid
    first_day = days[ctx.starts]
    ends = np.r_[ctx.starts[1:], True]
    last_day = days[ends]
    newest, oldest = days.max(), days.min()
    has_new = np.bincount(sid, weights=ctx.is_new.astype(float)) > 0
    start_rows = ctx.starts.copy()
    if reference is not None:
        appears = ~(np.bincount(sid, weights=(~ctx.is_new).astype(float)) > 0)
        vanished = ~has_new
    else:
        appears = first_day > oldest
        vanished = np.zeros(ctx.n_series, dtype=bool)
    if appears.any():
        mask = start_rows & appears[sid]
        out.append(Issue("series_appears", "warning",
                         f"{int(appears.sum())} series start after the first week (cold start: short history)",
                         ctx.rows(mask), ctx.series(mask), count=int(appears.sum())))
    behind = (newest - last_day) // 7
    stale = (behind >= settings.stale_weeks) & ~vanished
    ending = (behind > 0) & ~stale & ~vanished
    if ending.any():
        mask = ends & ending[sid]
        out.append(Issue("series_disappears", "warning",
                         f"{int(ending.sum())} series end before the newest week (closure or late data)",
                         ctx.rows(mask), ctx.series(mask), count=int(ending.sum())))
    if vanished.any():
        mask = ends & vanished[sid]
        out.append(Issue("series_disappears", "warning",
                         f"{int(vanished.sum())} series of the history have no rows in this data (closure?)",
                         [], ctx.series(mask), count=int(vanished.sum())))
    if stale.any():
        mask = ends & stale[sid]
        worst = int(behind[stale].max())
        out.append(Issue("stale", "warning",
                         f"{int(stale.sum())} series stop at least {settings.stale_weeks} weeks (up to {worst}) "
                         "before the newest week (stale or closed)",
                         ctx.rows(mask), ctx.series(mask), count=int(stale.sum())))
    return out


def _covariate_checks(dataset: Dataset) -> list[Issue]:
    out: list[Issue] = []
    frame, lines = dataset.frame, dataset.source_rows
    spec = dataset.spec
    for name in (*spec.past_only, *spec.known_future, *spec.static):
        if name not in frame.columns or name == HOLIDAY or not pd.api.types.is_numeric_dtype(frame[name]):
            continue
        values = frame[name].to_numpy(dtype="float64")
        inf = np.isinf(values)
        if inf.any():
            rows = sorted(lines[inf].tolist()) if lines is not None else []
            out.append(Issue("nan_inf", "error", f"column {name!r} has {int(inf.sum())} infinite value(s)",
                             rows, count=int(inf.sum())))
        if name in spec.past_only:
            nan = np.isnan(values)
            if nan.any():
                rows = sorted(lines[nan].tolist()) if lines is not None else []
                out.append(Issue("nan_inf", "warning", f"column {name!r} is missing in {int(nan.sum())} row(s)",
                                 rows, count=int(nan.sum())))
    return out
