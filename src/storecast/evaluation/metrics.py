"""Forecast metrics as plain functions with one signature: ``metric(y, yhat, **kw) -> float``.

MAPE skips weeks whose actual is zero or negative (returns at department level) because a
percentage of those is meaningless; WMAPE and WMAE stay defined everywhere.
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


def summarize(frame: pd.DataFrame) -> dict[str, float]:
    """All metrics for a frame with ``y``, ``yhat`` and optionally holiday and interval columns."""
    hol = frame.get("is_holiday")
    out = {
        "mape": mape(frame["y"], frame["yhat"]),
        "wmape": wmape(frame["y"], frame["yhat"]),
        "wmae": wmae(frame["y"], frame["yhat"], hol),
        "rmse": rmse(frame["y"], frame["yhat"]),
        "bias": bias(frame["y"], frame["yhat"]),
        "n": float(len(frame)),
    }
    for level in (80, 95):
        lo, hi = f"lo_{level}", f"hi_{level}"
        if lo in frame and hi in frame:
            out[f"coverage_{level}"] = coverage(frame["y"], frame[lo], frame[hi])
    return out
