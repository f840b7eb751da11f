"""The dashboard's data: every series as compact JSON arrays, the accuracy tables, the holidays.

Series are aligned on one shared list of weeks and stored as ``[offset, v1, v2, ...]`` (whole
dollars, ``null`` for a gap), so ~3,300 department series stay a few MB and the page builds
traces only for the selection instead of shipping thousands of hidden traces.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from storecast.data.schema import DEPT, STORE, WEEK
from storecast.evaluation.metrics import mape, wmape
from storecast.features.holidays import FLAGGED_HOLIDAYS, holiday_week
from storecast.models.intervals import ConformalIntervals

#: Series array keys in the payload -> table column.
SERIES_COLUMNS = {"a": "actual", "p": "predicted", "l80": "lo_80", "h80": "hi_80", "l95": "lo_95", "h95": "hi_95"}
HOLIDAY_LABELS = {
    "super_bowl": "Super Bowl",
    "labor_day": "Labor Day",
    "thanksgiving": "Thanksgiving",
    "christmas": "Christmas",
}
MISSES_SHOWN = 15


@dataclass(frozen=True)
class Accuracy:
    """Backtest accuracy at store level (store totals when the data is per department)."""

    by_store: pd.DataFrame  # store, mape, wmape, weeks; worst first
    by_week: pd.DataFrame  # week, mape, holiday (label or "")
    misses: pd.DataFrame  # store, week, actual, predicted, error, pct_error, holiday
    overall_mape: float
    overall_wmape: float


def named_holidays(first: pd.Timestamp, last: pd.Timestamp, weeks: Sequence[pd.Timestamp] | None = None) -> dict[pd.Timestamp, str]:
    """Holiday weeks between ``first`` and ``last`` labelled from the calendar.

    ``weeks`` (e.g. the weeks a data file flags) restricts the result; a flagged week the
    calendar cannot name is labelled "Holiday".
    """
    names: dict[pd.Timestamp, str] = {}
    for year in range(first.year - 1, last.year + 2):
        for name in FLAGGED_HOLIDAYS:
            week = pd.Timestamp(holiday_week(name, year))
            if first <= week <= last:
                names[week] = HOLIDAY_LABELS[name]
    if weeks is None:
        return dict(sorted(names.items()))
    chosen = {pd.Timestamp(w) for w in weeks if first <= pd.Timestamp(w) <= last}
    return {w: names.get(w, "Holiday") for w in sorted(chosen)}


def encode(values: np.ndarray) -> list[int | None]:
    """``[offset, v...]`` over the span between the first and last finite value; ``[]`` if none."""
    finite = np.isfinite(values)
    if not finite.any():
        return []
    idx = np.flatnonzero(finite)
    lo, hi = int(idx[0]), int(idx[-1]) + 1
    span, known = values[lo:hi], finite[lo:hi]
    out: list[int | None] = np.round(np.where(known, span, 0.0)).astype(np.int64).tolist()
    for gap in np.flatnonzero(~known):
        out[gap] = None
    return [lo, *out]


def _wide(table: pd.DataFrame, ids: list[str], column: str, weeks: pd.DatetimeIndex) -> pd.DataFrame:
    """Series (rows, indexed by ``ids``) x weeks (columns) of one table column."""
    return table.pivot_table(index=ids, columns=WEEK, values=column, aggfunc="first", dropna=False).reindex(columns=weeks)


def series_arrays(table: pd.DataFrame, ids: list[str], weeks: pd.DatetimeIndex) -> dict[tuple[int, ...], dict[str, Any]]:
    """Encoded arrays of every series in ``table`` keyed by its id tuple."""
    present = [k for k, col in SERIES_COLUMNS.items() if col in table]
    wides = {k: _wide(table, ids, SERIES_COLUMNS[k], weeks) for k in present}
    index = wides["a"].index
    out: dict[tuple[int, ...], dict[str, list]] = {}
    for pos, key in enumerate(index):
        tup = key if isinstance(key, tuple) else (key,)
        out[tuple(int(k) for k in tup)] = {k: encode(w.to_numpy(dtype="float64")[pos]) for k, w in wides.items()}
    return out


def aggregate(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Sum actual and predicted over the series inside each group and week, with calibrated bands.

    ``matched`` is the actual summed only over series that also carry a prediction that
    week, so an aggregate's error compares like with like. Bands come from the aggregate's
    own backtest errors (see ``aggregate_bands``), not from summing series bounds.
    """
    frame = table.assign(matched=table["actual"].where(table["predicted"].notna()))
    grouped = frame.groupby([*by, WEEK], sort=True)
    agg = grouped[["actual", "predicted", "matched"]].sum(min_count=1)
    if "cutoff" in frame:
        agg["cutoff"] = grouped["cutoff"].max()
    agg = agg.reset_index()
    if "cutoff" not in agg:
        return agg
    parts = [aggregate_bands(g) for _, g in agg.groupby(by, sort=True)] if by else [aggregate_bands(agg)]
    return pd.concat(parts, ignore_index=True)


def aggregate_bands(agg: pd.DataFrame) -> pd.DataFrame:
    """80%/95% bands for one aggregate series from its backtest relative errors.

    An aggregate has few backtest weeks, so errors are pooled over horizon steps. Backtest
    weeks are calibrated on the other windows only (cross-conformal, out of sample);
    forecast weeks (no cutoff) on all of them.
    """
    out = agg.copy()
    for col in ("lo_80", "hi_80", "lo_95", "hi_95"):
        out[col] = np.nan
    scored = agg[agg["cutoff"].notna() & agg["matched"].notna() & agg["predicted"].notna()]
    residuals = pd.DataFrame({"step": 1, "y": scored["matched"], "yhat": scored["predicted"]})
    has_pred = agg["predicted"].notna()
    for cutoff in [*scored["cutoff"].unique(), pd.NaT]:
        rows = has_pred & (agg["cutoff"].isna() if pd.isna(cutoff) else agg["cutoff"] == cutoff)
        calib = residuals[scored["cutoff"] != cutoff] if not pd.isna(cutoff) else residuals
        if not rows.any() or len(calib) < 2:
            continue
        banded = ConformalIntervals.from_residuals(calib).apply(
            pd.DataFrame({"step": 1, "yhat": agg.loc[rows, "predicted"].to_numpy()})
        )
        for col in ("lo_80", "hi_80", "lo_95", "hi_95"):
            out.loc[rows, col] = banded[col].to_numpy()
    return out


def _mape_by(frame: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    cols = [by] if isinstance(by, str) else by
    rows = [
        {**dict(zip(cols, k if isinstance(k, tuple) else (k,), strict=True)),
         "mape": mape(g["actual"], g["predicted"]), "wmape": wmape(g["actual"], g["predicted"]), "weeks": int(len(g))}
        for k, g in frame.groupby(cols, sort=True)
    ]
    return pd.DataFrame(rows, columns=[*cols, "mape", "wmape", "weeks"])


def accuracy(stores: pd.DataFrame, holidays: dict[pd.Timestamp, str]) -> Accuracy:
    """Accuracy over the backtest weeks of store-level series (``store, week, matched, predicted``)."""
    scored = stores[stores["matched"].notna() & stores["predicted"].notna()]
    scored = scored[[STORE, WEEK, "predicted"]].assign(actual=scored["matched"])
    by_store = _mape_by(scored, STORE).sort_values(["mape", STORE], ascending=[False, True], kind="stable")
    by_week = _mape_by(scored, WEEK)
    by_week["holiday"] = by_week[WEEK].map(holidays).fillna("")
    misses = scored[scored["actual"] > 0].assign(error=scored["predicted"] - scored["actual"])
    misses["pct_error"] = misses["error"] / misses["actual"] * 100
    misses = misses.reindex(misses["pct_error"].abs().sort_values(ascending=False, kind="stable").index)
    misses = misses.head(MISSES_SHOWN).assign(holiday=lambda m: m[WEEK].map(holidays).fillna(""))
    return Accuracy(
        by_store=by_store.reset_index(drop=True),
        by_week=by_week.reset_index(drop=True),
        misses=misses[[STORE, WEEK, "actual", "predicted", "error", "pct_error", "holiday"]].reset_index(drop=True),
        overall_mape=mape(scored["actual"], scored["predicted"]),
        overall_wmape=wmape(scored["actual"], scored["predicted"]),
    )


def _iso(week: pd.Timestamp | dt.date) -> str:
    return pd.Timestamp(week).strftime("%Y-%m-%d")


def _pct(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 2)


def build_payload(table: pd.DataFrame, holiday_weeks: Sequence[pd.Timestamp] | None = None) -> tuple[dict, Accuracy]:
    """The JSON the page reads, plus the accuracy tables the page's static parts are built from.

    ``table`` is ``predictions_table``'s output: keys, week, actual, predicted and, when
    known, step, cutoff and the 80%/95% bounds.
    """
    level = "dept" if DEPT in table.columns else "store"
    weeks = pd.DatetimeIndex(sorted(pd.to_datetime(table[WEEK]).unique()))
    last_actual = pd.Timestamp(table.loc[table["actual"].notna(), WEEK].max())
    future = weeks[weeks > last_actual]
    holidays = named_holidays(weeks[0], weeks[-1], holiday_weeks)

    stores = aggregate(table, [STORE]) if level == "dept" else table.assign(matched=table["actual"].where(table["predicted"].notna()))
    total = aggregate(table, [])
    acc = accuracy(stores, holidays)
    store_mape = dict(zip(acc.by_store[STORE].astype(int), acc.by_store["mape"], strict=True))

    payload: dict = {
        "level": level,
        "weeks": [_iso(w) for w in weeks],
        "first_future": int(len(weeks) - len(future)),
        "holidays": [{"week": _iso(w), "i": int(weeks.get_loc(w)), "name": n} for w, n in holidays.items()],
        "total": series_arrays(total.assign(_all=0), ["_all"], weeks)[(0,)],
        "stores": {},
        "depts": {},
        "store_mape": {str(s): _pct(v) for s, v in store_mape.items()},
        "overall": {"mape": _pct(acc.overall_mape), "wmape": _pct(acc.overall_wmape)},
    }
    for (store,), arrays in series_arrays(stores, [STORE], weeks).items():
        payload["stores"][str(store)] = arrays
    if level == "dept":
        dept_mape = _mape_by(table[table["actual"].notna() & table["predicted"].notna()], [STORE, DEPT])
        mapes = {(int(s), int(d)): v for s, d, v in dept_mape[[STORE, DEPT, "mape"]].itertuples(index=False)}
        for (store, dept), arrays in series_arrays(table, [STORE, DEPT], weeks).items():
            arrays["mape"] = _pct(mapes.get((store, dept), float("nan")))
            payload["depts"].setdefault(str(store), {})[str(dept)] = arrays
    return payload, acc
