"""The dashboard's data: every series as compact JSON arrays, the accuracy tables, the holidays.

Series are aligned on one shared list of weeks and stored as ``[offset, v1, v2, ...]`` (whole
dollars, ``null`` for a gap), so ~3,300 department series stay a few MB and the page builds
traces only for the selection instead of shipping thousands of hidden traces.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
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
    """Backtest accuracy at the top level of the keys (stores; store totals when the data is
    per department)."""

    key: str  # the top key's column
    by_store: pd.DataFrame  # key, mape, wmape, weeks; worst first by ``metric``
    by_week: pd.DataFrame  # week, mape, wmape, holiday (label or "")
    misses: pd.DataFrame  # key, week, actual, predicted, error, pct_error, holiday
    overall_mape: float
    overall_wmape: float
    metric: str = "mape"  # "mape" or "wmape" (WAPE): what the views rank and show


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


def series_arrays(table: pd.DataFrame, ids: list[str], weeks: pd.DatetimeIndex) -> dict[tuple[str, ...], dict[str, Any]]:
    """Encoded arrays of every series in ``table`` keyed by its key values as text."""
    present = [k for k, col in SERIES_COLUMNS.items() if col in table]
    wides = {k: _wide(table, ids, SERIES_COLUMNS[k], weeks) for k in present}
    index = wides["a"].index
    out: dict[tuple[str, ...], dict[str, list]] = {}
    for pos, key in enumerate(index):
        tup = key if isinstance(key, tuple) else (key,)
        out[tuple(key_text(k) for k in tup)] = {k: encode(w.to_numpy(dtype="float64")[pos]) for k, w in wides.items()}
    return out


def key_text(value: object) -> str:
    """A key value as the page shows and looks it up: integers without a decimal point."""
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return str(value)


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


def accuracy(top: pd.DataFrame, holidays: dict[pd.Timestamp, str], key: str = STORE, metric: str = "mape") -> Accuracy:
    """Accuracy over the backtest weeks of the top-level series (``key, week, matched, predicted``)."""
    scored = top[top["matched"].notna() & top["predicted"].notna()]
    scored = scored[[key, WEEK, "predicted"]].assign(actual=scored["matched"])
    by_store = _mape_by(scored, key).sort_values([metric, key], ascending=[False, True], kind="stable")
    by_week = _mape_by(scored, WEEK)
    by_week["holiday"] = by_week[WEEK].map(holidays).fillna("")
    misses = scored[scored["actual"] > 0].assign(error=scored["predicted"] - scored["actual"])
    misses["pct_error"] = misses["error"] / misses["actual"] * 100
    misses = misses.reindex(misses["pct_error"].abs().sort_values(ascending=False, kind="stable").index)
    misses = misses.head(MISSES_SHOWN).assign(holiday=lambda m: m[WEEK].map(holidays).fillna(""))
    return Accuracy(
        key=key,
        by_store=by_store.reset_index(drop=True),
        by_week=by_week.reset_index(drop=True),
        misses=misses[[key, WEEK, "actual", "predicted", "error", "pct_error", "holiday"]].reset_index(drop=True),
        overall_mape=mape(scored["actual"], scored["predicted"]),
        overall_wmape=wmape(scored["actual"], scored["predicted"]),
        metric=metric,
    )


def _iso(week: pd.Timestamp | dt.date) -> str:
    return pd.Timestamp(week).strftime("%Y-%m-%d")


def _pct(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 2)


#: key column -> (selector label, prefix of a numeric value, plural)
KEY_NAMES = {"store": ("Store", "Store", "stores"), "dept": ("Department", "Dept", "departments")}

#: joins the key values of a series into its id in the page's data (never in a value)
PATH_SEP = "\u001f"


def key_names(key: str) -> tuple[str, str, str]:
    if key in KEY_NAMES:
        return KEY_NAMES[key]
    title = key.replace("_", " ").strip().capitalize() or key
    return title, title, f"{key.replace('_', ' ')}s"


def _holiday_names(weeks: pd.DatetimeIndex, holiday_weeks: Sequence[pd.Timestamp] | Mapping[pd.Timestamp, str] | None,
                   ) -> dict[pd.Timestamp, str]:
    if isinstance(holiday_weeks, Mapping):
        return {pd.Timestamp(w): str(n) for w, n in sorted(holiday_weeks.items()) if weeks[0] <= pd.Timestamp(w) <= weeks[-1]}
    return named_holidays(weeks[0], weeks[-1], holiday_weeks)


def _matched(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(matched=table["actual"].where(table["predicted"].notna()))


def build_payload(
    table: pd.DataFrame,
    holiday_weeks: Sequence[pd.Timestamp] | Mapping[pd.Timestamp, str] | None = None,
    *,
    keys: Sequence[str] | None = None,
    levels: Mapping[tuple[str, ...], pd.DataFrame] | None = None,
    metric: str = "mape",
    value_label: str = "Weekly sales ($)",
    currency: bool = True,
) -> tuple[dict, Accuracy]:
    """The JSON the page reads, plus the accuracy tables the page's static parts are built from.

    ``table`` is ``predictions_table``'s output for the leaves: keys, week, actual, predicted
    and, when known, step, cutoff and the 80%/95% bounds. ``keys`` (default: store, and dept
    when present) name the hierarchy top first; every prefix becomes a selector. ``levels``
    holds the aggregate levels' own tables (the pipeline's reconciled, calibrated levels);
    without them a level is summed here with bands from its own backtest errors.
    ``holiday_weeks``: week -> name, or weeks to mark (named from the US retail calendar).
    ``metric``: ``mape`` (store-level sales) or ``wmape`` (WAPE: series with zero weeks).
    ``value_label`` titles the value axis; ``currency`` formats amounts in dollars.
    """
    keys = list(keys) if keys is not None else [STORE, *([DEPT] if DEPT in table.columns else [])]
    weeks = pd.DatetimeIndex(sorted(pd.to_datetime(table[WEEK]).unique()))
    last_actual = pd.Timestamp(table.loc[table["actual"].notna(), WEEK].max())
    future = weeks[weeks > last_actual]
    holidays = _holiday_names(weeks, holiday_weeks)

    def level_frame(prefix: tuple[str, ...]) -> pd.DataFrame:
        if len(prefix) == len(keys):
            return _matched(table)
        if levels is not None and prefix in levels:
            return _matched(levels[prefix])
        return aggregate(table, list(prefix))

    total = level_frame(())
    top = level_frame(tuple(keys[:1]))
    acc = accuracy(top, holidays, keys[0], metric)
    names = [key_names(k) for k in keys]
    payload: dict = {
        "level": "dept" if len(keys) > 1 else "store",
        "keys": keys,
        "labels": [n[0] for n in names],
        "prefixes": [n[1] for n in names],
        "plurals": [n[2] for n in names],
        "numeric": [bool(pd.api.types.is_numeric_dtype(table[k])) for k in keys],
        "metric": "MAPE" if metric == "mape" else "WAPE",
        "value_label": value_label,
        "currency": currency,
        "weeks": [_iso(w) for w in weeks],
        "first_future": int(len(weeks) - len(future)),
        "holidays": [{"week": _iso(w), "i": int(weeks.get_loc(w)), "name": n} for w, n in holidays.items()],
        "total": series_arrays(total.assign(_all=0), ["_all"], weeks)[("0",)],
        "nodes": {},
        "children": {},
        "overall": {"mape": _pct(acc.overall_mape), "wmape": _pct(acc.overall_wmape)},
    }
    for depth in range(1, len(keys) + 1):
        prefix = keys[:depth]
        frame = level_frame(tuple(prefix))
        scored = frame[frame["matched"].notna() & frame["predicted"].notna()]
        scores = _mape_by(scored[[*prefix, WEEK, "predicted"]].assign(actual=scored["matched"]), prefix)
        values = {tuple(key_text(v) for v in row[:-1]): row[-1] for row in scores[[*prefix, metric]].itertuples(index=False)}
        for ids, arrays in series_arrays(frame, prefix, weeks).items():
            arrays["m"] = _pct(values.get(ids, float("nan")))
            payload["nodes"][PATH_SEP.join(ids)] = arrays
            payload["children"].setdefault(PATH_SEP.join(ids[:-1]), []).append(ids[-1])
    for parent, kids in payload["children"].items():
        depth = 0 if not parent else parent.count(PATH_SEP) + 1
        numeric = payload["numeric"][depth]
        payload["children"][parent] = sorted(kids, key=lambda v: (float(v), v) if numeric else (0.0, v))
    return payload, acc
