"""Quantile forecasts at any levels from point forecasts and out-of-sample residuals.

Split-conformal with a scale model (normalised conformal prediction, Papadopoulos et al.
2008; Lei et al. 2018). Each calibration residual ``y - yhat`` is divided by a predicted
scale ``s``; the empirical quantiles of ``z = (y - yhat) / s``, pooled over series and
steps, give every level, and a forecast's quantile is ``yhat + s * q_z(level)``:
monotone in the level by construction, and the 0.5 quantile is the point forecast itself
(``center=True``: WAPE and the median quantile agree).

The scale is ``log s = c0 + sum_k c_k log f_k``, fitted by least squares to ``log |y - yhat|``
on the calibration residuals, with features (``SCALE_FEATURES``):

- ``level``: ``|yhat|`` floored at half the series' mean ``|yhat|`` (as ``models.intervals``);
  measured errors grow less than in proportion to it (department data: exponent ~0.4-0.65),
  so one relative band per step is too wide for large departments and too narrow for small;
- ``noise``: the series' mean absolute week-to-week change over its last year of history
  (``series_noise``), how erratic the series itself is at that level;
- ``step``: the horizon step, in logs (errors grow with it, slowly for year-over-year models);
- any other positive column both frames carry (e.g. the spread of an ensemble's members).

The residuals must be out of sample for the forecasts they calibrate: from backtest windows
or inner windows before the forecast origin (``evaluation.backtest``). Steps beyond the
calibrated ones extrapolate through the ``step`` term.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK
from storecast.errors import UsageError

#: The levels the public benchmarks score (fev-bench, GluonTS): 0.1, 0.2, ..., 0.9.
DEFAULT_LEVELS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 10))
#: Central bands and the quantile levels bounding them.
BANDS: dict[int, tuple[float, float]] = {80: (0.1, 0.9), 95: (0.025, 0.975)}
SCALE_FEATURES: tuple[str, ...] = ("level", "noise", "step")
FLOOR_SHARE = 0.5
#: Fewest calibration residuals for a scale model; below it the scale is ``level`` alone.
MIN_RESIDUALS = 200
#: The standardized residuals' quantiles are kept on this grid of levels and interpolated.
_GRID = np.round(np.concatenate([[0.001, 0.0025], np.arange(0.005, 0.9951, 0.005), [0.9975, 0.999]]), 4)


def quantile_column(level: float) -> str:
    """``q0.1`` for level 0.1: the column name of a quantile (as given, no padding)."""
    return f"q{level:g}"


def series_noise(history: pd.DataFrame, keys: Sequence[str], *, weeks: int = 52) -> pd.DataFrame:
    """Per series: mean absolute change between consecutive weeks over its last ``weeks`` weeks.

    Only pairs of weeks one week apart count (a gap is not a change). Columns: ``keys`` and
    ``noise`` (NaN for a series with no such pair).
    """
    keys = list(keys)
    frame = history.dropna(subset=[TARGET])[[*keys, WEEK, TARGET]].sort_values([*keys, WEEK], kind="stable")
    last = frame.groupby(keys, sort=False)[WEEK].transform("max")
    frame = frame[frame[WEEK] > last - pd.Timedelta(weeks=weeks)]
    same = (frame[keys].shift() == frame[keys]).all(axis=1)
    gap = frame[WEEK].diff() == pd.Timedelta(weeks=1)
    change = frame[TARGET].diff().abs().where(same & gap)
    out = change.groupby([frame[k] for k in keys], sort=True).mean().rename("noise").reset_index()
    return out


def _level(frame: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    absolute = frame["yhat"].abs()
    groups = [c for c in (*keys, "cutoff") if c in frame.columns]
    if not groups:
        return absolute.to_numpy(dtype="float64")
    mean = absolute.groupby([frame[c] for c in groups], sort=False).transform("mean")
    return np.maximum(absolute.to_numpy(dtype="float64"), FLOOR_SHARE * mean.to_numpy(dtype="float64"))


def _design(frame: pd.DataFrame, features: Sequence[str], keys: Sequence[str]) -> np.ndarray:
    """Rows x (1 + features): the intercept and each feature's log (NaN where unusable)."""
    cols = [np.ones(len(frame))]
    for name in features:
        if name == "level":
            values = _level(frame, keys)
        elif name == "step":
            values = frame["step"].to_numpy(dtype="float64")
        else:
            if name not in frame.columns:
                raise UsageError(f"scale feature {name!r} is not a column of the frame")
            values = frame[name].to_numpy(dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            cols.append(np.where(values > 0, np.log(values), np.nan))
    return np.column_stack(cols)


@dataclass(frozen=True)
class ScaledQuantiles:
    """A fitted scale model and the standardized residuals' quantiles (see module docstring)."""

    features: tuple[str, ...]
    coef: tuple[float, ...]  # intercept, then one per feature (log scale)
    fill: tuple[float, ...]  # per feature: the log value used where a row has none (median)
    grid: tuple[float, ...]  # z quantiles at ``_GRID`` levels

    @classmethod
    def from_residuals(
        cls,
        residuals: pd.DataFrame,
        *,
        keys: Sequence[str] = (),
        features: Sequence[str] = SCALE_FEATURES,
        center: bool = True,
    ) -> ScaledQuantiles:
        """Fit on out-of-sample ``residuals``: columns ``y``, ``yhat``, ``step``, ``keys``
        (and ``cutoff`` if several origins), plus any feature columns (``noise``, ...).

        A feature whose column is missing or never positive is left out, so a caller
        without history (no ``noise``) still gets level and step scaling.
        """
        keys = [k for k in keys if k in residuals.columns]
        frame = residuals.dropna(subset=["y", "yhat"]).reset_index(drop=True)
        frame = frame[frame["yhat"].abs() + frame["y"].abs() > 0].reset_index(drop=True)
        if frame.empty:
            raise UsageError("no residuals to calibrate quantiles on")
        usable = [f for f in features if f in ("level", "step") or (f in frame.columns and (frame[f] > 0).any())]
        if len(frame) < MIN_RESIDUALS:
            usable = ["level"]
        x = _design(frame, usable, keys)
        fill = np.nanmedian(x[:, 1:], axis=0) if usable else np.zeros(0)
        x[:, 1:] = np.where(np.isfinite(x[:, 1:]), x[:, 1:], fill)
        err = np.abs(frame["y"].to_numpy(dtype="float64") - frame["yhat"].to_numpy(dtype="float64"))
        positive = err[err > 0]
        floor = 0.01 * float(np.median(positive)) if positive.size else 1.0
        target = np.log(np.maximum(err, floor))
        if len(usable) > 1 and len(frame) >= MIN_RESIDUALS:
            coef, *_ = np.linalg.lstsq(x, target, rcond=None)
        else:  # one feature or few residuals: scale in proportion to the level alone
            coef = np.array([0.0, *([1.0] if usable else [])])
        scale = np.exp(x @ coef)
        z = (frame["y"].to_numpy(dtype="float64") - frame["yhat"].to_numpy(dtype="float64")) / scale
        grid = np.quantile(z, _GRID)
        if center:
            grid = grid - float(np.median(z))
        return cls(tuple(usable), tuple(float(c) for c in coef), tuple(float(f) for f in fill), tuple(float(g) for g in grid))

    def scale(self, forecast: pd.DataFrame, keys: Sequence[str] = ()) -> np.ndarray:
        """The predicted error scale of each forecast row."""
        keys = [k for k in keys if k in forecast.columns]
        x = _design(forecast.reset_index(drop=True), self.features, keys)
        x[:, 1:] = np.where(np.isfinite(x[:, 1:]), x[:, 1:], np.asarray(self.fill))
        return np.exp(x @ np.asarray(self.coef))

    def z(self, levels: Sequence[float]) -> np.ndarray:
        """Standardized residual quantiles at ``levels`` (interpolated, non-decreasing)."""
        lv = np.asarray(levels, dtype="float64")
        if ((lv <= 0) | (lv >= 1)).any():
            raise UsageError(f"quantile levels must lie in (0, 1), got {list(levels)}")
        # Interpolating a non-decreasing grid keeps the quantiles non-decreasing in the level.
        return np.interp(lv, _GRID, np.maximum.accumulate(np.asarray(self.grid)))

    def apply(self, forecast: pd.DataFrame, levels: Sequence[float] = DEFAULT_LEVELS, *,
              keys: Sequence[str] = (), bands: bool = True) -> pd.DataFrame:
        """``forecast`` (``yhat``, ``step``, keys, feature columns) plus one column per level
        (``quantile_column``) and, with ``bands``, ``lo_80, hi_80, lo_95, hi_95``."""
        out = forecast.reset_index(drop=True).copy()
        s = self.scale(out, keys)
        yhat = out["yhat"].to_numpy(dtype="float64")
        wanted = list(levels) + ([lv for pair in BANDS.values() for lv in pair] if bands else [])
        q = yhat[:, None] + s[:, None] * self.z(wanted)[None, :]
        for j, level in enumerate(levels):
            out[quantile_column(level)] = q[:, j]
        if bands:
            for k, level in enumerate(BANDS):
                out[f"lo_{level}"] = q[:, len(levels) + 2 * k]
                out[f"hi_{level}"] = q[:, len(levels) + 2 * k + 1]
        return out

    def to_record(self) -> dict[str, Any]:
        return {"features": list(self.features), "coef": list(self.coef), "fill": list(self.fill), "grid": list(self.grid)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ScaledQuantiles:
        return cls(tuple(record["features"]), tuple(record["coef"]), tuple(record["fill"]), tuple(record["grid"]))


def quantile_forecast(
    forecast: pd.DataFrame,
    residuals: pd.DataFrame,
    levels: Sequence[float] = DEFAULT_LEVELS,
    *,
    keys: Sequence[str] = (),
    features: Sequence[str] = SCALE_FEATURES,
) -> pd.DataFrame:
    """Point ``forecast`` plus quantile columns at ``levels``, calibrated on ``residuals``
    (out-of-sample ``y``/``yhat`` of the same model; see ``ScaledQuantiles``)."""
    model = ScaledQuantiles.from_residuals(residuals, keys=keys, features=features)
    return model.apply(forecast, levels, keys=keys)


__all__ = ["BANDS", "DEFAULT_LEVELS", "SCALE_FEATURES", "ScaledQuantiles", "quantile_column", "quantile_forecast", "series_noise"]
