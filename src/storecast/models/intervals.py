"""Conformal quantiles and prediction intervals, per horizon step, from backtest residuals.

Residuals are relative to the forecast, ``(y - yhat) / scale``, so one calibration serves
series of any size. ``scale`` is ``|yhat|``, floored at half the series' mean ``|yhat|``
(over the window, or over the forecast horizon): a department forecast near zero would
otherwise turn an ordinary error into an enormous relative one and widen every band. A
store's forecast never falls below half its mean, so at store level the scale is ``|yhat|``.

For each step the empirical quantiles of the relative residuals give every requested
quantile level (default 0.1, 0.2, ..., 0.9, columns ``q0.1`` ... ``q0.9``) and the 80% and
95% central bands (``lo_80 = q0.1``, ``hi_80 = q0.9``, ``lo_95 = q0.025``, ``hi_95 =
q0.975``). Levels below one half take the lower sample quantile and the others the higher
one, so quantiles never cross. Aggregates with few series pool their steps
(``pool_steps``): a chain total has one residual per backtest week.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVELS = (80, 95)
#: The quantile levels forecasts carry by default (planners set stock from p10..p90).
DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
FLOOR_SHARE = 0.5
BAND_COLUMNS = tuple(f"{side}_{level}" for level in LEVELS for side in ("lo", "hi"))


def quantile_column(level: float) -> str:
    """``q0.1`` for 0.1: the column of a quantile level, as the level is written."""
    return f"q{level:g}"


def quantile_level(name: object) -> float | None:
    """The level of a quantile column (``q0.1`` -> 0.1), ``None`` for any other column."""
    if not isinstance(name, str) or not name.startswith("q"):
        return None
    try:
        level = float(name[1:])
    except ValueError:
        return None
    return level if 0.0 < level < 1.0 else None


def quantile_columns(columns: Iterable[object]) -> list[str]:
    """The quantile columns among ``columns``, by level."""
    found = [(lv, str(c)) for c in columns if (lv := quantile_level(c)) is not None]
    return [c for _, c in sorted(found)]


def check_quantiles(levels: Sequence[float]) -> tuple[float, ...]:
    """Sorted distinct levels, each strictly between 0 and 1 (``ValueError`` otherwise)."""
    out = sorted({float(q) for q in levels})
    bad = [q for q in out if not 0.0 < q < 1.0]
    if bad or not out:
        raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {list(levels)}")
    return tuple(out)


def _scale(frame: pd.DataFrame, keys: Sequence[str] | None = None) -> np.ndarray:
    """``|yhat|`` floored at ``FLOOR_SHARE`` x the mean ``|yhat|`` of the row's series (and window).

    ``keys`` are the series key columns (default: Walmart's ``store``/``dept`` where present).
    """
    absolute = frame["yhat"].abs()
    keys = [c for c in ("store", "dept") if c in frame.columns] if keys is None else list(keys)
    groups = [c for c in (*keys, "cutoff") if c in frame.columns]
    if not groups:
        return absolute.to_numpy(dtype="float64")
    mean = absolute.groupby([frame[c] for c in groups], sort=False).transform("mean")
    return np.maximum(absolute.to_numpy(dtype="float64"), FLOOR_SHARE * mean.to_numpy(dtype="float64"))


def _sample_quantile(values: np.ndarray, level: float) -> float:
    return float(np.quantile(values, level, method="higher" if level >= 0.5 else "lower"))


@dataclass(frozen=True)
class ConformalIntervals:
    """Per-step relative quantiles, indexed by step: the bands and the quantile levels."""

    table: pd.DataFrame  # columns: step, lo_80, hi_80, lo_95, hi_95, q<level>... (relative)
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES

    @classmethod
    def from_residuals(
        cls,
        residuals: pd.DataFrame,
        keys: Sequence[str] | None = None,
        *,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        pool_steps: bool = False,
    ) -> ConformalIntervals:
        """``residuals`` has ``step``, ``y`` and ``yhat`` (and series keys and ``cutoff`` for the floor)."""
        levels = check_quantiles(quantiles)
        frame = residuals.dropna(subset=["y", "yhat"])
        scale = _scale(frame, keys)
        keep = scale > 1e-9
        frame = frame[keep]
        rel = (frame["y"] - frame["yhat"]) / scale[keep]
        steps = frame["step"] if not pool_steps else pd.Series(1, index=frame.index)
        rows = []
        for step, values in rel.groupby(steps):
            sample = values.to_numpy(dtype="float64")
            row: dict[str, float] = {"step": int(step)}
            for level in LEVELS:
                alpha = (100 - level) / 200
                row[f"lo_{level}"] = _sample_quantile(sample, alpha)
                row[f"hi_{level}"] = _sample_quantile(sample, 1 - alpha)
            for q in levels:
                row[quantile_column(q)] = _sample_quantile(sample, q)
            rows.append(row)
        table = pd.DataFrame(rows)
        if pool_steps and not table.empty:
            table["step"] = 0  # one row serves every step
        return cls(table, levels)

    @property
    def pooled(self) -> bool:
        return bool(len(self.table) == 1 and int(self.table["step"].iloc[0]) == 0)

    def apply(self, forecast: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """Add ``lo_80, hi_80, lo_95, hi_95`` and ``q<level>`` to a forecast with ``step`` and ``yhat``.

        Steps beyond the calibrated horizon reuse the widest calibrated step.
        """
        out = forecast.reset_index(drop=True).copy()
        columns = [*BAND_COLUMNS, *(quantile_column(q) for q in self.quantiles)]
        if self.table.empty:
            for col in columns:
                out[col] = np.nan
            return out
        table = self.table.set_index("step").sort_index()
        if self.pooled:
            q = pd.DataFrame([table.iloc[0]] * len(out)).reset_index(drop=True)
        else:
            steps = out["step"].clip(upper=int(table.index.max()))
            q = table.reindex(steps).reset_index(drop=True)
        scale = _scale(out, keys)
        for col in columns:
            if col in q:
                out[col] = out["yhat"].to_numpy(dtype="float64") + q[col].to_numpy(dtype="float64") * scale
        return out

    def to_records(self) -> list[dict[str, float]]:
        return self.table.to_dict(orient="records")  # type: ignore[return-value]

    @classmethod
    def from_records(cls, records: list[dict[str, float]]) -> ConformalIntervals:
        table = pd.DataFrame(records)
        levels = tuple(float(c[1:]) for c in table.columns if c.startswith("q"))
        return cls(table, levels or DEFAULT_QUANTILES)
