"""Pooling across stores: low-rank smoothing of a history before a model sees it.

For each department (or, at store level, for the whole chain) the stores x weeks matrix is
replaced by its best rank-``k`` approximation (SVD of the store-centred matrix). What many
stores share (the season, holidays, chain-wide shocks) survives; what one store-week does
alone (noise, a one-off promotion) is damped. This is what two years of history cannot do
per series: a department has only two examples of each holiday, but 45 stores have 90.
Missing store-weeks count as zero in the matrix (a department that is absent sells
nothing) and stay absent in the result, so the series' own history span is unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK


def low_rank(values: np.ndarray, rank: int, *, centre: bool = True) -> np.ndarray:
    """Best rank-``rank`` approximation of a series x weeks matrix; NaN cells stay NaN.

    Missing cells count as zero in the fit. ``centre`` removes each row's mean first (so
    the rank spends itself on shapes, not levels). A matrix with no more rows or columns
    than ``rank`` is returned as it is.
    """
    if min(values.shape) <= rank:
        return values.copy()
    filled = np.nan_to_num(values, nan=0.0)
    middle = filled.mean(axis=1, keepdims=True) if centre else np.zeros((filled.shape[0], 1))
    u, s, vt = np.linalg.svd(filled - middle, full_matrices=False)
    approx = (u[:, :rank] * s[:rank]) @ vt[:rank] + middle
    return np.where(np.isnan(values), np.nan, approx)


def low_rank_smooth(history: pd.DataFrame, rank: int, keys: list[str] | None = None) -> pd.DataFrame:
    """``history`` with ``sales`` replaced by its rank-``rank`` reconstruction per leaf key
    (per department across stores; the whole chain when there is one key)."""
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    if keys is None:
        keys = ["store", "dept"] if "dept" in history.columns else ["store"]
    leaf = keys[-1] if len(keys) > 1 else None
    rows = keys[:-1] if leaf is not None else keys
    groups = [(None, history)] if leaf is None else list(history.groupby(leaf, sort=False))
    weeks = np.sort(history[WEEK].unique())
    parts = []
    for _, group in groups:
        grid = group.pivot_table(index=rows, columns=WEEK, values=TARGET, aggfunc="first")
        grid = grid.reindex(columns=weeks)
        smoothed = low_rank(np.nan_to_num(grid.to_numpy(dtype="float64"), nan=0.0), rank)
        at = pd.MultiIndex.from_frame(group[rows]) if len(rows) > 1 else pd.Index(group[rows[0]])
        store_pos = grid.index.get_indexer(at)
        week_pos = np.searchsorted(weeks, group[WEEK].to_numpy())
        part = group.copy()
        observed = part[TARGET].notna().to_numpy()
        values = smoothed[store_pos, week_pos]
        part[TARGET] = np.where(observed, values, np.nan)
        parts.append(part)
    return pd.concat(parts).loc[history.index]
