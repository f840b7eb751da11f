"""Calendar-aware year over year: last years' comparable weeks, corrected and re-levelled.

For a future week ``t`` of series ``s`` and each earlier year ``k`` whose comparable week
``c = comparable_week(t, k)`` (see ``features.calendar``) is in the history, the forecast
in log space is::

    log y[c] + (x(t) - x(c)) . beta_s + g_k[s]

where ``c`` stands for last year's same calendar days: the comparable week mixed with its
neighbour by the days each holds (``calendar_naive.day_shares``; moving-holiday weeks stay
on their holiday week, unmixed), and ``x(c)`` is the same mix of the two weeks' effects, so
a payday or pre-Christmas day the mix already moves is not corrected twice. The mix follows
the 1-2 day drift of the comparable week and averages two noisy observations.

- ``x`` are calendar effects that do not line up between the two weeks: how many of the
  month's first days the week holds (paydays, benefits), how many of the last pre-Christmas
  shopping days it holds, and holiday-event dummies (a week that was Easter's last year but
  is ordinary this year).
- ``beta`` is learned from the history's own year-over-year pairs, POOLED across series,
  and each series' deviation is shrunk toward the pooled effect by empirical Bayes: two
  years give only two examples of each holiday per store.
- ``g_k`` is the series' recent k-year growth: an exponentially weighted, outlier-clipped
  mean of its corrected k-year log differences over the last weeks.

- ``y[c]`` is shape-pooled first: a series' own seasonal deviation from the chain (its
  deviation from the chain mean log, minus the local mean of that deviation) is shrunk
  toward the chain's shape by ``1 - keep``. ``keep`` is empirical Bayes per week: the noise
  variance of the own shape is what does not persist from one year to the next in the
  training data, and ``keep = 1 - noise / spread``, where spread is the stores' dispersion
  of own shape that week (holiday weeks, where stores differ a lot, keep more).

- The slow part of ``y[c]``'s deviation from the chain (its 13-week local mean, where a
  summer store's season and a store's one-off level shifts both live) is kept only as far
  as it repeats: per series, this year's slow deviation is regressed on last year's over
  the weeks both are seen, and the slope (empirical Bayes, shrunk toward the pooled slope,
  clipped to 0..1) scales last year's slow path. A 2010 level shift that did not recur is
  then not carried into 2011's forecast at its anniversary; a season that recurs is kept.
  With too few year-over-year weeks to tell, or for department series, last year's path
  is kept whole.

The years are averaged with weights ``1/k``. ``chain_years``: an earlier year whose weeks
the history holds but whose k-year growth it cannot measure yet (fewer than
``min_growth_pairs`` k-year pairs, e.g. 2 years of history forecasting the third) gets its
growth chained, the 1-year growth plus the series' median change over its last 52 weeks
from the same weeks a year before; otherwise it would go unused. A series without a
comparable week (shorter than a year, or gappy) falls back to the mean of its last weeks.
Series with zero or negative sales (returns, at department level) are shifted before
taking logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK
from storecast.features.calendar import US_CALENDAR, RetailCalendar
from storecast.models.base import Forecaster
from storecast.models.calendar_naive import day_shares

#: Per-day share of the pre-Christmas peak used as the prior for a moved shopping day.
_SHOPPING_DAYS = 7
#: Weight (in year-over-year pairs) of the pooled noise variance in a series' own.
_NOISE_PRIOR_PAIRS = 13
#: Lags (weeks, one quarter) over which the growth deviations' variogram is fitted.
_VARIOGRAM_LAGS = 13
#: Fewest year-over-year weeks (away from the history's ends) to judge whether a series'
#: slow deviation from the chain repeats.
_MIN_REPEAT_WEEKS = 8
#: Weeks in a year, and the fewest year-over-year pairs to chain an older year's level.
_SEASON_WEEKS = 52
_MIN_CHAIN_PAIRS = 26


def effect_names(calendar: RetailCalendar = US_CALENDAR) -> tuple[str, ...]:
    """The calendar effects ``x`` of a calendar: month-start days, pre-Christmas shopping days
    (where the calendar has Christmas), and one dummy per holiday-event week."""
    shopping = ("christmas_shopping_days",) if calendar.christmas is not None else ()
    return ("month_start_days", *shopping, *(f"event_{e}" for e in calendar.event_names()))


#: The Walmart calendar's effects.
EFFECTS = effect_names(US_CALENDAR)


def effect_matrix(weeks: pd.DatetimeIndex, calendar: RetailCalendar = US_CALENDAR) -> np.ndarray:
    """Calendar effects ``x`` (rows = weeks, columns = ``effect_names(calendar)``)."""
    names = effect_names(calendar)
    if not len(weeks):
        return np.zeros((0, len(names)))
    feats = calendar.calendar_features(weeks)
    labels = calendar.event_labels(weeks)
    cols = [feats["month_start_days"].to_numpy(float)]
    if calendar.christmas is not None:
        cols.append(feats["christmas_shopping_days"].to_numpy(float))
    cols += [(labels == e).astype(float) for e in calendar.event_names()]
    return np.column_stack(cols)


class CalendarYoY(Forecaster):
    """Comparable weeks of earlier years, calendar-corrected, pooled effects, store growth."""

    name = "calendar_yoy"
    min_history_weeks = 8
    description = "Calendar-aligned comparable weeks of earlier years with pooled holiday/payday effects and store growth."

    def __init__(
        self,
        *,
        seed: int = 0,
        growth_weeks: int = 26,
        growth_halflife: float = 4.0,
        min_growth_pairs: int = 8,
        max_years: int = 5,
        fallback_weeks: int = 8,
        shape_pooling: float | str | None = "auto",
        shape_window: int = 6,
        own_halflife: float | str = "auto",
        slow_repeat: float | str | None = "auto",
        chain_years: bool = False,
        **params: Any,
    ) -> None:
        super().__init__(
            seed=seed, growth_weeks=growth_weeks, growth_halflife=growth_halflife,
            max_years=max_years, fallback_weeks=fallback_weeks, min_growth_pairs=min_growth_pairs,
            shape_pooling=shape_pooling, shape_window=shape_window, own_halflife=own_halflife, slow_repeat=slow_repeat,
            chain_years=chain_years, **params,
        )
        self.chain_years = chain_years
        self.slow_repeat = slow_repeat
        self.own_halflife = own_halflife
        self.shape_pooling = shape_pooling
        self.shape_window = shape_window
        self.min_growth_pairs = min_growth_pairs
        self.growth_weeks = growth_weeks
        self.growth_halflife = growth_halflife
        self.max_years = max_years
        self.fallback_weeks = fallback_weeks

    # ---- fitting -------------------------------------------------------------------------
    def _fit(self, history: pd.DataFrame) -> None:
        hist = history.dropna(subset=[TARGET])
        keep_from = self.last_week_ - pd.Timedelta(weeks=53 * self.max_years + self.growth_weeks)
        hist = hist[hist[WEEK] >= keep_from]
        wide = hist.pivot_table(index=WEEK, columns=self.keys_, values=TARGET, aggfunc="sum")
        grid = pd.date_range(wide.index.min(), self.last_week_, freq="7D")
        wide = wide.reindex(grid)
        self.series_ = wide.columns.to_frame(index=False)
        values = wide.to_numpy(float)
        low = np.nanmin(values, axis=0)
        scale = np.nanmean(np.abs(values), axis=0)
        self.shift_ = np.where(low > 0, 0.0, -low + 0.05 * scale + 1.0)
        logy = np.log(values + self.shift_)
        self.weeks_ = grid
        self.logy_ = logy
        cal = self.calendar
        self.effects_ = effect_names(cal)
        x = effect_matrix(grid, cal)
        pos = {w: i for i, w in enumerate(grid)}

        # Pool a series' shape with the same department's (leaf key's) in other stores, or
        # with the chain's when there is one key.
        leaf = self.keys_[-1] if len(self.keys_) > 1 else None
        groups = self.series_[leaf] if leaf is not None else pd.Series(0, index=self.series_.index)
        self.groups_ = pd.factorize(groups)[0]
        dev, slow = _chain_deviation(logy, self.shape_window, self.groups_)
        shape = dev - slow  # a series' own fast seasonal shape
        self.keep_ = self._shape_weights(shape, grid, pos)
        self.repeat_ = self._slow_repeat(slow, grid, pos)
        # Last year's weeks: own shape shrunk toward the chain's, own slow path as far as it repeats.
        self.ref_ = logy - (1 - self.keep_) * np.nan_to_num(shape) - (1 - self.repeat_)[None, :] * np.nan_to_num(slow)
        diffs, dxs, gdiffs = [], [], []
        for k in range(1, self.max_years + 1):
            idx, ok = _positions(grid, k, pos, cal)
            if not ok.any():
                break
            d = np.full_like(logy, np.nan)
            d[ok] = logy[ok] - logy[idx[ok]]
            gd = np.full_like(logy, np.nan)
            gd[ok] = logy[ok] - self.ref_[idx[ok]]
            gdiffs.append(gd)
            dx = np.zeros_like(x)
            dx[ok] = x[ok] - x[idx[ok]]
            diffs.append(d)
            dxs.append(dx)
        self.beta_pooled_, self.beta_ = self._effects(diffs, dxs, logy, x, grid)
        self.growth_ = self._growth(gdiffs, dxs)
        if self.chain_years:
            self.growth_ = _chained_growth(self.growth_, logy)

    def _shape_weights(self, shape: np.ndarray, grid: pd.DatetimeIndex, pos: dict[pd.Timestamp, int]) -> np.ndarray:
        """How much of each series' own seasonal deviation to keep (rows = weeks, columns = series).

        Empirical Bayes: a series' noise variance is half the mean squared change of its own
        shape from one year to the next (shrunk toward the pooled noise with the weight of
        ``_NOISE_PRIOR_PAIRS`` pairs); the signal variance of a week is the stores' spread of
        own shape that week minus the pooled noise; keep = signal / (signal + noise).
        """
        ones = np.ones_like(shape)
        if self.shape_pooling is None:
            return ones
        if self.shape_pooling != "auto":
            return ones * float(self.shape_pooling)
        # Only weeks whose local mean is centred (not at the history's ends) estimate noise.
        idx, ok = _centred_pairs(grid, pos, self.shape_window, self.calendar)
        change = (shape[ok] - shape[idx[ok]]) ** 2 / 2
        seen = np.isfinite(change)
        if seen.sum() < 30:
            return ones
        pooled = float(np.nanmean(change))
        n = seen.sum(axis=0)
        noise = (np.nansum(change, axis=0) + _NOISE_PRIOR_PAIRS * pooled) / (n + _NOISE_PRIOR_PAIRS)
        signal = np.zeros_like(shape)
        with np.errstate(all="ignore"):
            for g in np.unique(self.groups_):
                cols = self.groups_ == g
                spread = np.nanmean(shape[:, cols] ** 2, axis=1) - np.nanmean(noise[cols])
                signal[:, cols] = np.nan_to_num(np.maximum(spread, 0.0))[:, None]
        return np.where(signal > 0, signal / (signal + np.maximum(noise, 1e-12)[None, :]), 0.0)

    def _slow_repeat(self, slow: np.ndarray, grid: pd.DatetimeIndex, pos: dict[pd.Timestamp, int]) -> np.ndarray:
        """How much of each series' slow deviation from the chain repeats a year later (0..1).

        Per series, the slope of this year's slow deviation (centred) on last year's over the
        year-over-year weeks away from the history's ends; its sampling variance is the
        residual variance over the sum of squares, inflated by the local mean's width (its
        weeks are not independent). Each slope is shrunk toward the pooled slope by
        ``tau^2 / (tau^2 + var)``, ``tau^2`` the slopes' spread beyond their noise.
        ``slow_repeat`` may also fix the value; ``None`` keeps last year's path whole, and so
        does ``"auto"`` for department series (measured: their slow deviations are noisy and
        shrinking them cost 2% WMAE; docs/benchmarks.md).
        """
        n_series = slow.shape[1]
        if self.slow_repeat is None or (self.slow_repeat == "auto" and len(self.keys_) > 1):
            return np.ones(n_series)
        if self.slow_repeat != "auto":
            return np.full(n_series, float(self.slow_repeat))
        idx, ok = _centred_pairs(grid, pos, self.shape_window, self.calendar)
        weeks = int(ok.sum())
        if weeks < _MIN_REPEAT_WEEKS:
            return np.ones(n_series)
        now, then = slow[ok], slow[idx[ok]]
        both = np.isfinite(now) & np.isfinite(then)
        now = np.where(both, now - np.nanmean(np.where(both, now, np.nan), axis=0), 0.0)
        then = np.where(both, then - np.nanmean(np.where(both, then, np.nan), axis=0), 0.0)
        sxx = (then**2).sum(axis=0)
        sxy = (now * then).sum(axis=0)
        have = (sxx > 1e-12) & (both.sum(axis=0) >= _MIN_REPEAT_WEEKS)
        if have.sum() < 3:
            return np.ones(n_series)
        raw = np.where(have, sxy / np.where(have, sxx, 1.0), 0.0)
        pooled = float(sxy[have].sum() / sxx[have].sum())
        resid2 = ((now - raw[None, :] * then) ** 2).sum(axis=0)
        n = np.maximum(both.sum(axis=0), 2)
        width = 2 * self.shape_window + 1  # weeks each slow value averages
        var = np.where(have, resid2 / (n - 1) / np.where(have, sxx, 1.0) * width, np.inf)
        tau2 = max(float(np.var(raw[have]) - np.mean(var[have])), 1e-4)
        slope = np.where(have, pooled + (raw - pooled) * tau2 / (tau2 + var), pooled)
        return np.clip(slope, 0.0, 1.0)

    def _prior(self, logy: np.ndarray, x: np.ndarray, grid: pd.DatetimeIndex) -> np.ndarray:
        """Prior effects: zero, except a pre-Christmas shopping day, worth one seventh of the
        peak week's lift over the autumn weeks (spreading the peak evenly over its days)."""
        prior = np.zeros(len(self.effects_))
        cal = self.calendar
        if cal.christmas is None:
            return prior
        feats = cal.calendar_features(grid)
        peak = (feats["christmas_shopping_days"] == _SHOPPING_DAYS).to_numpy()
        if "thanksgiving" in cal.holidays:
            autumn = feats["weeks_to_thanksgiving"].between(2, 9).to_numpy() & (feats["month"] >= 9).to_numpy()
        else:  # the autumn weeks before the run-up to Christmas
            autumn = feats[f"weeks_to_{cal.christmas}"].between(6, 13).to_numpy() & (feats["month"] >= 9).to_numpy()
        lifts = []
        for i in np.flatnonzero(peak):
            base = autumn & (np.arange(len(grid)) < i) & (np.arange(len(grid)) > i - 20)
            if base.sum() >= 3:
                lifts.append(logy[i] - np.nanmedian(logy[base], axis=0))
        if lifts:
            lift = float(np.nanmedian(np.concatenate(lifts)))
            if np.isfinite(lift):
                prior[self.effects_.index("christmas_shopping_days")] = max(lift, 0.0) / _SHOPPING_DAYS
        return prior

    def _effects(
        self, diffs: list[np.ndarray], dxs: list[np.ndarray], logy: np.ndarray, x: np.ndarray, grid: pd.DatetimeIndex
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pooled effects and each series' effects shrunk toward them (empirical Bayes)."""
        n_series = logy.shape[1]
        prior = self._prior(logy, x, grid)
        if not diffs:
            return prior, np.tile(prior, (n_series, 1))
        d = np.concatenate(diffs)  # (pairs x series)
        dx = np.concatenate(dxs)  # (pairs x effects)
        beta = prior.copy()
        for _ in range(3):  # alternate: local growth trend <-> pooled effects
            resid = d - (dx @ beta)[:, None]
            trend = _rolling_median(resid, 9, len(diffs))
            y = d - trend
            mask = np.isfinite(y)
            n = mask.sum(axis=1).astype(float)  # series observed per pair-week
            yt = np.where(mask, y, 0.0).sum(axis=1)
            lam = float(n_series)  # the prior is worth one week of every series
            a = (dx * n[:, None]).T @ dx + lam * np.eye(dx.shape[1])
            b = dx.T @ yt + lam * prior
            beta = np.linalg.solve(a, b)
        resid = np.where(mask, y - (dx @ beta)[:, None], np.nan)
        # Per series and effect: deviation from the pooled effect, shrunk by sigma^2/tau^2.
        sigma2 = np.nanvar(resid, axis=0)
        sigma2 = np.where(np.isfinite(sigma2) & (sigma2 > 0), sigma2, np.nanmean(sigma2) if np.isfinite(np.nanmean(sigma2)) else 1.0)
        per = np.tile(beta, (n_series, 1))
        for j in range(dx.shape[1]):
            col = dx[:, j][:, None] * mask
            sxx = (col**2).sum(axis=0)
            if not (sxx > 0).any():
                continue
            sxe = np.nansum(col * np.where(mask, resid, 0.0), axis=0)
            have = sxx > 0
            raw = np.where(have, sxe / np.where(have, sxx, 1.0), 0.0)
            noise = np.where(have, sigma2 / np.where(have, sxx, 1.0), 0.0)
            tau2 = max(float(np.var(raw[have]) - np.mean(noise[have])), 1e-6) if have.sum() > 2 else 1e-6
            per[:, j] = beta[j] + sxe / (sxx + sigma2 / tau2)
        return beta, per

    def _growth(self, diffs: list[np.ndarray], dxs: list[np.ndarray]) -> np.ndarray:
        """Recent k-year growth per series (rows = k-1, columns = series); NaN if unknown.

        Growth is pooled: the chain-wide growth (median over series each week) is followed
        with ``growth_halflife``; a series' own deviation from it (outliers clipped) is a
        local level plus weekly noise, smoothed with the half-life of the steady-state
        Kalman gain whose signal/noise ratio is estimated from the deviations' variogram
        in the training data (``own_halflife="auto"``, see ``_local_level_halflife``).
        """
        out = np.full((self.max_years, self.logy_.shape[1]), np.nan)
        self.own_halflife_: list[float] = []
        for k, (d, dx) in enumerate(zip(diffs, dxs, strict=True)):
            recent = (d - dx @ self.beta_.T)[-self.growth_weeks :]
            seen = np.isfinite(recent)
            if seen.sum(axis=0).max() < self.min_growth_pairs:
                continue
            chain = np.array([np.median(row[np.isfinite(row)]) if np.isfinite(row).any() else np.nan for row in recent])
            chain_growth = _ew_mean(chain[:, None], self.growth_halflife)[0]
            own = recent - chain[:, None]
            med = np.nanmedian(np.where(seen, own, np.nan), axis=0)
            mad = 1.4826 * np.nanmedian(np.abs(own - med), axis=0)
            own = np.clip(own, med - 3 * mad - 1e-9, med + 3 * mad + 1e-9)
            halflife = self._own_halflife(own)
            self.own_halflife_.append(halflife)
            deviation = _ew_mean(own, halflife)
            enough = seen.sum(axis=0) >= self.min_growth_pairs
            out[k] = np.where(enough, chain_growth + np.nan_to_num(deviation), np.nan)
        return out

    def _own_halflife(self, own: np.ndarray) -> float:
        """Half-life for a series' own growth deviation: fixed, or learned (``"auto"``)."""
        longest = 3 * self.growth_halflife
        if self.own_halflife != "auto":
            return float(self.own_halflife)
        weeks = int(np.isfinite(own).any(axis=1).sum())
        if weeks < 2 * _VARIOGRAM_LAGS:  # too short to tell level moves from noise
            return longest
        learned = _local_level_halflife(own, max_lag=_VARIOGRAM_LAGS)
        return longest if learned is None else float(np.clip(learned, 1.0, longest))

    # ---- predicting -------------------------------------------------------------------------
    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        weeks = self.future_weeks(horizon)
        cal = self.calendar
        x_future = effect_matrix(weeks, cal)
        pos = {w: i for i, w in enumerate(self.weeks_)}
        x_hist = effect_matrix(self.weeks_, cal)
        n_series = self.logy_.shape[1]
        total = np.zeros((horizon, n_series))
        weight = np.zeros((horizon, n_series))
        for k in range(1, self.max_years + 1):
            idx, ok = _positions(weeks, k, pos, cal)
            if not ok.any():
                continue
            growth = self.growth_[k - 1]
            src, x_src, ok = _mixed(weeks, k, pos, self.ref_, x_hist, cal)
            dx = np.zeros_like(x_future)
            dx[ok] = x_future[ok] - x_src[ok]
            value = src + dx @ self.beta_.T + growth[None, :]
            good = np.isfinite(value)
            w = 1.0 / k
            total += np.where(good, value, 0.0) * w
            weight += good * w
        tail = self.logy_[-self.fallback_weeks :]
        # Fallback: the plain mean of the last weeks' sales (not of their logs).
        raw = np.exp(tail) - self.shift_[None, :]
        seen = np.isfinite(raw).any(axis=0)
        level = np.where(seen, np.nanmean(np.where(seen[None, :], raw, 0.0), axis=0), 0.0)
        fallback = np.log(level + self.shift_)
        logyhat = np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), fallback[None, :])
        yhat = np.exp(logyhat) - self.shift_[None, :]
        out = self.series_.loc[self.series_.index.repeat(horizon)].reset_index(drop=True)
        out[WEEK] = np.tile(weeks, n_series)
        out["step"] = np.tile(np.arange(1, horizon + 1), n_series)
        out["yhat"] = yhat.T.reshape(-1)
        return out

    # ---- persistence --------------------------------------------------------------------------
    def _save_state(self, folder: Path) -> dict[str, Any]:
        cols = [f"s{i}" for i in range(self.logy_.shape[1])]
        pd.DataFrame(self.logy_, columns=cols).assign(week=self.weeks_).to_parquet(folder / "log_sales.parquet", index=False)
        pd.DataFrame(self.ref_, columns=cols).assign(week=self.weeks_, keep=self.keep_.mean(axis=1)).to_parquet(
            folder / "reference.parquet", index=False
        )
        series = self.series_.copy()
        series["shift"] = self.shift_
        series["slow_repeat"] = self.repeat_
        for j, name in enumerate(self.effects_):
            series[f"beta_{name}"] = self.beta_[:, j]
        for k in range(self.max_years):
            series[f"growth_{k + 1}"] = self.growth_[k]
        series.to_parquet(folder / "series.parquet", index=False)
        return {"pooled_effects": dict(zip(self.effects_, map(float, self.beta_pooled_), strict=True))}

    def _load_state(self, folder: Path, state: dict[str, Any]) -> None:
        table = pd.read_parquet(folder / "log_sales.parquet")
        self.weeks_ = pd.DatetimeIndex(table.pop("week"))
        self.logy_ = table.to_numpy(float)
        ref = pd.read_parquet(folder / "reference.parquet")
        self.keep_ = ref.pop("keep").to_numpy(float)[:, None]  # week means only
        self.ref_ = ref.drop(columns="week").to_numpy(float)
        series = pd.read_parquet(folder / "series.parquet")
        self.series_ = series[self.keys_].copy()
        self.shift_ = series["shift"].to_numpy(float)
        self.repeat_ = series["slow_repeat"].to_numpy(float)
        self.effects_ = effect_names(self.calendar)
        self.beta_ = series[[f"beta_{n}" for n in self.effects_]].to_numpy(float)
        self.growth_ = series[[f"growth_{k + 1}" for k in range(self.max_years)]].to_numpy(float).T
        self.beta_pooled_ = np.array([state["pooled_effects"][n] for n in self.effects_])

    def effects(self) -> pd.Series:
        """The pooled calendar effects in log points, named (for reports and tests)."""
        return pd.Series(self.beta_pooled_, index=list(self.effects_))


def _chain_deviation(logy: np.ndarray, window: int, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each series' deviation from its group's mean log, and its centred rolling mean."""
    dev = logy.copy()
    for g in np.unique(groups):
        cols = groups == g
        seen = np.isfinite(logy[:, cols]).any(axis=1)
        mean = np.full(len(logy), np.nan)
        mean[seen] = np.nanmean(logy[seen][:, cols], axis=1)
        dev[:, cols] = logy[:, cols] - mean[:, None]
    local = pd.DataFrame(dev).rolling(2 * window + 1, center=True, min_periods=1).mean().to_numpy()
    return dev, local


def _chained_growth(growth: np.ndarray, logy: np.ndarray) -> np.ndarray:
    """``growth`` (rows = k-1) with k-year growth that the history cannot measure directly
    (no k-year pairs yet) chained from the 1-year growth: ``g_k = g_1 + m_k``, ``m_k`` the
    series' median log change over its last 52 weeks from the same weeks ``k - 1`` years
    before (at least ``_MIN_CHAIN_PAIRS`` pairs). Two years of history then give two views
    of the season, as ``calendar_naive(years=2)`` averages them."""
    out = growth.copy()
    n_weeks = len(logy)
    for k in range(2, len(growth) + 1):
        lag = _SEASON_WEEKS * (k - 1)
        start = max(lag, n_weeks - _SEASON_WEEKS)
        if n_weeks - start < _MIN_CHAIN_PAIRS:
            break
        change = logy[start:] - logy[start - lag : n_weeks - lag]
        enough = np.isfinite(change).sum(axis=0) >= _MIN_CHAIN_PAIRS
        with np.errstate(all="ignore"):
            past = np.nanmedian(np.where(enough[None, :], change, 0.0), axis=0)
        chained = np.where(enough, growth[0] + past, np.nan)
        out[k - 1] = np.where(np.isfinite(growth[k - 1]), growth[k - 1], chained)
    return out


def _positions(
    weeks: pd.DatetimeIndex, years_back: int, pos: dict[pd.Timestamp, int], calendar: RetailCalendar
) -> tuple[np.ndarray, np.ndarray]:
    """Row of each week's comparable week ``years_back`` years earlier (-1 if not held)."""
    idx = np.array([pos.get(c, -1) for c in calendar.comparable_week(weeks, years_back)], dtype=int)
    return idx, idx >= 0


def _centred_pairs(
    grid: pd.DatetimeIndex, pos: dict[pd.Timestamp, int], window: int, calendar: RetailCalendar
) -> tuple[np.ndarray, np.ndarray]:
    """Year-over-year pairs (row of last year's week, held) whose two weeks both lie
    ``window`` weeks or more from the history's ends, where a centred local mean is whole."""
    idx, ok = _positions(grid, 1, pos, calendar)
    inner = np.zeros(len(grid), dtype=bool)
    inner[window : len(grid) - window] = True
    return idx, ok & inner & inner[np.maximum(idx, 0)]


def _mixed(
    weeks: pd.DatetimeIndex, years_back: int, pos: dict[pd.Timestamp, int], ref: np.ndarray, x: np.ndarray,
    calendar: RetailCalendar,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Last year's same calendar days: the comparable week's reference mixed with its
    neighbour's by the days each holds (``calendar_naive.day_shares``; moving holidays
    unmixed), with the matching mix of their calendar effects. Rows = ``weeks``."""
    shares = day_shares(weeks, years_back, calendar)
    ci = np.array([pos.get(c, -1) for c in shares["comp"]], dtype=int)
    ni = np.array([pos.get(c, -1) for c in shares["neighbour"]], dtype=int)
    ok = ci >= 0
    share = np.where(ni >= 0, shares["share"].to_numpy(float), 0.0)
    src = np.full((len(weeks), ref.shape[1]), np.nan)
    x_src = np.zeros((len(weeks), x.shape[1]))
    comp = ref[ci[ok]]
    neigh = ref[np.maximum(ni[ok], 0)]
    s = np.where(np.isfinite(neigh), share[ok][:, None], 0.0)
    src[ok] = (1 - s) * comp + s * np.nan_to_num(neigh)
    sx = share[ok][:, None]
    x_src[ok] = (1 - sx) * x[ci[ok]] + sx * x[np.maximum(ni[ok], 0)]
    return src, x_src, ok


def _ew_mean(values: np.ndarray, halflife: float) -> np.ndarray:
    """Exponentially weighted mean down each column, newest row weighted most; NaN-aware."""
    age = np.arange(len(values))[::-1].astype(float)
    w = np.exp(-np.log(2) / halflife * age)[:, None] * np.isfinite(values)
    total = w.sum(axis=0)
    num = (np.where(w > 0, values, 0.0) * w).sum(axis=0)
    return np.where(total > 0, num / np.where(total > 0, total, 1.0), np.nan)


def _local_level_halflife(values: np.ndarray, max_lag: int, min_pairs: int = 30) -> float | None:
    """Half-life of the optimal exponential smoother for a local level plus noise.

    Model per column: ``v[t] = mu[t] + e[t]``, ``mu[t] = mu[t-1] + eta[t]``. Its variogram
    ``var(v[t+h] - v[t]) / 2 = s_e^2 + h s_eta^2 / 2`` is measured pooled over columns (a
    robust MAD scale per lag) and fitted by least squares over lags ``1..max_lag``; the
    steady-state Kalman gain for ``q = s_eta^2 / s_e^2`` is ``K = (sqrt(q^2 + 4q) - q) / 2``
    and the exponential smoother with that gain halves its weights every
    ``log(1/2) / log(1 - K)`` weeks. ``None`` when too few pairs to say.
    """
    lags, gamma = [], []
    for h in range(1, max_lag + 1):
        diff = (values[h:] - values[:-h]).ravel()
        diff = diff[np.isfinite(diff)]
        if len(diff) < min_pairs:
            continue
        scale = 1.4826 * np.median(np.abs(diff - np.median(diff)))
        lags.append(h)
        gamma.append(scale**2 / 2)
    if len(lags) < 2:
        return None
    lag_arr = np.asarray(lags, float)
    (noise, drift), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(lag_arr), lag_arr / 2]), np.asarray(gamma), rcond=None)
    if drift <= 0:
        return None  # no level movement visible: the longest smoothing
    if noise <= 0:
        return 0.0  # no noise: follow the last week
    q = drift / noise
    gain = (np.sqrt(q * q + 4 * q) - q) / 2
    return float(np.log(0.5) / np.log(1 - gain)) if gain < 1 else 0.0


def _rolling_median(values: np.ndarray, window: int, blocks: int) -> np.ndarray:
    """Centered rolling median down each column, separately within each of ``blocks``."""
    parts = np.array_split(values, blocks)
    out = [pd.DataFrame(p).rolling(window, center=True, min_periods=1).median().to_numpy() for p in parts]
    return np.concatenate(out)
