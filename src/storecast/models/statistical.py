"""Statistical models from statsforecast behind the ``Forecaster`` contract.

Every series is fitted on its own (a plain loop, so runs are deterministic and
single-threaded), on the log of sales when the series is strictly positive and on the
level otherwise (department series with returns or zero weeks). Series too short for the
model get a stated fallback instead of an error, so department data with new or gappy
departments still gets a forecast for every series: non-seasonal ETS from
``FALLBACK_ETS_WEEKS`` weeks, below that the mean of the last weeks.

Artifacts: statsforecast keeps its fitted state in nested Python objects, so a saved model
stores the training weeks of each series (Parquet, at most ``max_history_weeks``) plus the
specification the fit selected (ARIMA orders and which regressors were used, as JSON), and
``load`` refits that fixed specification. The fit itself always goes through the same
fixed-specification refit, so loaded models predict exactly what the saved one did, and
reloading an automatically searched ARIMA does not repeat the search.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK
from storecast.features.calendar import US_CALENDAR, RetailCalendar
from storecast.models.base import Forecaster

SEASON = 52
#: Below this many weeks a series is forecast by the mean of its last weeks.
FALLBACK_ETS_WEEKS = 8
#: Weeks averaged for the shortest series' flat forecast.
FALLBACK_MEAN_WEEKS = 8
#: Calendar events the ARIMA regressors know, as (name, rule on ``calendar_features``).
ARIMAX_EVENTS: tuple[str, ...] = (
    "is_super_bowl",
    "is_easter",
    "is_labor_day",
    "is_thanksgiving",
    "pre_christmas_2",
    "pre_christmas_1",
    "is_christmas",
    "after_christmas",
)


# ---- panel helpers, shared with the gradient-boosting model ------------------------------
def dense_panel(
    history: pd.DataFrame, keys: list[str], last_week: pd.Timestamp, *, zero_fill: bool | None = None
) -> tuple[pd.DataFrame, pd.DatetimeIndex, np.ndarray]:
    """Series x weeks matrix of sales on a regular weekly grid ending at ``last_week``.

    Weeks before a series' first observation stay NaN. Missing weeks after it are zero with
    ``zero_fill`` (the Walmart department files leave out weeks without sales; the spec's
    ``missing_weeks="zero"``) and linearly interpolated otherwise (a missing store week is a
    data gap, not a closed store). ``None``: zero for multi-key data.
    """
    first = pd.Timestamp(history[WEEK].min())
    weeks = pd.date_range(first, last_week, freq="7D")
    wide = history.pivot_table(index=keys, columns=WEEK, values=TARGET, aggfunc="sum")
    wide = wide.reindex(columns=weeks)
    values = wide.to_numpy(dtype="float64")
    started = np.cumsum(~np.isnan(values), axis=1) > 0
    if zero_fill if zero_fill is not None else len(keys) > 1:
        values = np.where(started & np.isnan(values), 0.0, values)
    else:
        filled = wide.T.interpolate(limit_direction="forward").T.to_numpy(dtype="float64")
        values = np.where(started, filled, np.nan)
    index = wide.index.to_frame(index=False)
    return index, weeks, values


def fourier_terms(weeks: pd.DatetimeIndex, order: int) -> pd.DataFrame:
    """Yearly sine/cosine pairs of the day of year (so they follow the calendar, not lag 52)."""
    t = 2 * np.pi * weeks.dayofyear.to_numpy() / 365.25
    cols = {}
    for k in range(1, order + 1):
        cols[f"fourier_sin_{k}"] = np.sin(k * t)
        cols[f"fourier_cos_{k}"] = np.cos(k * t)
    return pd.DataFrame(cols, index=range(len(weeks)))


def arimax_regressors(weeks: pd.DatetimeIndex, fourier_order: int, calendar: RetailCalendar = US_CALENDAR) -> pd.DataFrame:
    """Known-future regressors for any week: Fourier terms, holiday weeks, month start."""
    cal = calendar.calendar_features(weeks)
    out = fourier_terms(weeks, fourier_order)
    if calendar.christmas is not None:
        cal["after_christmas"] = cal[f"weeks_from_{calendar.christmas}"] == 1
    if calendar is US_CALENDAR or calendar.spec.country == "US":
        events: list[str] = list(ARIMAX_EVENTS)
    else:
        events = [f"is_{h}" for h in calendar.holidays]
        if calendar.christmas is not None:
            events += ["pre_christmas_2", "pre_christmas_1", "after_christmas"]
    for name in events:
        out[name] = cal[name].astype("float64").to_numpy()
    out["month_start_days"] = cal["month_start_days"].astype("float64").to_numpy()
    return out


# ---- the shared per-series machinery -------------------------------------------------------
class _PerSeries(Forecaster):
    """Fit a statsforecast model per series; subclasses say which model and its spec."""

    #: weeks a series needs for the model itself; shorter series use the fallbacks.
    min_history_weeks: ClassVar[int] = SEASON + 8
    uses_regressors: ClassVar[bool] = False

    def __init__(self, *, seed: int = 0, max_history_weeks: int = 3 * SEASON, **params: Any) -> None:
        super().__init__(seed=seed, max_history_weeks=max_history_weeks, **params)
        self.max_history_weeks = max_history_weeks

    # subclasses -----------------------------------------------------------------------------
    def _select(self, z: np.ndarray, x: np.ndarray | None, columns: list[str]) -> dict[str, Any]:
        """Choose the specification for one series (default: nothing to choose)."""
        return {}

    def _build(self, spec: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _regressors(self, weeks: pd.DatetimeIndex) -> pd.DataFrame:
        raise NotImplementedError

    # contract --------------------------------------------------------------------------------
    def _fit(self, history: pd.DataFrame) -> None:
        index, weeks, values = dense_panel(history, self.keys_, self.last_week_, zero_fill=self.spec_.missing_weeks == "zero")
        keep = weeks[-self.max_history_weeks:]
        values = values[:, -len(keep):]
        self.weeks_ = keep
        self.series_ = index
        self.values_ = values
        self.specs_ = [self._fit_series(i, self._select_safe(i)) for i in range(len(index))]

    def _select_safe(self, i: int) -> dict[str, Any]:
        z, log, x, cols = self._inputs(i)
        n = len(z)
        base = {"log": log}
        if n == 0 or not np.any(z != 0):
            return {**base, "kind": "zero"}
        if n < FALLBACK_ETS_WEEKS:
            return {**base, "kind": "mean"}
        if n < self.min_history_weeks:
            return {**base, "kind": "ets"}
        try:
            return {**base, "kind": "model", **self._select(z, x, cols)}
        except Exception:  # noqa: BLE001 - a numerically failed search falls back, per series
            return {**base, "kind": "ets"}

    def _inputs(self, i: int) -> tuple[np.ndarray, bool, np.ndarray | None, list[str]]:
        row = self.values_[i]
        start = int(np.argmax(~np.isnan(row))) if np.any(~np.isnan(row)) else len(row)
        y = row[start:]
        log = bool(len(y) and np.all(y > 0))
        z = np.log(y) if log else y
        if not self.uses_regressors or len(y) == 0:
            return z, log, None, []
        if getattr(self, "_reg_weeks", None) is not self.weeks_:
            self._reg_all, self._reg_weeks = self._regressors(self.weeks_), self.weeks_
        reg = self._reg_all.iloc[start:]
        # Columns constant over this series' weeks carry no information and make X singular.
        cols = [c for c in reg.columns if reg[c].nunique() > 1]
        return z, log, reg[cols].to_numpy(dtype="float64") if cols else None, cols

    def _fit_series(self, i: int, spec: dict[str, Any]) -> dict[str, Any]:
        """Fit the fixed specification; the same code runs when a saved model is loaded."""
        if spec["kind"] in ("model", "ets"):
            z, _log, x, cols = self._inputs(i)
            use = spec.get("columns", cols) if spec["kind"] == "model" else []
            x_use = self._columns(x, cols, use)
            try:
                fitted = self._build(spec).fit(z, x_use) if spec["kind"] == "model" else _ets().fit(z)
            except Exception:  # noqa: BLE001 - a numerically failed fit falls back, per series
                spec = {**spec, "kind": "ets"}
                fitted = _ets().fit(z)
            self.fitted_ = getattr(self, "fitted_", {})
            self.fitted_[i] = fitted
        return spec

    @staticmethod
    def _columns(x: np.ndarray | None, have: list[str], want: list[str]) -> np.ndarray | None:
        if x is None or not want:
            return None
        return x[:, [have.index(c) for c in want]]

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        weeks = self.future_weeks(horizon)
        reg = self._regressors(weeks) if self.uses_regressors else None
        parts = []
        for i, spec in enumerate(self.specs_):
            parts.append(self._forecast_series(i, spec, horizon, reg))
        frame = self.series_.loc[self.series_.index.repeat(horizon)].reset_index(drop=True)
        frame[WEEK] = np.tile(weeks, len(self.series_))
        frame["step"] = np.tile(np.arange(1, horizon + 1), len(self.series_))
        frame["yhat"] = np.concatenate(parts) if parts else np.array([], dtype="float64")
        return frame

    def _forecast_series(self, i: int, spec: dict[str, Any], horizon: int, reg: pd.DataFrame | None) -> np.ndarray:
        kind = spec["kind"]
        row = self.values_[i]
        y = row[~np.isnan(row)]
        if kind == "zero":
            return np.zeros(horizon)
        if kind == "mean":
            return np.full(horizon, float(np.mean(y[-FALLBACK_MEAN_WEEKS:])))
        x_future = None
        if kind == "model" and reg is not None and spec.get("columns"):
            x_future = reg[spec["columns"]].to_numpy(dtype="float64")
        mean = np.asarray(self.fitted_[i].predict(h=horizon, X=x_future)["mean"], dtype="float64")
        out = np.exp(mean) if spec["log"] else mean
        if not np.all(np.isfinite(out)):
            out = np.full(horizon, float(np.mean(y[-FALLBACK_MEAN_WEEKS:])))
        return out

    # persistence -------------------------------------------------------------------------------
    def _save_state(self, folder: Path) -> dict[str, Any]:
        table = self.series_.copy()
        wide = pd.DataFrame(self.values_, columns=[w.date().isoformat() for w in self.weeks_])
        pd.concat([table, wide], axis=1).to_parquet(folder / "history.parquet", index=False)
        (folder / "specs.json").write_text(json.dumps(self.specs_, indent=1))
        return {"history": "history.parquet", "specs": "specs.json"}

    def _load_state(self, folder: Path, state: dict[str, Any]) -> None:
        table = pd.read_parquet(folder / state["history"])
        self.series_ = table[self.keys_].reset_index(drop=True)
        week_cols = [c for c in table.columns if c not in self.keys_]
        self.weeks_ = pd.DatetimeIndex(pd.to_datetime(week_cols))
        self.values_ = table[week_cols].to_numpy(dtype="float64")
        specs = json.loads((folder / state["specs"]).read_text())
        self.fitted_ = {}
        self.specs_ = [self._fit_series(i, spec) for i, spec in enumerate(specs)]


def _ets() -> Any:
    from statsforecast.models import AutoETS

    return AutoETS(season_length=1, model="ZZN")


class MSTLModel(_PerSeries):
    """STL decomposition with a 52-week season; the seasonally adjusted series by ETS."""

    name = "mstl"
    description = "statsforecast MSTL (season 52, ETS trend) per series, on log sales."

    def _build(self, spec: dict[str, Any]) -> Any:
        from statsforecast.models import MSTL

        # With fewer than two years each week of the year's seasonal term rests on one or two
        # observations, i.e. it degrades towards last year's detrended week; below one year
        # plus the level window the fallbacks take over.
        return MSTL(season_length=SEASON, trend_forecaster=_ets())


class ETSModel(_PerSeries):
    """Automatic exponential smoothing (statsforecast allows no season longer than 24)."""

    name = "ets"
    min_history_weeks = 2 * FALLBACK_ETS_WEEKS
    description = "statsforecast AutoETS per series (non-seasonal: weekly seasons exceed ETS's limit)."

    def _select(self, z: np.ndarray, x: np.ndarray | None, columns: list[str]) -> dict[str, Any]:
        from statsforecast.models import AutoETS

        fitted = AutoETS(season_length=1, model="ZZN").fit(z)
        comp = str(fitted.model_["components"])
        return {"ets": comp[:2] + "N", "damped": comp[3] == "True"}

    def _build(self, spec: dict[str, Any]) -> Any:
        from statsforecast.models import AutoETS

        return AutoETS(season_length=1, model=spec["ets"], damped=spec["damped"])


class _ArimaBase(_PerSeries):
    """Search ARIMA orders once per series with AutoARIMA, then fit the fixed orders."""

    season_length: ClassVar[int] = 1

    def _search(self) -> Any:
        from statsforecast.models import AutoARIMA

        return AutoARIMA(season_length=self.season_length)

    def _fixed_spec(self, columns: list[str]) -> dict[str, Any] | None:
        """A specification to use without searching, or None to search."""
        return None

    def _select(self, z: np.ndarray, x: np.ndarray | None, columns: list[str]) -> dict[str, Any]:
        fixed = self._fixed_spec(columns)
        if fixed is not None:
            return fixed
        fitted = self._search().fit(z, x)
        p, q, sp, sq, m, d, sd = (int(v) for v in fitted.model_["arma"])
        coef = list(fitted.model_["coef"])
        return {
            "order": [p, d, q],
            "seasonal_order": [sp, sd, sq],
            "season_length": m,
            "include_mean": "intercept" in coef,
            "include_drift": "drift" in coef,
            "columns": columns,
        }

    def _build(self, spec: dict[str, Any]) -> Any:
        from statsforecast.models import ARIMA

        return ARIMA(
            order=tuple(spec["order"]),
            season_length=spec["season_length"],
            seasonal_order=tuple(spec["seasonal_order"]),
            include_mean=spec["include_mean"],
            include_drift=spec["include_drift"],
        )


class AutoARIMAModel(_ArimaBase):
    """Seasonal AutoARIMA with a 52-week season (the peer a user would reach for)."""

    name = "auto_arima"
    season_length = SEASON
    description = "statsforecast AutoARIMA per series (season 52), on log sales."

    def _search(self) -> Any:
        from statsforecast.models import AutoARIMA

        # Seasonal orders above 1 at a 52-week season cost much and two years cannot support them.
        return AutoARIMA(season_length=SEASON, max_p=3, max_q=3, max_P=1, max_Q=1)


class ARIMAXModel(_ArimaBase):
    """ARIMA errors around Fourier terms, holiday weeks and the month-start days.

    The regressors come from the retail calendar, so they are known for any future week;
    a series whose weeks leave a regressor constant (a department opened after Christmas)
    simply leaves it out.
    """

    name = "arimax"
    uses_regressors = True
    description = "ARIMA errors around yearly Fourier terms, holiday-week and month-start regressors."

    def __init__(self, *, seed: int = 0, fourier_order: int = 5, search_max_series: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, fourier_order=fourier_order, search_max_series=search_max_series, **params)
        self.fourier_order = fourier_order
        self.search_max_series = search_max_series

    def _fit(self, history: pd.DataFrame) -> None:
        # The order search costs about a second per series (Walmart.csv: MAPE 5.35 vs 5.75
        # with AR(1) errors, but 40x slower), so by default every series gets the usual
        # dynamic-harmonic-regression choice, AR(1) errors; ``search_max_series`` turns
        # the search on for datasets with at most that many series.
        self._searching = history.groupby(self.keys_).ngroups <= self.search_max_series
        super()._fit(history)

    def _search(self) -> Any:
        from statsforecast.models import AutoARIMA

        return AutoARIMA(season_length=1, max_p=2, max_q=2, max_d=1, max_P=0, max_Q=0)

    def _fixed_spec(self, columns: list[str]) -> dict[str, Any] | None:
        if self._searching:
            return None
        return {"order": [1, 0, 0], "seasonal_order": [0, 0, 0], "season_length": 1,
                "include_mean": True, "include_drift": False, "columns": columns}

    def _regressors(self, weeks: pd.DatetimeIndex) -> pd.DataFrame:
        return arimax_regressors(weeks, self.fourier_order, self.calendar)


STATISTICAL_MODELS: tuple[type[Forecaster], ...] = (MSTLModel, ETSModel, AutoARIMAModel, ARIMAXModel)
