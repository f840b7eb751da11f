"""Series x weeks matrix helpers for planned drivers: regular price, promotion states,
competition within a group, rolling and decaying levels.

Every function takes and returns plain ``numpy`` matrices (one row per series, one column
per week, NaN where a week is unknown) so a model can build them once per fit and read any
(series, origin, target week) from them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def rolling(values: np.ndarray, window: int, how: str = "mean", q: float = 0.5) -> np.ndarray:
    """Row-wise rolling statistic over the last ``window`` columns (NaN-aware, min 1 value)."""
    roll = pd.DataFrame(values.T).rolling(window, min_periods=1)
    out = roll.quantile(q) if how == "quantile" else getattr(roll, how)()
    return out.to_numpy(dtype="float64").T


def ewm(values: np.ndarray, halflife: float) -> np.ndarray:
    """Row-wise exponentially weighted mean up to each column; gaps carry the last mean."""
    out = pd.DataFrame(values.T).ewm(halflife=halflife, ignore_na=True).mean()
    return out.ffill().to_numpy(dtype="float64").T


def take(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows, cols]`` with NaN where ``cols`` falls outside the matrix."""
    ok = (cols >= 0) & (cols < matrix.shape[1])
    out = np.full(len(rows), np.nan)
    out[ok] = matrix[rows[ok], cols[ok]]
    return out


def shift(matrix: np.ndarray, weeks: int) -> np.ndarray:
    """The matrix moved ``weeks`` columns later (column t holds column t - weeks); NaN-padded."""
    out = np.full(matrix.shape, np.nan)
    if weeks < matrix.shape[1]:
        out[:, weeks:] = matrix[:, : matrix.shape[1] - weeks]
    return out


def weeks_since(flag: np.ndarray, cap: float = 26.0) -> np.ndarray:
    """Per column, weeks since the last earlier column where ``flag`` was on (capped)."""
    n, t_len = flag.shape
    out = np.full((n, t_len), cap)
    last = np.full(n, -np.inf)
    for t in range(t_len):
        out[:, t] = np.minimum(t - last, cap)
        last = np.where(flag[:, t], t, last)
    return out


def regular_log_price(log_price: np.ndarray, window: int, q: float = 0.9) -> np.ndarray:
    """The series' regular (shelf) log price: a high quantile of its last ``window`` weeks.

    A promotion lowers the price for a week or two; a high quantile of the recent weeks
    ignores those and follows a permanent change within a few weeks. Planned future
    prices count like past ones (both are known when the forecast is made).
    """
    return rolling(log_price, window, "quantile", q)


def group_others_mean(signal: np.ndarray, weights: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per cell, the ``weights``-weighted mean of ``signal`` over the *other* series of the
    same group that week (NaN cells are left out; NaN when no other series has a value)."""
    present = ~np.isnan(signal)
    filled = np.where(present, signal, 0.0)
    w = weights[:, None]
    num = np.zeros(signal.shape)
    den = np.zeros(signal.shape)
    for g in np.unique(codes):
        idx = codes == g
        num[idx] = (w[idx] * filled[idx]).sum(axis=0)
        den[idx] = (w[idx] * present[idx]).sum(axis=0)
    num -= w * filled
    den -= w * present
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, num / den, np.nan)


def group_log_total(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per series, the log of its group's mean sales per observed series each week."""
    out = np.full(values.shape, np.nan)
    for g in np.unique(codes):
        idx = codes == g
        part = values[idx]
        count = (~np.isnan(part)).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, np.nansum(part, axis=0) / np.maximum(count, 1), np.nan)
        out[idx] = np.log1p(mean)
    return out


def promotion_state(promos: list[np.ndarray], price_cut: np.ndarray | None, cut: float) -> np.ndarray:
    """A code per cell: bit k set when promotion column k is on, the next bit when the price
    is more than ``cut`` (log) below regular."""
    shape = promos[0].shape if promos else price_cut.shape  # type: ignore[union-attr]
    code = np.zeros(shape, dtype="int64")
    for k, p in enumerate(promos):
        code |= (np.nan_to_num(p) > 0).astype("int64") << k
    if price_cut is not None:
        code |= (np.nan_to_num(price_cut) < -cut).astype("int64") << len(promos)
    return code
