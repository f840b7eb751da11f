"""Conformal prediction intervals, per horizon step, from backtest residuals.

Residuals are relative to the forecast, ``(y - yhat) / scale``, so one calibration serves
stores of any size. ``scale`` is ``|yhat|``, floored at half the series' mean ``|yhat|``
(over the window, or over the forecast horizon): a department forecast near zero would
otherwise turn an ordinary error into an enormous relative one and widen every band. A
store's forecast never falls below half its mean, so at store level the scale is ``|yhat|``.
For each step the empirical quantiles give the 80% and 95% bands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVELS = (80, 95)
FLOOR_SHARE = 0.5


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


@dataclass(frozen=True)
class ConformalIntervals:
    """Per-step lower/upper relative quantiles, indexed by step."""

    table: pd.DataFrame  # columns: step, lo_80, hi_80, lo_95, hi_95 (relative)

    @classmethod
    def from_residuals(cls, residuals: pd.DataFrame, keys: Sequence[str] | None = None) -> ConformalIntervals:
        """``residuals`` has ``step``, ``y`` and ``yhat`` (and series keys and ``cutoff`` for the floor)."""
        frame = residuals.dropna(subset=["y", "yhat"])
        scale = _scale(frame, keys)
        keep = scale > 1e-9
        frame = frame[keep]
        rel = (frame["y"] - frame["yhat"]) / scale[keep]
        rows = []
        for step, values in rel.groupby(frame["step"]):
            row: dict[str, float] = {"step": int(step)}
            for level in LEVELS:
                alpha = (100 - level) / 200
                row[f"lo_{level}"] = float(np.quantile(values, alpha, method="higher" if alpha > 0.5 else "lower"))
                row[f"hi_{level}"] = float(np.quantile(values, 1 - alpha, method="higher"))
            rows.append(row)
        return cls(pd.DataFrame(rows))

    def apply(self, forecast: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """Add ``lo_80, hi_80, lo_95, hi_95`` to a forecast with ``step`` and ``yhat``.

        Steps beyond the calibrated horizon reuse the widest calibrated step.
        """
        if self.table.empty:
            out = forecast.copy()
            for level in LEVELS:
                out[f"lo_{level}"] = np.nan
                out[f"hi_{level}"] = np.nan
            return out
        table = self.table.set_index("step").sort_index()
        steps = forecast["step"].clip(upper=int(table.index.max()))
        q = table.reindex(steps).reset_index(drop=True)
        out = forecast.reset_index(drop=True).copy()
        scale = _scale(out, keys)
        for level in LEVELS:
            out[f"lo_{level}"] = out["yhat"] + q[f"lo_{level}"].to_numpy() * scale
            out[f"hi_{level}"] = out["yhat"] + q[f"hi_{level}"].to_numpy() * scale
        return out

    def to_records(self) -> list[dict[str, float]]:
        return self.table.to_dict(orient="records")  # type: ignore[return-value]

    @classmethod
    def from_records(cls, records: list[dict[str, float]]) -> ConformalIntervals:
        return cls(pd.DataFrame(records))
