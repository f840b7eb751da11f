"""Forecast metrics as plain functions with one signature: ``metric(y, yhat, **kw) -> float``.

MAPE skips weeks whose actual is zero or negative (returns at department level) because a
percentage of those is meaningless; WMAPE (= WAPE) and WMAE stay defined everywhere.

Probabilistic metrics read quantile columns ``q<level>`` (``models.intervals``): WQL is the
mean over the levels of ``2 * sum(pinball loss) / sum(|y|)`` (the public benchmarks'
weighted quantile loss); coverage of the central interval between levels ``a`` and
``1 - a``; the interval score (Winkler) of a band, divided by the mean ``|y|`` so stores and
departments compare. MASE divides each error by its series' in-sample seasonal-naive
error (``naive_scales``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HOLIDAY_WEIGHT = 5.0


def _arrays(y: object, yhat: object) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y, dtype="float64")
    b = np.asarray(yhat, dtype="float64")
    mask = np.isfinite(a) & np.isfinite(b)
    return a[mask], b[mask]


def mape(y: object, yhat: object) -> float:
    """Mean absolute percentage error in percent, over weeks with a positive actual."""
    a, b = _arrays(y, yhat)
    keep = a > 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs(a[keep] - b[keep]) / a[keep]) * 100)


def wmape(y: object, yhat: object) -> float:
    """Sum of absolute errors over sum of absolute actuals, in percent."""
    a, b = _arrays(y, yhat)
    denom = np.abs(a).sum()
    return float(np.abs(a - b).sum() / denom * 100) if denom > 0 else float("nan")


def wmae(y: object, yhat: object, is_holiday: object = None) -> float:
    """Mean absolute error with holiday weeks weighted 5 (the Walmart competition's measure)."""
    a = np.asarray(y, dtype="float64")
    b = np.asarray(yhat, dtype="float64")
    w = np.ones_like(a) if is_holiday is None else np.where(np.asarray(is_holiday, dtype=bool), HOLIDAY_WEIGHT, 1.0)
    mask = np.isfinite(a) & np.isfinite(b)
    if not mask.any():
        return float("nan")
    return float(np.sum(w[mask] * np.abs(a[mask] - b[mask])) / np.sum(w[mask]))


def rmse(y: object, yhat: object) -> float:
    a, b = _arrays(y, yhat)
    return float(np.sqrt(np.mean((a - b) ** 2))) if a.size else float("nan")


def bias(y: object, yhat: object) -> float:
    """Mean of (forecast - actual) over the mean actual, in percent; positive = over-forecast."""
    a, b = _arrays(y, yhat)
    denom = np.abs(a).mean() if a.size else 0.0
    return float((b - a).mean() / denom * 100) if denom > 0 else float("nan")


def coverage(y: object, lo: object, hi: object) -> float:
    """Share of actuals inside [lo, hi], in percent."""
    a = np.asarray(y, dtype="float64")
    lo_a = np.asarray(lo, dtype="float64")
    hi_a = np.asarray(hi, dtype="float64")
    mask = np.isfinite(a) & np.isfinite(lo_a) & np.isfinite(hi_a)
    if not mask.any():
        return float("nan")
    return float(np.mean((a[mask] >= lo_a[mask]) & (a[mask] <= hi_a[mask])) * 100)


wape = wmape


def quantile_levels(frame: pd.DataFrame) -> list[float]:
    """The quantile levels a frame carries (its ``q<level>`` columns), sorted."""
    out = []
    for name in frame.columns:
        if isinstance(name, str) and name.startswith("q"):
            try:
                out.append(float(name[1:]))
            except ValueError:
                continue
    return sorted(out)


def pinball(y: object, q: object, level: float) -> np.ndarray:
    """Pinball (quantile) loss of each row at ``level``."""
    a = np.asarray(y, dtype="float64")
    b = np.asarray(q, dtype="float64")
    diff = a - b
    return np.maximum(level * diff, (level - 1) * diff)


def wql(frame: pd.DataFrame, levels: list[float] | None = None) -> float:
    """Weighted quantile loss: mean over levels of 2 * sum(pinball) / sum(|y|)."""
    levels = levels if levels is not None else quantile_levels(frame)
    if not levels:
        return float("nan")
    y = frame["y"].to_numpy(dtype="float64")
    cols = {q: frame[f"q{q:g}"].to_numpy(dtype="float64") for q in levels}
    ok = np.isfinite(y)
    for col in cols.values():
        ok &= np.isfinite(col)
    denom = np.abs(y[ok]).sum()
    if denom <= 0:
        return float("nan")
    return float(np.mean([2 * pinball(y[ok], cols[q][ok], q).sum() / denom for q in levels]))


def interval_score(y: object, lo: object, hi: object, alpha: float) -> float:
    """Mean Winkler interval score of a (1 - alpha) band, over the mean |y| (scale-free)."""
    a = np.asarray(y, dtype="float64")
    lo_a = np.asarray(lo, dtype="float64")
    hi_a = np.asarray(hi, dtype="float64")
    ok = np.isfinite(a) & np.isfinite(lo_a) & np.isfinite(hi_a)
    if not ok.any():
        return float("nan")
    a, lo_a, hi_a = a[ok], lo_a[ok], hi_a[ok]
    score = (hi_a - lo_a) + 2 / alpha * (lo_a - a) * (a < lo_a) + 2 / alpha * (a - hi_a) * (a > hi_a)
    scale = np.abs(a).mean()
    return float(score.mean() / scale) if scale > 0 else float("nan")


def mase(y: object, yhat: object, scale: object) -> float:
    """Mean absolute error scaled by each row's series' in-sample seasonal-naive error."""
    a = np.asarray(y, dtype="float64")
    b = np.asarray(yhat, dtype="float64")
    s = np.asarray(scale, dtype="float64")
    ok = np.isfinite(a) & np.isfinite(b) & np.isfinite(s) & (s > 0)
    return float(np.mean(np.abs(a[ok] - b[ok]) / s[ok])) if ok.any() else float("nan")


def naive_scales(history: pd.DataFrame, keys: list[str], season: int = 52) -> pd.DataFrame:
    """Per series: the mean absolute change over ``season`` weeks in its history (MASE's
    denominator; one week where the history is shorter than a season)."""
    frame = history[[*keys, "week", "sales"]].dropna(subset=["sales"])
    out = []
    for lag in (season, 1):
        shifted = frame.assign(week=frame["week"] + pd.Timedelta(weeks=lag))
        pair = frame.merge(shifted, on=[*keys, "week"], suffixes=("", "_lag"))
        diff = (pair["sales"] - pair["sales_lag"]).abs()
        out.append(diff.groupby([pair[k] for k in keys]).mean().rename(f"lag{lag}"))
    table = pd.concat(out, axis=1)
    table["scale_naive"] = table[f"lag{season}"].fillna(table["lag1"])
    return table[["scale_naive"]].reset_index()


def summarize(frame: pd.DataFrame) -> dict[str, float]:
    """All metrics for a frame with ``y``, ``yhat`` and optionally holiday, band, quantile and
    ``scale_naive`` columns."""
    hol = frame.get("is_holiday")
    out = {
        "mape": mape(frame["y"], frame["yhat"]),
        "wmape": wmape(frame["y"], frame["yhat"]),
        "wmae": wmae(frame["y"], frame["yhat"], hol),
        "rmse": rmse(frame["y"], frame["yhat"]),
        "bias": bias(frame["y"], frame["yhat"]),
        "n": float(len(frame)),
    }
    if "scale_naive" in frame:
        out["mase"] = mase(frame["y"], frame["yhat"], frame["scale_naive"])
    for level in (80, 95):
        lo, hi = f"lo_{level}", f"hi_{level}"
        if lo in frame and hi in frame:
            out[f"coverage_{level}"] = coverage(frame["y"], frame[lo], frame[hi])
            out[f"interval_score_{level}"] = interval_score(frame["y"], frame[lo], frame[hi], 1 - level / 100)
    levels = quantile_levels(frame)
    if levels:
        out["wql"] = wql(frame, levels)
        for q in levels:
            upper = round(1 - q, 10)
            if q < 0.5 and upper in levels:
                width = round((upper - q) * 100)
                if f"coverage_{width}" not in out:
                    out[f"coverage_{width}"] = coverage(frame["y"], frame[f"q{q:g}"], frame[f"q{upper:g}"])
    return out
