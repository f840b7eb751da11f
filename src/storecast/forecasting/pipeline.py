"""The forecasting core, written once: predict -> cold starts -> reconcile -> quantiles.

A ``ForecastPipeline`` is what storecast trains, registers and serves: the leaf model (the
chosen model on the most detailed series), one model per anchor level of the hierarchy
(``hierarchy.anchor_levels``: the store totals of department data), the reconciliation
method the backtest chose, the quantile calibration of every level, and the known-future
inputs the data gave for the weeks after it. ``storecast run``, the weekly refresh,
retraining, the API's snapshot and what-if, and the simulation all forecast through
``ForecastPipeline.predict``.

``evaluate_pipeline`` turns a backtest of the leaf model into what the pipeline delivers:
the anchor models backtested on the same origins, the leaves reconciled by each candidate
method (the best by leaf WAPE is kept), every level's errors, and quantiles calibrated per
level and step on those errors (each backtest window calibrated on the other windows; with a
single window coverage is not measurable and bands stay empty).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK, Dataset
from storecast.data.spec import SeriesSpec
from storecast.errors import DataError, StorecastError
from storecast.evaluation.backtest import BacktestResult, backtest
from storecast.evaluation.metrics import wmape
from storecast.forecasting.calibration import Calibrator
from storecast.forecasting.coldstart import ColdStart
from storecast.forecasting.future import future_frame, given_columns
from storecast.forecasting.hierarchy import (
    CANDIDATES,
    Level,
    aggregate_forecast,
    aggregate_history,
    anchor_levels,
    level_name,
    reconcile,
    relative_mse,
)
from storecast.models import create_model, resolve_model
from storecast.models.base import Forecaster
from storecast.models.intervals import DEFAULT_QUANTILES, ConformalIntervals
from storecast.models.quantiles import series_noise

log = logging.getLogger(__name__)

#: Levels with fewer series than this pool their horizon steps when calibrated.
POOL_BELOW = 10
PIPELINE_VERSION = 1


def anchor_model_name() -> str:
    """The model of anchor levels (store totals): the most accurate store-level model."""
    return resolve_model("auto", "store")


@dataclass
class LevelForecast:
    """A forecast at every level: the leaves and each aggregate (total first)."""

    leaves: pd.DataFrame  # keys, week, step, yhat, bands, quantiles
    levels: dict[Level, pd.DataFrame]  # (), (k1,), ...: level keys, week, step, yhat, bands, quantiles
    model_yhat: pd.Series | None = None  # the leaves before cold starts and reconciliation

    def stacked(self, keys: Sequence[str]) -> pd.DataFrame:
        """Every level in one frame: ``level`` (``total``, ``store``, ``store/brand``...), the
        key columns (empty above the level), week, step, yhat, bands and quantiles."""
        parts = [*(frame.assign(level=level_name(level)) for level, frame in self.levels.items()),
                 self.leaves.assign(level=level_name(tuple(keys)))]
        out = pd.concat(parts, ignore_index=True, sort=False)
        first = ["level", *keys]
        return out[first + [c for c in out.columns if c not in first]]


@dataclass
class PipelineEvaluation:
    """What the pipeline delivered on the backtest origins."""

    method: str
    scores: dict[str, float]  # leaf WAPE (%) per reconciliation candidate
    relative_mse: dict[Level, float]
    leaves: pd.DataFrame  # keys, week, cutoff, step, y, yhat (delivered), bands, quantiles
    levels: dict[Level, pd.DataFrame]  # same per aggregate level (y = matched actuals)
    calibration: dict[Level, Calibrator]  # from every window: what the forecast uses
    anchor_failures: dict[str, str] = field(default_factory=dict)
    #: per level name: the quantile method the backtest chose (``conformal`` or ``scaled``)
    quantile_methods: dict[str, str] = field(default_factory=dict)


def _cold(dataset: Dataset, frame: pd.DataFrame) -> pd.DataFrame:
    """Short series of each window's predictions blended with their peers, as delivered."""
    if frame.empty:
        return frame
    parts = [ColdStart.fit(dataset.frame, dataset.spec, c).adjust(part) for c, part in frame.groupby("cutoff", sort=True)]
    return pd.concat(parts, ignore_index=True)


def evaluate_pipeline(
    dataset: Dataset,
    result: BacktestResult,
    model: str,
    *,
    seed: int = 0,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    jobs: int = 1,
    anchor: str | None = None,
) -> PipelineEvaluation:
    """The delivered backtest of ``model`` (see the module docstring).

    The backtest's calibration-only origins (``BacktestResult.calibration``: one before a
    single window) are reconciled the same way and feed the quantile calibration of the
    windows after them, never their own.
    """
    spec = dataset.spec
    keys = list(spec.keys)
    cols = [*keys, WEEK, "cutoff", "step", "yhat", "y"]
    raw = _cold(dataset, result.predictions.loc[result.predictions["model"] == model, cols].reset_index(drop=True))
    cal = result.calibration
    raw_cal = _cold(dataset, cal.loc[cal["model"] == model, cols].reset_index(drop=True)) \
        if not cal.empty and "model" in cal else pd.DataFrame(columns=cols)
    n_cal = int(raw_cal["cutoff"].nunique()) if not raw_cal.empty else 0
    anchors, anchors_cal, failures = _anchor_backtests(dataset, result, anchor or anchor_model_name(), seed, jobs, n_cal)
    base_mse = {lv: relative_mse(p["y"].to_numpy(float), p["yhat"].to_numpy(float)) for lv, p in anchors.items()}
    base_mse[tuple(keys)] = relative_mse(raw["y"].to_numpy(float), raw["yhat"].to_numpy(float))
    scores: dict[str, float] = {}
    reconciled: dict[str, pd.DataFrame] = {}
    for method in (CANDIDATES if anchors else ("bottom_up",)):
        rec = reconcile(raw, keys, anchors, method=method, relative_mse=base_mse)  # type: ignore[arg-type]
        reconciled[method] = rec
        scores[method] = wmape(rec["y"], rec["yhat"])
    method = min(scores, key=lambda m: (round(scores[m], 6), CANDIDATES.index(m) if m in CANDIDATES else 0))
    leaves = reconciled[method]
    leaves_cal = reconcile(raw_cal, keys, anchors_cal, method=method, relative_mse=base_mse) if n_cal else raw_cal  # type: ignore[arg-type]
    levels = {lv: _aggregate_with_actuals(leaves, lv) for lv in spec.levels()[:-1]}
    levels_cal = {lv: _aggregate_with_actuals(leaves_cal, lv) if n_cal else pd.DataFrame() for lv in levels}
    noise = _window_noise(dataset, [*result.cutoffs, *(raw_cal["cutoff"].unique() if n_cal else [])])
    # Sales that never went below zero (units, most retailers' revenue) get no negative bands.
    floor = 0.0 if bool((dataset.frame[TARGET].dropna() >= 0).all()) else None
    calibration: dict[Level, Calibrator] = {}
    banded: dict[Level, pd.DataFrame] = {}
    chosen: dict[str, str] = {}
    for level, frame, extra in [(tuple(keys), leaves, leaves_cal), *((lv, levels[lv], levels_cal[lv]) for lv in levels)]:
        pool = _pool(frame, level)
        kinds = ("conformal", "scaled") if level == tuple(keys) and len(frame) >= 200 else ("conformal",)
        tried = {kind: _cross_window(frame, extra, level, quantiles, pool, kind, noise, floor) for kind in kinds}
        kind = min(tried, key=lambda k: (_wql_or_inf(tried[k]), kinds.index(k)))
        chosen[level_name(level)] = kind
        banded[level] = tried[kind]
        every = pd.concat([frame, extra], ignore_index=True) if not extra.empty else frame
        calibration[level] = Calibrator.fit(kind, _with_noise(every, noise, level), level, quantiles, pool, floor)
    return PipelineEvaluation(
        method=method, scores=scores, relative_mse=base_mse, leaves=banded[tuple(keys)],
        levels={lv: banded[lv] for lv in levels}, calibration=calibration, anchor_failures=failures,
        quantile_methods=chosen,
    )


def _wql_or_inf(frame: pd.DataFrame) -> float:
    from storecast.evaluation.metrics import quantile_levels, wql

    levels = quantile_levels(frame)
    if not levels or frame[[f"q{q:g}" for q in levels]].isna().all().all():
        return float("inf")
    value = wql(frame["y"], frame[[f"q{q:g}" for q in levels]].to_numpy(dtype="float64"), levels)
    return value if np.isfinite(value) else float("inf")


def _window_noise(dataset: Dataset, cutoffs: Sequence[pd.Timestamp]) -> pd.DataFrame:
    """Each series' week-to-week noise in its history up to each origin (the scaled quantiles'
    feature): keys, cutoff, noise."""
    parts = [series_noise(dataset.frame[dataset.frame[WEEK] <= c], dataset.keys).assign(cutoff=pd.Timestamp(c))
             for c in dict.fromkeys(pd.Timestamp(c) for c in cutoffs)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _with_noise(frame: pd.DataFrame, noise: pd.DataFrame, level: Level) -> pd.DataFrame:
    if noise.empty or not set(level) <= set(noise.columns) or "cutoff" not in frame or len(level) != noise.shape[1] - 2:
        return frame
    return frame.merge(noise, on=[*level, "cutoff"], how="left")


def _pool(frame: pd.DataFrame, level: Level) -> bool:
    n = frame[list(level)].drop_duplicates().shape[0] if level else 1
    return n < POOL_BELOW


def _cross_window(frame: pd.DataFrame, extra: pd.DataFrame, level: Level, quantiles: Sequence[float], pool: bool,
                  kind: str, noise: pd.DataFrame, floor: float | None = None) -> pd.DataFrame:
    """Bands of each backtest window calibrated on the other windows and the calibration
    origins before it; a window with no such residuals gets none (coverage not measurable)."""
    parts = []
    frame = _with_noise(frame, noise, level)
    extra = _with_noise(extra, noise, level) if not extra.empty else extra
    for cutoff, part in frame.groupby("cutoff", sort=True):
        others = frame[frame["cutoff"] != cutoff]
        if not extra.empty:
            earlier = extra[extra[WEEK] <= cutoff]
            others = pd.concat([others, earlier], ignore_index=True) if not earlier.empty else others
        if others.empty:
            cal = Calibrator.empty(quantiles)
        else:
            cal = Calibrator.fit(kind, others, level, quantiles, pool, floor)
        parts.append(cal.apply(part, level).drop(columns=["noise"], errors="ignore"))
    return pd.concat(parts, ignore_index=True) if parts else frame


def _aggregate_with_actuals(leaves: pd.DataFrame, level: Level) -> pd.DataFrame:
    """Delivered predictions summed to ``level`` with the actuals of the same leaves."""
    matched = leaves.assign(y=leaves["y"].where(leaves["yhat"].notna()))
    by = [*level, WEEK, "cutoff", "step"]
    return matched.groupby(by, as_index=False, sort=True)[["yhat", "y"]].sum(min_count=1)


def _anchor_backtests(
    dataset: Dataset, result: BacktestResult, anchor: str, seed: int, jobs: int, calibration_windows: int = 0
) -> tuple[dict[Level, pd.DataFrame], dict[Level, pd.DataFrame], dict[str, str]]:
    out: dict[Level, pd.DataFrame] = {}
    out_cal: dict[Level, pd.DataFrame] = {}
    failures: dict[str, str] = {}
    for level in anchor_levels(dataset.spec):
        totals = aggregate_history(dataset.frame, dataset.spec, level)
        sub = Dataset.from_frame(totals, f"{dataset.source} by {level_name(level)}", spec=dataset.spec.with_keys(level))
        try:
            res = backtest(sub, [anchor], horizon=result.horizon, windows=len(result.cutoffs),
                           step=_step(result), seed=seed, jobs=jobs, calibration_windows=calibration_windows)
        except StorecastError as exc:
            failures[level_name(level)] = str(exc)
            continue
        if anchor in res.failures:
            failures[level_name(level)] = res.failures[anchor]
            continue
        cols = [*level, WEEK, "cutoff", "step", "yhat", "y"]
        out[level] = res.predictions[cols]
        if not res.calibration.empty:
            out_cal[level] = res.calibration[cols]
    return out, out_cal, failures


def _step(result: BacktestResult) -> int:
    if len(result.cutoffs) < 2:
        return result.horizon
    return int((result.cutoffs[1] - result.cutoffs[0]).days // 7)


class ForecastPipeline:
    """The registered forecaster: leaf model, anchor models, reconciliation, calibration."""

    def __init__(
        self,
        spec: SeriesSpec,
        leaf: Forecaster,
        anchors: dict[Level, Forecaster],
        *,
        method: str,
        relative_mse: dict[Level, float],
        calibration: dict[Level, Calibrator],
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        cold_start: ColdStart | None = None,
        future_given: pd.DataFrame | None = None,
        assume_future: str | None = None,
        history_tail: pd.DataFrame | None = None,
        noise: pd.DataFrame | None = None,
    ) -> None:
        self.spec = spec
        self.leaf = leaf
        self.anchors = anchors
        self.method = method
        self.relative_mse = relative_mse
        self.calibration = calibration
        self.quantiles = tuple(quantiles)
        self.cold_start = cold_start
        self.future_given = future_given
        self.assume_future = assume_future
        #: each series' last known driver values (for ``assume_future="last"``)
        self.history_tail = history_tail
        #: each series' week-to-week noise at the origin (the scaled quantiles' feature)
        self.noise = noise

    # ---- building ------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        dataset: Dataset,
        model: str,
        evaluation: PipelineEvaluation | None,
        *,
        seed: int = 0,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        assume_future: str | None = None,
        anchor: str | None = None,
    ) -> ForecastPipeline:
        """Fit the leaf and anchor models on all of ``dataset``; calibration from ``evaluation``."""
        spec = dataset.spec
        leaf = create_model(model, seed=seed).fit(dataset.frame, spec)
        anchors: dict[Level, Forecaster] = {}
        for level in anchor_levels(spec):
            if evaluation is not None and level not in evaluation.relative_mse:
                continue  # the anchor could not be backtested; stay bottom-up at this level
            totals = aggregate_history(dataset.frame, spec, level)
            try:
                anchors[level] = create_model(anchor or anchor_model_name(), seed=seed).fit(totals, spec.with_keys(level))
            except StorecastError as exc:
                log.warning("no forecast for level %s: %s", level_name(level), exc)
        calibration = evaluation.calibration if evaluation is not None else {}
        return cls(
            spec, leaf, anchors,
            method=evaluation.method if evaluation is not None else "combined",
            relative_mse=evaluation.relative_mse if evaluation is not None else {},
            calibration=calibration, quantiles=quantiles,
            cold_start=ColdStart.fit(dataset.frame, spec),
            future_given=dataset.future, assume_future=assume_future,
            history_tail=_history_tail(dataset.frame, spec), noise=series_noise(dataset.frame, list(spec.keys)),
        )

    def refit(self, dataset: Dataset) -> ForecastPipeline:
        """The same pipeline (models and their parameters, reconciliation, calibration) refitted
        on newer history: the weekly refresh's forecast from this week, not the training week."""
        leaf = type(self.leaf)(seed=self.leaf.seed, **self.leaf.params).fit(dataset.frame, dataset.spec)
        anchors = {
            level: type(m)(seed=m.seed, **m.params).fit(aggregate_history(dataset.frame, dataset.spec, level),
                                                         dataset.spec.with_keys(level))
            for level, m in self.anchors.items()
        }
        return ForecastPipeline(
            dataset.spec, leaf, anchors, method=self.method, relative_mse=self.relative_mse,
            calibration=self.calibration, quantiles=self.quantiles,
            cold_start=ColdStart.fit(dataset.frame, dataset.spec), future_given=dataset.future,
            assume_future=self.assume_future, history_tail=_history_tail(dataset.frame, dataset.spec),
            noise=series_noise(dataset.frame, list(dataset.spec.keys)),
        )

    @property
    def keys(self) -> list[str]:
        return list(self.spec.keys)

    @property
    def last_week(self) -> pd.Timestamp:
        return pd.Timestamp(self.leaf.last_week_)

    @property
    def name(self) -> str:
        return self.leaf.name

    def series(self) -> pd.DataFrame:
        """The leaf series (key columns) the pipeline forecasts."""
        return self.leaf.known_series()

    # ---- forecasting --------------------------------------------------------------------------
    def future(self, horizon: int, *, required: bool | None = None, assume: str | None = None) -> pd.DataFrame:
        """The forecast weeks' inputs: given values, calendar and event flags, the assumption
        (``assume`` overrides the one recorded at training, e.g. for the service's 52 weeks)."""
        needs = "known_future" in type(self.leaf).roles_read() if required is None else required
        return future_frame(
            self.spec, self.series(), self.last_week, horizon, given=self.future_given,
            history=self.history_tail, assume=assume or self.assume_future, required=needs,
        )

    def predict_leaves(self, horizon: int, future: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.Series]:
        """Reconciled leaf point forecasts (no bands) and the model's own numbers."""
        if future is None:
            future = self.future(horizon)
        raw = self.leaf.predict(horizon, future)
        model_yhat = raw["yhat"].copy()
        if self.cold_start is not None:
            raw = self.cold_start.adjust(raw)
        anchors = {lv: m.predict(horizon, None) for lv, m in self.anchors.items()}
        rec = reconcile(raw, self.keys, anchors, method=self.method, relative_mse=self.relative_mse)  # type: ignore[arg-type]
        return rec, model_yhat

    def predict(self, horizon: int, future: pd.DataFrame | None = None) -> LevelForecast:
        """Every level's forecast with its bands and quantiles."""
        rec, model_yhat = self.predict_leaves(horizon, future)
        return self.band(rec, model_yhat)

    def band(self, leaves: pd.DataFrame, model_yhat: pd.Series | None = None) -> LevelForecast:
        """Bands and quantiles for reconciled leaves and every aggregate level."""
        keys = tuple(self.keys)
        out_leaves = self._apply(keys, leaves)
        levels = {}
        for level in self.spec.levels()[:-1]:
            agg = aggregate_forecast(leaves, level)
            levels[level] = self._apply(level, agg)
        return LevelForecast(out_leaves, levels, model_yhat)

    def _apply(self, level: Level, frame: pd.DataFrame) -> pd.DataFrame:
        cal = self.calibration.get(level)
        if cal is None:
            cal = Calibrator.empty(self.quantiles)
        if cal.needs_noise and self.noise is not None and "noise" not in frame:
            frame = frame.merge(self.noise, on=list(level), how="left")
        banded = cal.apply(frame, level).drop(columns=["noise"], errors="ignore")
        return banded.replace([np.inf, -np.inf], np.nan)

    # ---- persistence ------------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.leaf.save(folder / "leaf")
        anchors = []
        for i, (level, model) in enumerate(self.anchors.items()):
            model.save(folder / f"anchor_{i}")
            anchors.append({"level": list(level), "folder": f"anchor_{i}"})
        calibration = [{"level": list(lv), **cal.to_record()} for lv, cal in self.calibration.items()]
        if self.cold_start is not None:
            self.cold_start.table.to_parquet(folder / "cold_start.parquet", index=False)
        if self.future_given is not None:
            self.future_given.to_parquet(folder / "future.parquet", index=False)
        if self.history_tail is not None:
            self.history_tail.to_parquet(folder / "history_tail.parquet", index=False)
        if self.noise is not None:
            self.noise.to_parquet(folder / "noise.parquet", index=False)
        meta = {
            "format_version": PIPELINE_VERSION,
            "spec": self.spec.to_dict(),
            "anchors": anchors,
            "method": self.method,
            "relative_mse": [{"level": list(lv), "value": v} for lv, v in self.relative_mse.items()],
            "calibration": calibration,
            "quantiles": list(self.quantiles),
            "assume_future": self.assume_future,
        }
        (folder / "pipeline.json").write_text(json.dumps(meta, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path) -> ForecastPipeline:
        meta = json.loads((folder / "pipeline.json").read_text())
        if meta.get("format_version") != PIPELINE_VERSION:
            raise DataError(f"unsupported pipeline artifact version {meta.get('format_version')}", path=str(folder))
        spec = SeriesSpec.from_dict(meta["spec"])
        leaf = Forecaster.load(folder / "leaf")
        anchors = {tuple(a["level"]): Forecaster.load(folder / a["folder"]) for a in meta["anchors"]}
        quantiles = tuple(meta.get("quantiles", DEFAULT_QUANTILES))
        calibration = {tuple(c["level"]): Calibrator.from_record(c, quantiles) for c in meta["calibration"]}
        read = lambda name: pd.read_parquet(folder / name) if (folder / name).is_file() else None  # noqa: E731
        cold = read("cold_start.parquet")
        return cls(
            spec, leaf, anchors, method=meta["method"],
            relative_mse={tuple(r["level"]): float(r["value"]) for r in meta["relative_mse"]},
            calibration=calibration, quantiles=quantiles,
            cold_start=ColdStart(list(spec.keys), cold) if cold is not None else None,
            future_given=read("future.parquet"), assume_future=meta.get("assume_future"),
            history_tail=read("history_tail.parquet"), noise=read("noise.parquet"),
        )

    @classmethod
    def from_model(cls, model: Forecaster, intervals: ConformalIntervals) -> ForecastPipeline:
        """A pipeline around a bare model and its leaf intervals (artifacts saved before pipelines)."""
        return cls(model.spec_, model, {}, method="bottom_up", relative_mse={},
                   calibration={tuple(model.keys_): Calibrator.from_intervals(intervals)}, quantiles=intervals.quantiles)


def _history_tail(frame: pd.DataFrame, spec: SeriesSpec) -> pd.DataFrame | None:
    """Each series' last row of the given known-future drivers (what ``last`` assumes)."""
    cols = [c for c in given_columns(spec) if c in frame.columns]
    if not cols:
        return None
    keys = list(spec.keys)
    last = frame.sort_values([*keys, WEEK]).groupby(keys, sort=True)[[WEEK, *cols]].last().reset_index()
    return last


def history_lengths(frame: pd.DataFrame, keys: Sequence[str], cutoff: pd.Timestamp) -> pd.DataFrame:
    """Weeks of history of each series at ``cutoff`` (for accuracy by history length)."""
    hist = frame[(frame[WEEK] <= cutoff) & frame[TARGET].notna()]
    first = hist.groupby(list(keys), sort=True)[WEEK].min().rename("first").reset_index()
    first["history_weeks"] = ((cutoff - first["first"]).dt.days // 7 + 1).astype(int)
    return first.drop(columns="first")
