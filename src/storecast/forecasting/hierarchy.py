"""The hierarchy of a dataset and forecasts that add up through it.

Levels are the prefixes of the keys, total first: for ``store, dept`` the chain total,
each store, each store x department. The leaves (the most detailed series) are forecast
by the chosen model; every *anchor* level (a proper prefix of the keys, e.g. the store
totals of department data) also gets its own forecast, from the top-level model fitted on
that level's totals; the total is the sum of the top level. ``reconcile`` then makes the
leaves add up to numbers that use both: a weighted least-squares projection onto "each
node is the sum of its children" (MinTrace with a diagonal covariance), solved exactly on
the tree in two passes (up: each node's own forecast meets the sum of its children's,
weighted by their error variances; down: each node's gap is shared among its children in
proportion to their variances). Two weightings:

- ``combined``: a leaf's variance is proportional to ``|yhat|`` and a node's own forecast
  weighs as much as its children's sum, so a store total becomes the equal mean of the
  store model's forecast and its departments' sum, and the gap is spread in proportion to
  the departments' absolute forecasts (storecast's measured department default; it works
  with negative departments and leaves a department at zero at zero);
- ``mint``: variances from backtest errors, per level relative to the forecast's scale
  (``relative_mse``): the better a level forecasts, the more it weighs.

``bottom_up`` keeps the leaves as they are; ``top_down`` follows the anchors alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from storecast.data.schema import HOLIDAY, TARGET, WEEK
from storecast.data.spec import SeriesSpec
from storecast.errors import UsageError

Method = Literal["combined", "mint", "bottom_up", "top_down"]
METHODS: tuple[str, ...] = ("combined", "mint", "bottom_up", "top_down")
#: Methods the backtest chooses among when the data has anchor levels.
CANDIDATES: tuple[str, ...] = ("combined", "mint", "bottom_up")
Level = tuple[str, ...]


def level_name(level: Level) -> str:
    """``total``, ``store``, ``store/dept``: how reports, files and the warehouse name a level."""
    return "/".join(level) if level else "total"


def anchor_levels(spec: SeriesSpec) -> list[Level]:
    """The levels that get their own forecast: proper, non-empty prefixes of the keys."""
    return [spec.keys[:i] for i in range(1, len(spec.keys))]


def aggregate_history(frame: pd.DataFrame, spec: SeriesSpec, level: Level) -> pd.DataFrame:
    """Leaf history summed to ``level`` (a week is a holiday if any leaf says so; a top-level
    static attribute is carried)."""
    keys = list(level)
    agg: dict[str, tuple[str, str]] = {TARGET: (TARGET, "sum")}
    if HOLIDAY in frame.columns:
        agg[HOLIDAY] = (HOLIDAY, "max")
    out = frame.groupby([*keys, WEEK], as_index=False, sort=True).agg(**agg)
    statics = [c for c in spec.with_keys(keys).static if c in frame.columns]
    if statics and keys:
        first = frame.groupby(keys, as_index=False, sort=True)[statics].first()
        out = out.merge(first, on=keys, how="left")
    return out


def aggregate_forecast(frame: pd.DataFrame, level: Level, value_columns: Sequence[str] = ("yhat",)) -> pd.DataFrame:
    """Forecasts (or predictions) summed from the leaves to ``level`` per week (and cutoff)."""
    by = [*level, WEEK, *[c for c in ("cutoff", "step") if c in frame.columns]]
    cols = [c for c in value_columns if c in frame.columns]
    return frame.groupby(by, as_index=False, sort=True)[cols].sum(min_count=1)


def _node_index(frame: pd.DataFrame, by: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Group number of each row and the groups' key table (in group-number order)."""
    codes = frame.groupby(by, sort=True, dropna=False).ngroup().to_numpy()
    table = frame[by].drop_duplicates().sort_values(by, kind="stable").reset_index(drop=True)
    return codes, table


def reconcile(
    leaves: pd.DataFrame,
    keys: Sequence[str],
    anchors: Mapping[Level, pd.DataFrame],
    *,
    method: Method = "combined",
    relative_mse: Mapping[Level, float] | None = None,
) -> pd.DataFrame:
    """Leaf forecasts adjusted so that, per week, every anchor level's nodes sum them.

    ``leaves`` has the keys, ``week`` (and optionally ``cutoff``, ``step``, bands) and
    ``yhat``; ``anchors`` maps a level (a key prefix) to its own forecasts (the level's keys,
    ``week`` [``cutoff``], ``yhat``); nodes missing there keep their children's sum.
    ``relative_mse`` (``mint``): each level's mean squared error relative to the squared
    scale of its forecasts, from backtests, the leaves under the full key tuple.
    Returns ``leaves`` with ``yhat`` replaced (bands, if any, moved by the same amount),
    same rows and order.
    """
    if method not in METHODS:
        raise UsageError(f"unknown reconciliation method {method!r}; use {', '.join(METHODS)}")
    keys = list(keys)
    out = leaves.copy()
    levels = [lv for lv in (tuple(keys[:i]) for i in range(1, len(keys))) if lv in anchors]
    if method == "bottom_up" or not levels or leaves.empty:
        return out
    when = [c for c in ("cutoff",) if c in leaves.columns] + [WEEK]
    raw = leaves["yhat"].to_numpy(dtype="float64")
    m = np.where(np.isfinite(raw), raw, 0.0)
    v = _leaf_variance(m, method, relative_mse, tuple(keys))
    # Upward pass, deepest level first: a node's children -> the node's (mean, variance),
    # its own forecast (if any) weighed against the children's sum.
    passes: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # codes, share, m_sum, child_m
    child_frame = leaves[[*keys, *when]].reset_index(drop=True)
    child_m, child_v = m, v
    for depth in range(len(keys) - 1, 0, -1):
        level = tuple(keys[:depth])
        by = [*level, *when]
        codes, table = _node_index(child_frame, by)
        n = len(table)
        count = np.bincount(codes, minlength=n).astype("float64")
        m_sum = np.bincount(codes, weights=child_m, minlength=n)
        v_sum = np.bincount(codes, weights=child_v, minlength=n)
        flat = v_sum <= 0  # children without weight share a gap equally
        v_eff = np.where(flat, count, v_sum)
        share = np.where(flat[codes], 1.0 / count[codes], child_v / np.where(flat, 1.0, v_sum)[codes])
        node_m, node_v = m_sum, v_eff
        if level in anchors:
            own = table.merge(anchors[level][[*by, "yhat"]], on=by, how="left")["yhat"].to_numpy(dtype="float64")
            has = np.isfinite(own)
            # The share ``a`` of the children's sum against the node's own forecast is the own
            # forecast's variance over both: w / (v + w).
            if method == "top_down":
                a = np.zeros(n)
            elif method == "combined":
                a = np.full(n, 0.5)
            else:
                w = _anchor_variance(own, level, relative_mse)
                total = v_eff + w
                a = np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.5)
            a = np.where(has, a, 1.0)
            node_m = a * m_sum + (1.0 - a) * np.where(has, own, 0.0)
            node_v = a * v_eff  # = v w / (v + w)
        passes.append((codes, share, m_sum, child_m))
        child_frame, child_m, child_v = table, node_m, node_v
    # Downward pass: a node's reconciled value minus its children's sum goes to its children.
    value = child_m
    for codes, share, m_sum, below in reversed(passes):
        value = below + share * (value[codes] - m_sum[codes])
    delta = value - m
    out["yhat"] = np.where(np.isfinite(raw), raw, 0.0) + delta
    for col in [c for c in out.columns if c.startswith(("lo_", "hi_", "q"))]:
        if pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].to_numpy(dtype="float64") + delta
    return out


def _leaf_variance(m: np.ndarray, method: str, relative_mse: Mapping[Level, float] | None, leaf: Level) -> np.ndarray:
    if method == "mint":
        r = (relative_mse or {}).get(leaf, 1.0)
        return np.maximum(r, 1e-12) * m**2
    return np.abs(m)


def _anchor_variance(own: np.ndarray, level: Level, relative_mse: Mapping[Level, float] | None) -> np.ndarray:
    r = (relative_mse or {}).get(level, 1.0)
    return np.maximum(r, 1e-12) * np.where(np.isfinite(own), own, 0.0) ** 2


def relative_mse(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean squared error over the mean squared prediction (a level's error relative to its scale)."""
    ok = np.isfinite(actual) & np.isfinite(predicted)
    denom = float(np.mean(predicted[ok] ** 2)) if ok.any() else 0.0
    return float(np.mean((actual[ok] - predicted[ok]) ** 2) / denom) if denom > 0 else 1.0
