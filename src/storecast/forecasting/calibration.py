"""How a level's quantiles and bands are calibrated on out-of-sample errors: one interface
over the two methods the backtest chooses between.

- ``conformal``: per horizon step, quantiles of the errors relative to the forecast
  (``models.intervals.ConformalIntervals``); steps pooled for levels with few series.
- ``scaled``: errors divided by a fitted scale (the forecast's level, the series' own
  week-to-week noise, the step), standardized quantiles pooled
  (``models.quantiles.ScaledQuantiles``): narrower bands for big, steady series and wider
  ones for small, erratic ones. Needs a ``noise`` column (``series_noise``).

``evaluate_pipeline`` calibrates each backtest window both ways on the other windows and
keeps, per level, the method with the lower weighted quantile loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from storecast.models.intervals import ConformalIntervals, quantile_level
from storecast.models.quantiles import SCALE_FEATURES, ScaledQuantiles


@dataclass(frozen=True)
class Calibrator:
    kind: str  # "conformal", "scaled" or "none"
    quantiles: tuple[float, ...]
    conformal: ConformalIntervals | None = None
    scaled: ScaledQuantiles | None = None
    #: bands and quantiles never go below this (0 for sales that never went negative)
    floor: float | None = None

    @classmethod
    def empty(cls, quantiles: Sequence[float]) -> Calibrator:
        return cls("none", tuple(quantiles), conformal=ConformalIntervals(pd.DataFrame(), tuple(quantiles)))

    @classmethod
    def fit(cls, kind: str, residuals: pd.DataFrame, level: Sequence[str], quantiles: Sequence[float],
            pool: bool = False, floor: float | None = None) -> Calibrator:
        if kind == "scaled":
            scaled = ScaledQuantiles.from_residuals(residuals, keys=list(level), features=SCALE_FEATURES)
            return cls("scaled", tuple(quantiles), scaled=scaled, floor=floor)
        intervals = ConformalIntervals.from_residuals(residuals, list(level), quantiles=quantiles, pool_steps=pool)
        return cls("conformal", tuple(quantiles), conformal=intervals, floor=floor)

    @property
    def needs_noise(self) -> bool:
        return self.kind == "scaled" and self.scaled is not None and "noise" in self.scaled.features

    def apply(self, forecast: pd.DataFrame, level: Sequence[str]) -> pd.DataFrame:
        """``forecast`` (keys, step, yhat[, noise]) with bands and quantile columns."""
        if self.kind == "scaled" and self.scaled is not None:
            out = self.scaled.apply(forecast, list(self.quantiles), keys=list(level))
        else:
            assert self.conformal is not None
            out = self.conformal.apply(forecast, list(level))
        if self.floor is not None:
            bounds = [c for c in out.columns if isinstance(c, str) and (c.startswith(("lo_", "hi_")) or quantile_level(c) is not None)]
            out[bounds] = out[bounds].clip(lower=self.floor)
        return out

    def to_record(self) -> dict[str, Any]:
        if self.kind == "scaled" and self.scaled is not None:
            return {"kind": "scaled", "scaled": self.scaled.to_record(), "floor": self.floor}
        return {"kind": self.kind, "table": self.conformal.to_records() if self.conformal is not None else [],
                "floor": self.floor}

    @classmethod
    def from_record(cls, record: dict[str, Any], quantiles: Sequence[float]) -> Calibrator:
        kind = record.get("kind", "conformal")
        floor = record.get("floor")
        if kind == "scaled":
            return cls("scaled", tuple(quantiles), scaled=ScaledQuantiles.from_record(record["scaled"]), floor=floor)
        return cls(kind, tuple(quantiles), conformal=ConformalIntervals(pd.DataFrame(record.get("table", [])), tuple(quantiles)),
                   floor=floor)

    @classmethod
    def from_intervals(cls, intervals: ConformalIntervals) -> Calibrator:
        return cls("conformal", intervals.quantiles, conformal=intervals)

