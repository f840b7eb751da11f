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

from storecast.data.schema import DEPT, STORE, TARGET, WEEK


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


def low_rank_smooth(history: pd.DataFrame, rank: int) -> pd.DataFrame:
    """``history`` with ``sales`` replaced by its per-department rank-``rank`` reconstruction."""
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    groups = [(None, history)] if DEPT not in history.columns else list(history.groupby(DEPT, sort=False))
    weeks = np.sort(history[WEEK].unique())
    parts = []
    for _, group in groups:
        grid = group.pivot_table(index=STORE, columns=WEEK, values=TARGET, aggfunc="first")
        grid = grid.reindex(columns=weeks)
        smoothed = low_rank(np.nan_to_num(grid.to_numpy(dtype="float64"), nan=0.0), rank)
        store_pos = pd.Index(grid.index).get_indexer(group[STORE])
        week_pos = np.searchsorted(weeks, group[WEEK].to_numpy())
        part = group.copy()
        observed = part[TARGET].notna().to_numpy()
        values = smoothed[store_pos, week_pos]
        part[TARGET] = np.where(observed, values, np.nan)
        parts.append(part)
    return pd.concat(parts).loc[history.index]
