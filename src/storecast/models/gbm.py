"""A global LightGBM model: every series pooled, one direct model for all horizon steps.

Two years of weekly history hold only two examples of each holiday per series, so the
model learns from all series at once. Each training row is (series, origin week, step):
the target is the sales of the week ``step`` weeks after the origin divided by the
series' scale at the origin (mean absolute sales of the last 52 weeks), so stores and
departments of any size - and department series with zero or negative weeks - share one
model. Features, all known at the origin:

- the target week's retail calendar (``features.calendar``: holiday weeks, weeks to and
  from each holiday, pre-Christmas weeks, month-start days, calendar drift) and the step;
- last year's comparable week (calendar-aligned, so Thanksgiving meets Thanksgiving) and
  its neighbours, plain lag 52, and the recent level (last 1/4/13 weeks) - all scaled;
  last year's same calendar days (the comparable week blended with its neighbour by the
  days each holds, ``models.calendar_naive``), own and pooled: a tree cannot interpolate
  between two lag columns by the 1-2 days the calendar drifted;
- year-over-year growth of the 13-week level; the scale itself (log);
- known-future covariates of the target week (the spec's: ``is_holiday``, ``markdown1..5``
  for Walmart, prices and promotions for another retailer; a forecast reads them from
  ``future``), past-only covariates (temperature, fuel, CPI, unemployment) as last observed
  at the origin, static attributes (numbers as they are, text as categories), and the most
  detailed key (the department) as a category.

Lags never reach past the origin, so one model serves every step (direct, not recursive).
Deterministic: fixed seed, ``deterministic=True``, one thread. Saved as LightGBM's text
model plus the tail of the history it needs (Parquet) and JSON metadata; no pickle.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storecast.data.schema import HOLIDAY, WEEK
from storecast.features.pooling import low_rank
from storecast.models.base import Forecaster
from storecast.models.calendar_naive import day_shares
from storecast.models.statistical import SEASON, dense_panel

#: Weeks of history the model keeps to build features at the forecast origin.
TAIL_WEEKS = 2 * SEASON + 16
#: A row needs this many observed weeks before its origin to be a training example.
MIN_ORIGIN_WEEKS = 4
#: Store patterns kept per department when denoising across stores.
SVD_RANK = 10


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """NaN-aware mean of the last ``window`` columns up to and including each column."""
    filled = np.nan_to_num(values)
    seen = (~np.isnan(values)).astype("float64")
    pad = np.zeros((values.shape[0], 1))
    cs = np.concatenate([pad, np.cumsum(filled, axis=1)], axis=1)
    cc = np.concatenate([pad, np.cumsum(seen, axis=1)], axis=1)
    lo = np.maximum(np.arange(values.shape[1]) + 1 - window, 0)
    hi = np.arange(values.shape[1]) + 1
    total = cs[:, hi] - cs[:, lo]
    count = cc[:, hi] - cc[:, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _low_rank(scaled: np.ndarray, labels: np.ndarray, rank: int) -> np.ndarray:
    """Each group's stores x weeks matrix projected on its ``rank`` leading store patterns.

    Denoises a department's week by what the same department sold that week in the other
    stores (the winning idea of the Walmart competition); groups with few series keep
    their values.
    """
    out = scaled.copy()
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        out[idx] = low_rank(scaled[idx], rank, centre=False)
    return out


def _numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values))


def _take(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows, cols]`` with NaN where ``cols`` falls outside the matrix."""
    ok = (cols >= 0) & (cols < matrix.shape[1])
    out = np.full(len(rows), np.nan)
    out[ok] = matrix[rows[ok], cols[ok]]
    return out


class GBMModel(Forecaster):
    """Global LightGBM on calendar, holiday, lag and level features (see module docstring)."""

    name = "gbm"
    min_history_weeks = 2 * MIN_ORIGIN_WEEKS
    reads_known_future = True
    reads_past_only = True
    description = "Global LightGBM over all series: calendar, holidays, aligned last-year weeks, level."

    def __init__(
        self,
        *,
        seed: int = 0,
        max_train_step: int = 13,
        n_estimators: int = 300,
        learning_rate: float = 0.07,
        num_leaves: int = 31,
        min_data_in_leaf: int = 100,
        max_rows: int = 250_000,
        holiday_weight: float = 5.0,
        **params: Any,
    ) -> None:
        super().__init__(
            seed=seed, max_train_step=max_train_step, n_estimators=n_estimators,
            learning_rate=learning_rate, num_leaves=num_leaves, min_data_in_leaf=min_data_in_leaf,
            max_rows=max_rows, holiday_weight=holiday_weight, **params,
        )
        self.holiday_weight = holiday_weight
        self.max_train_step = max_train_step
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.max_rows = max_rows

    # ---- learning -----------------------------------------------------------------------
    def _fit(self, history: pd.DataFrame) -> None:
        import lightgbm as lgb

        index, weeks, values = dense_panel(history, self.keys_, self.last_week_, zero_fill=self.spec_.missing_weeks == "zero")
        self.series_ = index
        self.weeks_ = weeks
        self.values_ = values
        numeric = [c for c in (*self.spec_.known_future, *self.spec_.past_only)
                   if c in history.columns and c != HOLIDAY and _numeric(history[c])]
        self.covariates_ = numeric
        self.cov_ = {c: self._pivot(history, c, weeks) for c in self.covariates_}
        self.holiday_ = self._pivot(history, HOLIDAY, weeks) if HOLIDAY in history.columns else None
        self.static_ = self._static(history)

        rows, origins, steps = self._training_rows()
        cal, cmp_idx = self._calendar(len(weeks))
        known = {c: self.cov_[c] for c in self.covariates_ if c in self.spec_.known_future}
        holiday = self.holiday_ if self.holiday_ is not None else self._calendar_flags(cal, len(self.series_))
        X = self._features(rows, origins, steps, cal, cmp_idx, known, holiday)
        scale = self._scale()[rows, origins]
        y = values[rows, origins + steps] / scale
        weight = self._weights(scale, _take(holiday, rows, origins + steps))
        self.feature_names_ = list(X.columns)
        params = {
            "objective": "l1",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": 1,
            "verbose": -1,
        }
        data = lgb.Dataset(X, y, weight=weight, categorical_feature=self._categorical(), free_raw_data=True)
        self.booster_ = lgb.train(params, data, num_boost_round=self.n_estimators)
        self._keep_tail()

    def _weights(self, scale: np.ndarray, holiday: np.ndarray) -> np.ndarray:
        """Department level: dollars, holiday weeks ``holiday_weight`` x (the competition's
        WMAE); store level: every week's relative error alike (MAPE)."""
        if len(self.keys_) < 2:
            return np.ones_like(scale)
        # The competition's holiday weighting applies where the data flags holiday weeks.
        boost = self.holiday_weight if HOLIDAY in self.spec_.known_future else 1.0
        weight = scale * np.where(holiday > 0, boost, 1.0)
        return weight / weight.mean()

    def _training_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(series, origin, step) triples with a known target, sampled down to ``max_rows``."""
        values = self.values_
        n, t_len = values.shape
        seen = np.cumsum(~np.isnan(values), axis=1)
        scale = self._scale()
        rng = np.random.default_rng(self.seed)
        total = sum(n * max(t_len - s, 0) for s in range(1, self.max_train_step + 1))
        keep_p = min(1.0, self.max_rows / max(total, 1))
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for step in range(1, self.max_train_step + 1):
            origins = np.arange(0, t_len - step)
            if origins.size == 0:
                continue
            grid_r, grid_o = np.meshgrid(np.arange(n), origins, indexing="ij")
            r, o = grid_r.ravel(), grid_o.ravel()
            ok = (seen[r, o] >= MIN_ORIGIN_WEEKS) & ~np.isnan(values[r, o + step]) & (scale[r, o] > 0)
            r, o = r[ok], o[ok]
            if keep_p < 1.0:
                pick = rng.random(r.size) < keep_p
                r, o = r[pick], o[pick]
            parts.append((r, o, np.full(r.size, step)))
        if not parts:
            from storecast.errors import InsufficientHistoryError

            raise InsufficientHistoryError(f"{self.name}: no series has {MIN_ORIGIN_WEEKS + 1} weeks to learn from")
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]

    # ---- features ---------------------------------------------------------------------------
    def _scale(self) -> np.ndarray:
        return _rolling_mean(np.abs(self.values_), SEASON)

    def _calendar(self, horizon_end: int) -> tuple[pd.DataFrame, np.ndarray]:
        """Calendar features and comparable-week index for grid weeks 0..horizon_end-1."""
        weeks = pd.date_range(self.weeks_[0], periods=horizon_end, freq="7D")
        calendar = self.calendar
        cal = calendar.calendar_features(weeks).astype("float64")
        cmp = calendar.comparable_week(weeks)
        cmp_idx = ((cmp - weeks[0]) // pd.Timedelta(weeks=1)).to_numpy().astype(int)
        shares = day_shares(weeks, 1, calendar)
        # Offset (in weeks) of the neighbour holding the comparable span's missing days.
        cal["days_neighbour"] = ((shares["neighbour"] - shares["comp"]) // pd.Timedelta(weeks=1)).to_numpy(dtype="float64")
        cal["days_share"] = shares["share"].to_numpy(dtype="float64")
        return cal, cmp_idx

    def _calendar_flags(self, cal: pd.DataFrame, n: int) -> np.ndarray:
        """The holiday flag from the calendar (the Walmart files' four holidays in the US), for
        every series."""
        flag = np.zeros(len(cal), dtype=bool)
        for name in self.calendar.flagged:
            flag |= cal[f"is_{name}"].to_numpy() > 0
        return np.tile(flag.astype("float64"), (n, 1))

    def _features(
        self,
        rows: np.ndarray,
        origins: np.ndarray,
        steps: np.ndarray,
        cal: pd.DataFrame,
        cmp_idx: np.ndarray,
        known: dict[str, np.ndarray],
        holiday: np.ndarray,
    ) -> pd.DataFrame:
        values = self.values_
        target = origins + steps
        scale = self._scale()[rows, origins]
        level13 = _rolling_mean(values, 13)

        def past(cols: np.ndarray) -> np.ndarray:
            """Scaled sales at ``cols``, only where that week is known at the origin."""
            out = _take(values, rows, cols) / scale
            return np.where(cols <= origins, out, np.nan)

        cmp = cmp_idx[target]
        nb = cmp + cal["days_neighbour"].to_numpy().astype(int)[target]
        share = cal["days_share"].to_numpy()[target]

        def same_days(at_cmp: np.ndarray, at_nb: np.ndarray) -> np.ndarray:
            """Last year's same calendar days; the comparable week alone if the neighbour is unknown."""
            return np.where(np.isfinite(at_nb), (1.0 - share) * at_cmp + share * at_nb, at_cmp)

        feats: dict[str, np.ndarray] = {
            # known-future covariates first: on ties LightGBM prefers the earlier feature,
            # so a planned holiday flag is not shadowed by the calendar column it equals.
            HOLIDAY: _take(holiday, rows, target),
        }
        for c, matrix in known.items():
            feats[c] = _take(matrix, rows, target)
        feats["step"] = steps.astype("float64")
        feats["comparable_week"] = past(cmp)
        feats["comparable_week_prev"] = past(cmp - 1)
        feats["comparable_week_next"] = past(cmp + 1)
        feats["comparable_days"] = same_days(feats["comparable_week"], past(nb))
        feats["lag_52"] = past(target - SEASON)
        feats["lag_0"] = past(origins)
        feats["rolling_mean_4"] = _rolling_mean(values, 4)[rows, origins] / scale
        feats["rolling_mean_13"] = level13[rows, origins] / scale
        ly13 = _take(level13, rows, origins - SEASON)
        with np.errstate(invalid="ignore", divide="ignore"):
            growth = level13[rows, origins] / ly13
        feats["yoy_growth_13"] = np.where(np.isfinite(growth) & (ly13 > 0), growth, np.nan)
        feats["log_scale"] = np.log(scale)
        # Trees add, they do not multiply: hand them last year's week times this year's
        # growth (the year-over-year estimate) and a three-week smoothed comparable week.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
            around = np.nanmean(np.vstack([feats["comparable_week_prev"], feats["comparable_week"], feats["comparable_week_next"]]), axis=0)
        feats["comparable_week_mean_3"] = around
        feats["yoy_estimate"] = feats["comparable_week"] * np.clip(feats["yoy_growth_13"], 0.5, 2.0)
        # Pooled profiles: the mean scaled sales of the series' group (the whole chain, and
        # at department level its store and its department across stores) - last year's
        # comparable week without one series' noise, and the group's level at the origin.
        for group, pooled in self._pooled().items():
            at = _take(pooled, rows, cmp)
            feats[f"{group}_comparable_week"] = np.where(cmp <= origins, at, np.nan)
            at_nb = np.where(nb <= origins, _take(pooled, rows, nb), np.nan)
            feats[f"{group}_comparable_days"] = same_days(feats[f"{group}_comparable_week"], at_nb)
            feats[f"{group}_rolling_mean_4"] = _rolling_mean(pooled, 4)[rows, origins]
        for c in self.covariates_:
            if c not in self.spec_.known_future:
                feats[c] = self.cov_[c][rows, origins]
        for c, col in self.static_.items():
            feats[c] = col[rows]
        frame = pd.DataFrame(feats)
        cal_rows = cal.iloc[target].reset_index(drop=True)
        return pd.concat([frame, cal_rows], axis=1)

    def _pooled(self) -> dict[str, np.ndarray]:
        """Per series, the mean over its group of sales scaled by their own 52-week scale."""
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = self.values_ / self._scale()
        scaled[~np.isfinite(scaled)] = np.nan
        groups = {"chain": np.zeros(len(self.series_), dtype=int)}
        top, leaf = self.keys_[0], self.keys_[-1]
        if len(self.keys_) > 1:
            groups[top] = self.series_[top].to_numpy()
            groups[leaf] = pd.factorize(self.series_[leaf])[0]
        out = {}
        for name, labels in groups.items():
            frame = pd.DataFrame(scaled)
            means = frame.groupby(labels).transform("mean")
            out[name] = means.to_numpy(dtype="float64")
        if len(self.keys_) > 1:
            out[f"{leaf}_svd"] = _low_rank(scaled, groups[leaf], SVD_RANK)
        return out

    def _categorical(self) -> list[str]:
        return [c for c in self.static_ if c in self.categories_ or (len(self.keys_) > 1 and c == self.keys_[-1])]

    def _pivot(self, frame: pd.DataFrame, column: str, weeks: pd.DatetimeIndex) -> np.ndarray:
        wide = frame.pivot_table(index=self.keys_, columns=WEEK, values=column, aggfunc="first")
        wide = wide.reindex(index=pd.MultiIndex.from_frame(self.series_) if len(self.keys_) > 1 else self.series_[self.keys_[0]])
        return wide.reindex(columns=weeks).to_numpy(dtype="float64")

    def _static(self, history: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per-series features: the most detailed key as a category (multi-key data), numeric
        static attributes as they are, then text attributes as category codes."""
        out: dict[str, np.ndarray] = {}
        self.categories_: dict[str, list[str]] = {}
        statics = [c for c in self.spec_.static if c in history.columns]
        per = history.groupby(self.keys_, sort=True)[statics].first() if statics else pd.DataFrame()
        if statics:
            per = per.reindex(pd.MultiIndex.from_frame(self.series_) if len(self.keys_) > 1 else self.series_[self.keys_[0]])
        if len(self.keys_) > 1:
            out[self.keys_[-1]] = self._leaf_codes()
        for c in statics:
            if _numeric(per[c]):
                out[c] = per[c].to_numpy(dtype="float64")
        for c in statics:
            if not _numeric(per[c]):
                cats = sorted({str(v) for v in per[c].dropna()})
                self.categories_[c] = cats
                codes = {t: float(i) for i, t in enumerate(cats)}
                out[c] = np.array([codes.get(str(t), np.nan) if pd.notna(t) else np.nan for t in per[c]])
        return out

    def _leaf_codes(self) -> np.ndarray:
        """The most detailed key as a number: its value when it is an integer, else its
        position among the known values (saved with the model)."""
        leaf = self.series_[self.keys_[-1]]
        if pd.api.types.is_integer_dtype(leaf):
            return leaf.to_numpy(dtype="float64")
        if not getattr(self, "leaf_values_", None):
            self.leaf_values_ = sorted({str(v) for v in leaf})
        codes = {v: float(i) for i, v in enumerate(self.leaf_values_)}
        return np.array([codes.get(str(v), np.nan) for v in leaf])

    # ---- forecasting ----------------------------------------------------------------------------
    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        n, t_len = self.values_.shape
        origin = t_len - 1
        rows = np.repeat(np.arange(n), horizon)
        steps = np.tile(np.arange(1, horizon + 1), n)
        origins = np.full(rows.size, origin)
        cal, cmp_idx = self._calendar(t_len + horizon)
        fut_weeks = self.future_weeks(horizon)
        known = {c: self._future_matrix(future, c, fut_weeks, t_len) for c in self.covariates_ if c in self.spec_.known_future}
        holiday = self._calendar_flags(cal, n)
        given = self._future_matrix(future, HOLIDAY, fut_weeks, t_len)
        holiday = np.where(np.isnan(given), holiday, given)
        X = self._features(rows, origins, steps, cal, cmp_idx, known, holiday)[self.feature_names_]
        scale = self._scale()[rows, origins]
        pred = self.booster_.predict(X, num_threads=1) * scale
        frame = self.series_.iloc[rows].reset_index(drop=True)
        frame[WEEK] = np.tile(fut_weeks, n)
        frame["step"] = steps
        frame["yhat"] = np.where(np.isfinite(pred), pred, 0.0)
        return frame

    def _future_matrix(self, future: pd.DataFrame | None, column: str, weeks: pd.DatetimeIndex, t_len: int) -> np.ndarray:
        """A series x (history + horizon) matrix holding ``future[column]`` in the future part."""
        n = len(self.series_)
        out = np.full((n, t_len + len(weeks)), np.nan)
        if future is None or column not in future.columns or future.empty:
            return out
        keys = [k for k in self.keys_ if k in future.columns]
        if self.keys_[0] not in keys:
            return out
        part = future[[*keys, WEEK, column]].copy()
        part[column] = part[column].astype("float64")
        wide = part.pivot_table(index=keys, columns=WEEK, values=column, aggfunc="first").reindex(columns=weeks)
        idx = pd.MultiIndex.from_frame(self.series_[keys]) if len(keys) > 1 else self.series_[keys[0]]
        out[:, t_len:] = wide.reindex(idx).to_numpy(dtype="float64")
        return out

    # ---- persistence ----------------------------------------------------------------------------
    def _keep_tail(self) -> None:
        """Keep only the weeks a forecast needs (the training matrices can be large)."""
        keep = min(TAIL_WEEKS, len(self.weeks_))
        self.weeks_ = self.weeks_[-keep:]
        self.values_ = self.values_[:, -keep:]
        self.cov_ = {c: m[:, -keep:] for c, m in self.cov_.items()}
        self.holiday_ = None

    def _save_state(self, folder: Path) -> dict[str, Any]:
        self.booster_.save_model(str(folder / "lightgbm.txt"))
        cols = [w.date().isoformat() for w in self.weeks_]
        tables = {"sales": self.values_, **{f"cov_{c}": m for c, m in self.cov_.items()}}
        for label, matrix in tables.items():
            wide = pd.concat([self.series_, pd.DataFrame(matrix, columns=cols)], axis=1)
            wide.to_parquet(folder / f"{label}.parquet", index=False)
        pd.DataFrame({f"static_{c}": v for c, v in self.static_.items()}).to_parquet(folder / "static.parquet", index=False)
        return {
            "booster": "lightgbm.txt",
            "features": self.feature_names_,
            "covariates": self.covariates_,
            "static": list(self.static_),
            "categories": self.categories_,
            "leaf_values": getattr(self, "leaf_values_", None),
        }

    def _load_state(self, folder: Path, state: dict[str, Any]) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(folder / state["booster"]))
        self.feature_names_ = list(state["features"])
        self.covariates_ = list(state["covariates"])
        sales = pd.read_parquet(folder / "sales.parquet")
        self.series_ = sales[self.keys_].reset_index(drop=True)
        week_cols = [c for c in sales.columns if c not in self.keys_]
        self.weeks_ = pd.DatetimeIndex(pd.to_datetime(week_cols))
        self.values_ = sales[week_cols].to_numpy(dtype="float64")
        self.cov_ = {
            c: pd.read_parquet(folder / f"cov_{c}.parquet")[week_cols].to_numpy(dtype="float64")
            for c in self.covariates_
        }
        static = pd.read_parquet(folder / "static.parquet")
        self.static_ = {c: static[f"static_{c}"].to_numpy(dtype="float64") for c in state["static"]}
        self.categories_ = {k: list(v) for k, v in state.get("categories", {"store_type": ["A", "B", "C"]}).items()
                            if k in self.static_}
        self.leaf_values_ = state.get("leaf_values")
        self.holiday_ = None

