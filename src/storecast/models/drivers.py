"""Planned drivers, pooled: a log-linear lift model and a global LightGBM on top of it.

For retailers whose weeks move with price, deals and feature ads far more than with the
season (Dominick's orange juice), a week's sales are the series' *regular* level times
the lift of what is planned for that week. Both are learned from every series at once, in
``log1p(sales)``:

1. **Lift, linear and pooled per item.** For each item (brand) one least-squares fit over
   all its stores, within series (each series' mean removed, so store size drops out):
   the price cut against the series' regular price, each promotion column, their
   products, the week before's cut and promotions (post-promotion dips), and the other
   items of the same group (store) that week - their volume-weighted price cuts and
   promotions. The lift of a week is that item's coefficients times the week's drivers.
2. **Regular level.** The series' sales with the lift taken out, exponentially weighted
   up to the origin (half-lives 4/13/52 weeks): every week informs the level, promoted
   ones too, instead of the few weeks without a promotion.
3. **LightGBM on top.** Each training row is (series, origin, step); the target is the
   target week's log sales minus the 13-week regular level at the origin, and the lift is
   one of its features, so the trees take the linear lift as a strong hint and correct
   it: depth and interaction effects, the own promotion state's past level, the
   competition item by item (for groups of at most ``MAX_ITEM_COLUMNS`` items), static
   store attributes, last year's move of the chain and the store over the same stretch
   (seasonality from the history, no calendar module), and the step. The trees are kept
   small and strongly regularised (7 leaves, 1,000 rows per leaf, 30% of the features per
   tree): a few chain-wide promotion weeks sell many times what similar ones did, and
   bigger trees chase them.

The regular price is a high rolling quantile of the last ``REGULAR_WEEKS`` weeks' prices,
planned prices included (they are known when the forecast is made). One direct model
serves every step (no recursion).

Quantiles (``predict_quantiles``): conformal per step in log space. The model is refitted
on the history less its last ``max_train_step`` weeks; its errors on those weeks give,
for each step, empirical quantiles that are added to the log forecast - multiplicative
bands that serve big and small series alike, monotone in the level by construction.
``decompose`` splits a forecast exactly into a regular baseline (every item at regular
price, no promotion), the competition's effect and the series' own planned drivers.

Saved as LightGBM's text model, Parquet tables and JSON; no pickle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK
from storecast.errors import DataError, InsufficientHistoryError, NotTrainedError
from storecast.features.promotions import (
    ewm,
    group_log_total,
    group_others_mean,
    promotion_state,
    regular_log_price,
    rolling,
    shift,
    take,
    weeks_since,
)
from storecast.models.base import Forecaster

#: Levels ``predict_quantiles`` returns when none are asked for.
DEFAULT_LEVELS = tuple(round(0.1 * i, 1) for i in range(1, 10))
#: A training row needs this many observed weeks up to its origin.
MIN_ORIGIN_WEEKS = 8
#: Weeks whose prices define the regular price.
REGULAR_WEEKS = 13
#: A price this far (log) below regular counts as a price cut in the promotion state.
CUT = 0.05
#: Per-item competitor columns are built only for groups of at most this many items.
MAX_ITEM_COLUMNS = 20
#: Half-lives (weeks) of the regular level; the middle one is the base of the target.
HALF_LIVES = (4, 13, 52)
BASE_HALF_LIFE = 13
#: Ridge penalty of the per-item lift regressions (per row, on within-series data).
RIDGE = 1e-3
SEASON = 52
#: Conformal offsets are kept on this grid of levels and interpolated for any level.
OFFSET_GRID = tuple(round(0.01 * i, 2) for i in range(1, 100))


def _slug(text: object) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", str(text)).strip("_").lower()


class DriversModel(Forecaster):
    """Pooled lift on planned price and promotions + global LightGBM (module docstring)."""

    name = "drivers"
    min_history_weeks = MIN_ORIGIN_WEEKS + 1
    reads_known_future = True
    description = "Planned price, deals and features: pooled log-linear lift, competition, LightGBM on the rest."

    def __init__(
        self,
        *,
        seed: int = 0,
        drivers: Sequence[str] | None = None,
        price: str | None = "auto",
        static: Sequence[str] | None = None,
        group_key: str | None = None,
        max_train_step: int = 13,
        n_estimators: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_data_in_leaf: int = 1000,
        feature_fraction: float = 0.3,
        max_rows: int = 120_000,
        objective: str = "l1",
        calibrate: bool = True,
        num_threads: int = 1,
        **params: Any,
    ) -> None:
        super().__init__(
            seed=seed, drivers=None if drivers is None else list(drivers), price=price, static=None if static is None else list(static),
            group_key=group_key, max_train_step=max_train_step, n_estimators=n_estimators,
            learning_rate=learning_rate, num_leaves=num_leaves, min_data_in_leaf=min_data_in_leaf,
            feature_fraction=feature_fraction, max_rows=max_rows, objective=objective, calibrate=calibrate, num_threads=num_threads, **params,
        )
        self.declared_ = None if drivers is None else list(drivers)
        self.price_name = price
        self._set_drivers(self.declared_ or [])
        self.static = None if static is None else list(static)
        self.group_key = group_key
        self.max_train_step = max_train_step
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.feature_fraction = feature_fraction
        self.max_rows = max_rows
        self.objective = objective
        self.calibrate = calibrate
        self.num_threads = num_threads
        self.extra_ = params

    def _set_drivers(self, drivers: list[str]) -> None:
        self.drivers = list(drivers)
        if self.price_name == "auto":  # the first driver named like a price
            self.price = next((c for c in self.drivers if "price" in c.lower()), None)
        else:
            self.price = self.price_name if self.price_name in self.drivers else None
        self.promos = [c for c in self.drivers if c != self.price]

    # ---- learning -------------------------------------------------------------------------------
    def _fit(self, history: pd.DataFrame) -> None:
        if self.declared_ is None:
            # The data's known-future columns that are numbers (prices, promotions, flags).
            found = [c for c in self.spec_.known_future if c in history.columns
                     and (pd.api.types.is_numeric_dtype(history[c]) or pd.api.types.is_bool_dtype(history[c]))]
            if not found:
                raise InsufficientHistoryError(
                    f"{self.name} needs planned drivers (--known-future: prices, promotions, ...); this data declares none")
            self._set_drivers(found)
        if self.static is None:
            self.static = [c for c in self.spec_.static if c in history.columns]
        missing = [c for c in self.drivers if c not in history.columns]
        if missing:
            raise DataError(f"{self.name}: declared drivers {missing} are not in the history; it has {list(history.columns)}")
        self._setup(history)
        self.booster_, self.beta_ = self._train(self.values_.shape[1])
        self.offsets_ = self._calibration() if self.calibrate else None
        self._keep_tail()

    def _setup(self, history: pd.DataFrame) -> None:
        """Series index, week grid, sales and driver matrices, groups, items, static columns."""
        keys = self.keys_
        self.weeks_ = pd.date_range(history[WEEK].min(), self.last_week_, freq="7D")
        self.group_ = self.group_key or (keys[0] if len(keys) > 1 else None)
        wide = history.pivot_table(index=keys, columns=WEEK, values=TARGET, aggfunc="sum")
        self.series_ = wide.index.to_frame(index=False)
        self.values_ = wide.reindex(columns=self.weeks_).to_numpy(dtype="float64")
        self.cov_ = {c: self._pivot(history, c) for c in self.drivers}
        self.static_ = self._static(history)
        item_keys = [k for k in keys if k != self.group_]
        labels = self.series_[item_keys].astype(str).agg("|".join, axis=1) if item_keys else pd.Series("all", index=self.series_.index)
        self.items_ = sorted(labels.unique())
        self._index_series()

    def _index_series(self) -> None:
        """Item and group codes per series (from ``series_``, ``items_`` and ``group_``)."""
        item_keys = [k for k in self.keys_ if k != self.group_]
        labels = self.series_[item_keys].astype(str).agg("|".join, axis=1) if item_keys else pd.Series("all", index=self.series_.index)
        codes = {v: i for i, v in enumerate(self.items_)}
        self.item_code_ = labels.map(codes).fillna(-1).to_numpy(dtype="int64")
        self.group_code_ = (pd.factorize(self.series_[self.group_])[0] if self.group_ is not None
                            else np.zeros(len(self.series_), dtype="int64"))
        self.item_columns_ = self.group_ is not None and 1 < len(self.items_) <= MAX_ITEM_COLUMNS

    def _series_index(self) -> pd.Index:
        return pd.MultiIndex.from_frame(self.series_) if len(self.keys_) > 1 else pd.Index(self.series_[self.keys_[0]])

    def _pivot(self, frame: pd.DataFrame, column: str) -> np.ndarray:
        wide = frame.pivot_table(index=self.keys_, columns=WEEK, values=column, aggfunc="first")
        return wide.reindex(index=self._series_index(), columns=self.weeks_).to_numpy(dtype="float64")

    def _static(self, history: pd.DataFrame) -> dict[str, np.ndarray]:
        """Numeric columns constant within every series (declared, or found when not declared)."""
        skip = {*self.keys_, WEEK, TARGET, *self.drivers}
        candidates = self.static if self.static is not None else [c for c in history.columns if c not in skip]
        per = history.groupby(self.keys_, sort=True)
        out: dict[str, np.ndarray] = {}
        for c in candidates:
            if c not in history.columns or not pd.api.types.is_numeric_dtype(history[c]):
                continue
            if self.static is None and int(per[c].nunique().max()) > 1:
                continue  # varies within a series: not static
            out[c] = per[c].first().reindex(self._series_index()).to_numpy(dtype="float64")
        return out

    def _lgb_params(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "max_bin": 63,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": self.num_threads,
            "verbose": -1,
            **self.extra_,
        }

    def _train(self, t_len: int) -> tuple[Any, np.ndarray]:
        """Lift coefficients and a booster from the first ``t_len`` weeks (the inner fit uses fewer)."""
        import lightgbm as lgb

        rows, origins, steps = self._training_rows(t_len)
        m = self._matrices(self.values_[:, :t_len], {c: v[:, :t_len] for c, v in self.cov_.items()}, beta=None)
        X, offset = self._features(m, m, rows, origins, steps)
        y = m["z"][rows, origins + steps] - offset
        self.feature_names_ = list(X.columns)
        data = lgb.Dataset(X, y, categorical_feature=["item"], free_raw_data=True)
        return lgb.train(self._lgb_params(), data, num_boost_round=self.n_estimators), m["beta"]

    def _training_rows(self, t_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(series, origin, step) triples with an observed target, sampled to ``max_rows``."""
        values = self.values_[:, :t_len]
        n = values.shape[0]
        seen = np.cumsum(~np.isnan(values), axis=1)
        rng = np.random.default_rng(self.seed)
        total = sum(n * max(t_len - s, 0) for s in range(1, self.max_train_step + 1))
        keep_p = min(1.0, self.max_rows / max(total, 1))
        parts = []
        for step in range(1, self.max_train_step + 1):
            grid_r, grid_o = np.meshgrid(np.arange(n), np.arange(0, max(t_len - step, 0)), indexing="ij")
            r, o = grid_r.ravel(), grid_o.ravel()
            ok = (seen[r, o] >= MIN_ORIGIN_WEEKS) & ~np.isnan(values[r, o + step])
            r, o = r[ok], o[ok]
            if keep_p < 1.0:
                pick = rng.random(r.size) < keep_p
                r, o = r[pick], o[pick]
            parts.append((r, o, np.full(r.size, step)))
        rows, origins, steps = (np.concatenate(p) for p in zip(*parts, strict=True))
        if rows.size == 0:
            raise InsufficientHistoryError(f"{self.name}: no series has {MIN_ORIGIN_WEEKS + 1} weeks to learn from")
        return rows, origins, steps

    # ---- the panel: every matrix the features read ------------------------------------------------
    def _matrices(self, values: np.ndarray, cov: dict[str, np.ndarray], beta: np.ndarray | None) -> dict[str, Any]:
        """Matrices from sales up to the origin (``values``) and drivers through the target
        weeks (``cov`` may run past ``values`` by the horizon). ``beta=None`` fits the lift."""
        t_len = values.shape[1]
        z = np.log1p(np.maximum(values, 0.0))
        m: dict[str, Any] = {"z": z, "t_len": t_len}
        m["promo"] = {c: np.nan_to_num(cov[c]) for c in self.promos}
        if self.price is not None:
            lp = np.log(np.where(cov[self.price] > 0, cov[self.price], np.nan))
            m["lp"] = lp
            m["log_regular"] = regular_log_price(lp, REGULAR_WEEKS)
            m["cut"] = np.minimum(lp - m["log_regular"], 0.0)
        cut = m.get("cut")
        m["state"] = promotion_state(list(m["promo"].values()), cut, CUT)
        # Competition: the other items of the group, weighted by their share of its sales.
        if self.group_ is not None:
            recent = np.nan_to_num(np.nanmean(values[:, -SEASON:], axis=1))
            signals = dict(m["promo"])
            if cut is not None:
                signals["cut"] = cut
                signals["log_price"] = m["lp"]
            m["others"] = {k: group_others_mean(v, recent, self.group_code_) for k, v in signals.items()}
        terms = self._terms(m, m)
        m["beta"] = self._fit_lift(z, terms) if beta is None else beta
        m["lift"] = self._lift(m["beta"], terms, np.arange(len(z)))
        # Regular level: sales with the lift taken out, decaying means up to each week.
        regular = z - m["lift"][:, :t_len]
        m["level"] = {h: ewm(regular, h) for h in HALF_LIVES}
        m["plain"] = {k: rolling(z, k) for k in (4, 13)}
        states = 2 ** (len(self.promos) + (cut is not None))
        observed = np.where(np.isnan(z), np.nan, 1.0)
        m["state_level"] = {s: rolling(np.where(m["state"][:, :t_len] == s, regular, np.nan), SEASON) for s in range(states)}
        m["state_weeks"] = {s: rolling(observed * (m["state"][:, :t_len] == s), SEASON, "sum") for s in range(states)}
        m["weeks_since_promo"] = weeks_since(m["state"] > 0)
        m["group_total"] = group_log_total(values, self.group_code_)
        m["chain_total"] = group_log_total(values, np.zeros(len(values), dtype="int64"))
        return m

    def _terms(self, own: dict[str, Any], comp: dict[str, Any]) -> dict[str, np.ndarray]:
        """The lift regressors per cell: own drivers from ``own``, competitors' from ``comp``."""
        t: dict[str, np.ndarray] = {}
        cut = own.get("cut")
        if cut is not None:
            t["cut"] = cut
        for c, v in own["promo"].items():
            t[c] = v
            if cut is not None:
                t[f"cut_x_{c}"] = cut * v
        for a, b in combinations(self.promos, 2):
            t[f"{a}_x_{b}"] = own["promo"][a] * own["promo"][b]
        if cut is not None:
            t["cut_prev"] = shift(cut, 1)
        for c, v in own["promo"].items():
            t[f"{c}_prev"] = shift(v, 1)
        for k, v in comp.get("others", {}).items():
            if k != "log_price":
                t[f"others_{k}"] = v
        return {k: np.nan_to_num(v) for k, v in t.items()}

    def _fit_lift(self, z: np.ndarray, terms: dict[str, np.ndarray]) -> np.ndarray:
        """Per item, ridge least squares of log sales on the terms within series."""
        t_len = z.shape[1]
        X = np.stack([v[:, :t_len] for v in terms.values()], axis=-1)  # series x weeks x terms
        beta = np.zeros((len(self.items_), X.shape[-1]))
        ok = np.isfinite(z)
        for item in range(len(self.items_)):
            sel = self.item_code_ == item
            zi, Xi, oki = z[sel], X[sel], ok[sel]
            count = oki.sum(axis=1, keepdims=True)
            if oki.sum() < 4 * X.shape[-1]:
                continue
            zc = np.where(oki, zi - np.nansum(np.where(oki, zi, 0), axis=1, keepdims=True) / np.maximum(count, 1), 0.0)
            xm = (Xi * oki[..., None]).sum(axis=1, keepdims=True) / np.maximum(count, 1)[..., None]
            Xc = np.where(oki[..., None], Xi - xm, 0.0).reshape(-1, X.shape[-1])
            gram = Xc.T @ Xc
            beta[item] = np.linalg.solve(gram + RIDGE * oki.sum() * np.eye(len(gram)), Xc.T @ zc.ravel())
        return beta

    def _lift(self, beta: np.ndarray, terms: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
        """Each cell's lift: its item's coefficients times its terms (``rows`` picks series)."""
        coef = beta[self.item_code_[rows]]  # rows x terms
        out = np.zeros(next(iter(terms.values())).shape)
        for k, v in enumerate(terms.values()):
            out += (coef[:, k : k + 1] if v.ndim == 2 else coef[:, k]) * v
        return out

    # ---- features ------------------------------------------------------------------------------------
    def _features(self, m: dict[str, Any], comp: dict[str, Any], rows: np.ndarray, origins: np.ndarray,
                  steps: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        """Feature frame and log offset (level + lift) for rows (series, origin, step).

        Own drivers come from ``m``, the other items' from ``comp`` (the same, except for a
        counterfactual that puts only the series' own plan at regular).
        """
        target = origins + steps
        lift = self._lift(m["beta"], {k: take(v, rows, target) for k, v in self._terms(m, comp).items()}, rows)
        base = m["level"][BASE_HALF_LIFE][rows, origins]
        f: dict[str, np.ndarray] = {"lift": lift}
        if self.price is not None:
            f["cut"] = take(m["cut"], rows, target)
            f["cut_vs_origin_regular"] = take(m["lp"], rows, target) - m["log_regular"][rows, origins]
            f["log_price"] = take(m["lp"], rows, target)
            f["cut_prev"] = take(m["cut"], rows, target - 1)
        for c, v in m["promo"].items():
            f[c] = take(v, rows, target)
            f[f"{c}_prev"] = take(v, rows, target - 1)
        f["weeks_since_promo"] = take(m["weeks_since_promo"], rows, target)
        state = take(m["state"].astype("float64"), rows, target)
        f["state"] = state
        same = np.full(len(rows), np.nan)
        weeks = np.zeros(len(rows))
        for s, level in m["state_level"].items():
            sel = state == s
            same[sel] = level[rows[sel], origins[sel]]
            weeks[sel] = m["state_weeks"][s][rows[sel], origins[sel]]
        f["state_level_52"] = same - base
        f["state_weeks_52"] = weeks
        f.update(self._competition(m, comp, rows, target))
        f["step"] = steps.astype("float64")
        f["level"] = base
        for h in HALF_LIVES:
            if h != BASE_HALF_LIFE:
                f[f"level_hl{h}"] = m["level"][h][rows, origins] - base
        for k, v in m["plain"].items():
            f[f"rolling_mean_{k}"] = v[rows, origins] - base
        f["last_week"] = m["z"][rows, origins] - base
        f["last_week_regular"] = m["z"][rows, origins] - m["lift"][rows, origins] - base
        for name in ("chain", "group"):
            total = m[f"{name}_total"]
            then = take(total, rows, target - SEASON)
            ref = np.nanmean(np.vstack([take(total, rows, origins - SEASON - k) for k in range(4)]), axis=0)
            f[f"{name}_last_year_change"] = then - ref
        for c, col in self.static_.items():
            f[f"static_{_slug(c)}"] = col[rows]
        f["item"] = self.item_code_[rows].astype("float64")
        return pd.DataFrame(f), base

    def _competition(self, m: dict[str, Any], comp: dict[str, Any], rows: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
        """The other items of the group in the target week (weighted means and item by item)."""
        if "others" not in comp:
            return {}
        out = {f"others_{k}": take(v, rows, target) for k, v in comp["others"].items() if k != "log_price"}
        if self.price is not None:
            out["price_vs_others"] = take(m["lp"], rows, target) - take(comp["others"]["log_price"], rows, target)
        if not self.item_columns_:
            return out
        signals = dict(comp["promo"])
        if self.price is not None:
            signals["cut"] = comp["cut"]
        groups = self.group_code_
        lookup = np.full((int(groups.max()) + 1, len(self.items_)), -1, dtype="int64")
        lookup[groups, self.item_code_] = np.arange(len(groups))
        for j, item in enumerate(self.items_):
            series = lookup[groups[rows], j]
            has = (series >= 0) & (series != rows)  # the own item is in the own features
            for name, sig in signals.items():
                col = np.full(len(rows), np.nan)
                col[has] = take(sig, series[has], target[has])
                out[f"item_{_slug(item)}_{name}"] = col
        return out

    # ---- calibration -----------------------------------------------------------------------------------
    def _calibration(self) -> pd.DataFrame:
        """Per-step log residual quantiles of an inner fit that ends ``max_train_step`` weeks early."""
        horizon = self.max_train_step
        inner_len = self.values_.shape[1] - horizon
        if inner_len < 2 * MIN_ORIGIN_WEEKS:
            return pd.DataFrame()
        names = self.feature_names_
        booster, beta = self._train(inner_len)
        m = self._matrices(self.values_[:, :inner_len], self.cov_, beta)
        n = len(self.series_)
        rows = np.repeat(np.arange(n), horizon)
        steps = np.tile(np.arange(1, horizon + 1), n)
        origins = np.full(rows.size, inner_len - 1)
        X, offset = self._features(m, m, rows, origins, steps)
        pred = offset + booster.predict(X[names], num_threads=self.num_threads)
        actual = np.log1p(np.maximum(self.values_[rows, origins + steps], 0.0))
        ok = np.isfinite(actual) & np.isfinite(pred)
        resid = pd.DataFrame({"step": steps[ok], "r": actual[ok] - pred[ok]})
        table = resid.groupby("step")["r"].quantile(list(OFFSET_GRID)).unstack()
        table.columns = [f"{q:.2f}" for q in OFFSET_GRID]
        self.feature_names_ = names
        return table.reset_index()

    def _offset(self, steps: np.ndarray, q: float) -> np.ndarray:
        """The conformal log offset at level ``q`` per step (the last step beyond the table)."""
        if self.offsets_ is None or self.offsets_.empty:
            return np.zeros(len(steps))
        table = self.offsets_.set_index("step")
        at_step = table.reindex(np.minimum(steps, int(table.index.max()))).to_numpy()
        grid = np.asarray(OFFSET_GRID)
        hi = int(np.clip(np.searchsorted(grid, q), 1, len(grid) - 1))
        w = float(np.clip((q - grid[hi - 1]) / (grid[hi] - grid[hi - 1]), 0.0, 1.0))
        return (1 - w) * at_step[:, hi - 1] + w * at_step[:, hi]

    # ---- forecasting -------------------------------------------------------------------------------------
    def _plan(self, future: pd.DataFrame | None, horizon: int) -> dict[str, np.ndarray]:
        return {c: np.concatenate([v, self._future_matrix(future, c, horizon)], axis=1) for c, v in self.cov_.items()}

    def _at_regular(self, plan: dict[str, np.ndarray], m: dict[str, Any]) -> dict[str, np.ndarray]:
        """The plan with every future week at regular: no promotion, price at regular."""
        t_len = self.values_.shape[1]
        out = {c: v.copy() for c, v in plan.items()}
        for c in self.promos:
            out[c][:, t_len:] = np.where(np.isnan(out[c][:, t_len:]), np.nan, 0.0)
        if self.price is not None:
            out[self.price][:, t_len:] = np.where(np.isnan(out[self.price][:, t_len:]), np.nan,
                                                  np.exp(m["log_regular"][:, t_len:]))
        return out

    def _log_forecast(self, horizon: int, future: pd.DataFrame | None, scenario: str = "plan") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log forecasts for every series and step under the plan, or with the series' own
        plan at regular (``own_regular``), or with every item at regular (``all_regular``)."""
        n, t_len = self.values_.shape
        plan = self._plan(future, horizon)
        m = comp = self._matrices(self.values_, plan, self.beta_)
        if scenario != "plan":
            regular = self._matrices(self.values_, self._at_regular(plan, m), self.beta_)
            m, comp = (regular, comp) if scenario == "own_regular" else (regular, regular)
        rows = np.repeat(np.arange(n), horizon)
        steps = np.tile(np.arange(1, horizon + 1), n)
        X, offset = self._features(m, comp, rows, np.full(rows.size, t_len - 1), steps)
        pred = offset + self.booster_.predict(X[self.feature_names_], num_threads=self.num_threads)
        return pred, rows, steps

    def _frame(self, rows: np.ndarray, steps: np.ndarray, horizon: int) -> pd.DataFrame:
        frame = self.series_.iloc[rows].reset_index(drop=True)
        frame[WEEK] = np.tile(self.future_weeks(horizon), len(self.series_))
        frame["step"] = steps
        return frame

    @staticmethod
    def _sales(log_pred: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(log_pred), np.expm1(np.maximum(log_pred, 0.0)), 0.0)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        pred, rows, steps = self._log_forecast(horizon, future)
        frame = self._frame(rows, steps, horizon)
        frame["yhat"] = self._sales(pred)
        return frame

    def predict_quantiles(self, horizon: int, future: pd.DataFrame | None = None,
                          levels: Sequence[float] = DEFAULT_LEVELS) -> pd.DataFrame:
        """Keys, week, step and one column ``qNN`` per level, monotone in the level.

        The log forecast plus the step's conformal offset at that level; steps past the
        calibrated horizon reuse its last step. Without calibration (``calibrate=False`` or
        too short a history) every quantile is the point forecast.
        """
        if not getattr(self, "is_fitted_", False):
            raise NotTrainedError(f"{self.name}: call fit() before predict_quantiles()")
        if horizon < 1:
            raise DataError(f"{self.name}: horizon must be >= 1, got {horizon}")
        levels = sorted(float(q) for q in levels)
        if any(not 0.0 < q < 1.0 for q in levels):
            raise DataError(f"{self.name}: quantile levels must lie in (0, 1), got {levels}")
        pred, rows, steps = self._log_forecast(horizon, future)
        qs = np.stack([pred + self._offset(steps, q) for q in levels], axis=1)
        qs = self._sales(np.maximum.accumulate(qs, axis=1))
        frame = self._frame(rows, steps, horizon)
        for j, q in enumerate(levels):
            frame[f"q{round(q * 100):02d}"] = qs[:, j]
        return frame.sort_values([*self.keys_, WEEK], kind="stable").reset_index(drop=True)

    def decompose(self, horizon: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """The forecast split exactly: ``yhat = baseline + competition + own_drivers``.

        ``baseline``: every item of the group at regular (no promotion, price at regular);
        ``competition``: what the other items' plans add or take with the own plan at
        regular; ``own_drivers``: what the series' own planned price and promotions add.
        """
        cols = [*self.keys_, WEEK, "step"]
        out = None
        for label, scenario in (("yhat", "plan"), ("own_regular", "own_regular"), ("baseline", "all_regular")):
            pred, rows, steps = self._log_forecast(horizon, future, scenario)
            frame = self._frame(rows, steps, horizon)
            frame[label] = self._sales(pred)
            out = frame if out is None else out.merge(frame, on=cols)
        assert out is not None
        out["competition"] = out["own_regular"] - out["baseline"]
        out["own_drivers"] = out["yhat"] - out["own_regular"]
        out = out[[*cols, "yhat", "baseline", "competition", "own_drivers"]]
        return out.sort_values(cols, kind="stable").reset_index(drop=True)

    def _future_matrix(self, future: pd.DataFrame | None, column: str, horizon: int) -> np.ndarray:
        """Series x horizon matrix of ``future[column]``; NaN where the plan is not given."""
        out = np.full((len(self.series_), horizon), np.nan)
        if future is None or future.empty or column not in future.columns:
            return out
        if any(k not in future.columns for k in self.keys_):
            raise DataError(f"{self.name}: future rows need the key columns {self.keys_}; they have {list(future.columns)}")
        wide = future.pivot_table(index=self.keys_, columns=WEEK, values=column, aggfunc="first")
        return wide.reindex(index=self._series_index(), columns=self.future_weeks(horizon)).to_numpy(dtype="float64")

    # ---- persistence -------------------------------------------------------------------------------------
    def _keep_tail(self) -> None:
        """Keep the weeks the features read at the forecast origin (last year and windows)."""
        keep = min(2 * SEASON + 8, len(self.weeks_))
        self.weeks_ = self.weeks_[-keep:]
        self.values_ = self.values_[:, -keep:]
        self.cov_ = {c: v[:, -keep:] for c, v in self.cov_.items()}

    def _save_state(self, folder: Path) -> dict[str, Any]:
        self.booster_.save_model(str(folder / "lightgbm.txt"))
        cols = [w.date().isoformat() for w in self.weeks_]
        tables = {"sales": self.values_, **{f"driver_{i}": v for i, v in enumerate(self.cov_.values())}}
        for label, matrix in tables.items():
            pd.concat([self.series_, pd.DataFrame(matrix, columns=cols)], axis=1).to_parquet(folder / f"{label}.parquet", index=False)
        pd.DataFrame({f"static_{i}": v for i, v in enumerate(self.static_.values())}, index=range(len(self.series_))).to_parquet(folder / "static.parquet", index=False)
        pd.DataFrame(self.beta_).to_parquet(folder / "lift.parquet", index=False)
        offsets = self.offsets_
        has_offsets = offsets is not None and not offsets.empty
        if offsets is not None and has_offsets:
            offsets.to_parquet(folder / "offsets.parquet", index=False)
        return {
            "booster": "lightgbm.txt",
            "features": self.feature_names_,
            "static": list(self.static_),
            "items": self.items_,
            "group": self.group_,
            "drivers": self.drivers,
            "offsets": has_offsets,
        }

    def _load_state(self, folder: Path, state: dict[str, Any]) -> None:
        import lightgbm as lgb

        self._set_drivers(list(state["drivers"]))
        self.booster_ = lgb.Booster(model_file=str(folder / state["booster"]))
        self.feature_names_ = list(state["features"])
        sales = pd.read_parquet(folder / "sales.parquet")
        self.series_ = sales[self.keys_].reset_index(drop=True)
        week_cols = [c for c in sales.columns if c not in self.keys_]
        self.weeks_ = pd.DatetimeIndex(pd.to_datetime(week_cols))
        self.values_ = sales[week_cols].to_numpy(dtype="float64")
        self.cov_ = {c: pd.read_parquet(folder / f"driver_{i}.parquet")[week_cols].to_numpy(dtype="float64")
                     for i, c in enumerate(self.drivers)}
        static = pd.read_parquet(folder / "static.parquet")
        self.static_ = {c: static[f"static_{i}"].to_numpy(dtype="float64") for i, c in enumerate(state["static"])}
        self.beta_ = pd.read_parquet(folder / "lift.parquet").to_numpy(dtype="float64")
        self.group_ = state["group"]
        self.items_ = list(state["items"])
        self._index_series()
        self.offsets_ = pd.read_parquet(folder / "offsets.parquet") if state["offsets"] else None
