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


def wape(y: object, yhat: object) -> float:
    """Weighted absolute percentage error (fev-bench's WAPE): the same as ``wmape``, in percent."""
    return wmape(y, yhat)


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


def _quantile_arrays(y: object, quantiles: object, levels: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y`` (n), ``quantiles`` (n x levels) and ``levels``, rows with any non-finite value dropped."""
    a = np.asarray(y, dtype="float64")
    q = np.asarray(quantiles, dtype="float64")
    lv = np.asarray(levels, dtype="float64").ravel()
    if q.ndim == 1:
        q = q[:, None]
    if q.shape != (a.size, lv.size):
        raise ValueError(f"quantiles must be {a.size} x {lv.size} (rows x levels), got {q.shape}")
    if ((lv <= 0) | (lv >= 1)).any():
        raise ValueError(f"quantile levels must lie in (0, 1), got {lv.tolist()}")
    mask = np.isfinite(a) & np.isfinite(q).all(axis=1)
    return a[mask], q[mask], lv


def quantile_loss(y: object, quantiles: object, levels: object) -> np.ndarray:
    """Summed pinball loss per level: ``sum(max(l * (y - q), (l - 1) * (y - q)))``."""
    a, q, lv = _quantile_arrays(y, quantiles, levels)
    diff = a[:, None] - q
    return np.maximum(lv * diff, (lv - 1) * diff).sum(axis=0)


def wql(y: object, quantiles: object, levels: object) -> float:
    """Weighted quantile loss: the mean over ``levels`` of ``2 * sum(pinball) / sum(|y|)``.

    ``quantiles`` is one column per level (rows aligned with ``y``). A fraction, as the
    public benchmarks report it (fev-bench walmart: Chronos-2 0.0739); with the 0.5 level
    alone it equals WAPE / 100.
    """
    a, _q, _lv = _quantile_arrays(y, quantiles, levels)
    denom = np.abs(a).sum()
    if denom <= 0:
        return float("nan")
    return float(np.mean(2 * quantile_loss(y, quantiles, levels) / denom))


def interval_score(y: object, lo: object, hi: object, level: float) -> float:
    """Mean interval score of the central ``level``% interval ``[lo, hi]`` (lower is better).

    Width plus ``2 / alpha`` times how far an actual falls outside, ``alpha = 1 - level/100``
    (Gneiting & Raftery 2007): it rewards narrow bands only while they keep their coverage.
    In the units of ``y``; divide by the mean ``|y|`` to compare across data sets.
    """
    a = np.asarray(y, dtype="float64")
    lo_a = np.asarray(lo, dtype="float64")
    hi_a = np.asarray(hi, dtype="float64")
    mask = np.isfinite(a) & np.isfinite(lo_a) & np.isfinite(hi_a)
    if not mask.any():
        return float("nan")
    a, lo_a, hi_a = a[mask], lo_a[mask], hi_a[mask]
    alpha = 1 - level / 100
    score = (hi_a - lo_a) + 2 / alpha * (np.maximum(lo_a - a, 0) + np.maximum(a - hi_a, 0))
    return float(score.mean())


def mase(y: object, yhat: object, scale: object) -> float:
    """Mean absolute scaled error: ``|y - yhat| / scale`` averaged over rows.

    ``scale`` is each row's series' in-sample seasonal-naive mean absolute error
    (``seasonal_naive_scale``); rows whose scale is not positive are left out. With the
    same number of weeks per series this is the mean of the series' MASEs.
    """
    a, b = np.asarray(y, dtype="float64"), np.asarray(yhat, dtype="float64")
    s = np.asarray(scale, dtype="float64")
    mask = np.isfinite(a) & np.isfinite(b) & np.isfinite(s) & (s > 0)
    return float(np.mean(np.abs(a[mask] - b[mask]) / s[mask])) if mask.any() else float("nan")


def naive_scales(history: pd.DataFrame, keys: list[str], season: int = 52) -> pd.DataFrame:
    """Per series (``keys``): the mean absolute error of the seasonal naive (lag ``season``)
    over its history, as column ``scale_naive`` - MASE's denominator. Missing weeks are
    skipped; a series without a season of pairs falls back to lag 1. Vectorised (one merge
    per lag), so it serves a hundred thousand series."""
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


def seasonal_naive_scale(history: pd.DataFrame, keys: list[str], *, season: int = 52, target: str = "sales",
                         week: str = "week") -> pd.DataFrame:
    """``naive_scales`` with the history's own column names and the result as ``scale``."""
    frame = history.rename(columns={target: "sales", week: "week"})
    return naive_scales(frame, keys, season).rename(columns={"scale_naive": "scale"})



def quantile_levels(frame: pd.DataFrame) -> list[float]:
    """The quantile levels a frame carries (its ``q<level>`` columns), sorted."""
    from storecast.models.intervals import quantile_level

    return sorted(lv for c in frame.columns if (lv := quantile_level(c)) is not None)


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
    scale = float(np.nanmean(np.abs(frame["y"].to_numpy(dtype="float64")))) if len(frame) else float("nan")
    for level in (80, 95):
        lo, hi = f"lo_{level}", f"hi_{level}"
        if lo in frame and hi in frame:
            out[f"coverage_{level}"] = coverage(frame["y"], frame[lo], frame[hi])
            score = interval_score(frame["y"], frame[lo], frame[hi], level)
            out[f"interval_score_{level}"] = score / scale if scale > 0 else float("nan")  # scale-free
    levels = quantile_levels(frame)
    if levels:
        out["wql"] = wql(frame["y"], frame[[f"q{q:g}" for q in levels]].to_numpy(dtype="float64"), levels)
        for q in levels:
            upper = round(1 - q, 10)
            if q < 0.5 and upper in levels:
                width = round((upper - q) * 100)
                if f"coverage_{width}" not in out:
                    out[f"coverage_{width}"] = coverage(frame["y"], frame[f"q{q:g}"], frame[f"q{upper:g}"])
    return out
