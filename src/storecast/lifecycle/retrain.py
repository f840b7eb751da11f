"""Retraining: when to retrain, and the job that trains a challenger and promotes it or not.

``train_challenger`` is the one place a model is trained for the registry: backtest the
challenger and the champion's model on the SAME data with the SAME protocol, fit the
challenger on all history, register it, and promote it only if it wins:

- no champion yet: promote;
- the challenger is the champion's own model (same name, so the same backtest): promote,
  it is the champion refitted on newer data — the margin guards against switching models
  on noise, not against learning from new weeks;
- otherwise promote only if ``challenger MAPE <= champion MAPE x (1 - promotion_margin)``
  (WMAPE at department level, where a percentage of near-zero weeks means nothing).

``retraining_due`` is the policy: the monthly schedule (``retrain_every_weeks``, default 4,
new weeks since the champion's training data: counted in data, not calendar months, so a
drift retrain at a month's end does not trigger a second one a week later), a drift alert
from monitoring, or a manual request.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from storecast.config import Settings
from storecast.data.schema import WEEK, Dataset
from storecast.errors import NotFoundError, QualityGateError
from storecast.evaluation.backtest import BacktestResult, backtest
from storecast.evaluation.metrics import summarize
from storecast.forecasting.pipeline import (
    ForecastPipeline,
    LevelForecast,
    PipelineEvaluation,
    evaluate_pipeline,
)
from storecast.lifecycle.monitoring import Check, dispatch_alerts
from storecast.lifecycle.registry import ModelVersion, Registry
from storecast.lifecycle.steps import (
    champion_forecast,
    load_gated,
    make_run_id,
    publish_forecast,
    resolve_future,
)
from storecast.models import BASELINES, Forecaster, resolve_model

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
Trigger = Literal["initial", "schedule", "drift", "manual"]


@dataclass
class TrainResult:
    """What one training produced and what the registry decided."""

    run_id: str
    version: ModelVersion
    promoted: bool
    reason: str
    champion: ModelVersion | None  # the champion after the decision
    challenger_mape: float
    champion_mape: float | None
    metrics: dict[str, float]
    backtest: BacktestResult
    pipeline: ForecastPipeline
    evaluation: PipelineEvaluation
    trigger: str = "manual"
    leaderboard: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the backtest of what the pipeline delivers (reconciled, cold starts, calibrated)
    delivered: dict[str, float] = field(default_factory=dict)
    #: warnings the user should read (e.g. the known-future values storecast had to assume)
    notes: list[str] = field(default_factory=list)

    @property
    def model(self) -> Forecaster:
        return self.pipeline.leaf


def resolve_model_name(settings: Settings, level: str = "store") -> str:
    return resolve_model(settings.model, level)


def selection_metric(level: str) -> str:
    """The backtest metric promotion compares: MAPE for stores, WMAPE for departments."""
    return "mape" if level == "store" else "wmape"


def decide(
    challenger: str, challenger_mape: float, champion: ModelVersion | None, champion_mape: float | None, margin: float,
    metric: str = "mape",
) -> tuple[bool, str]:
    """Promote or keep, with the reason in words (see the module docstring)."""
    if champion is None:
        return True, "no champion yet"
    if champion.model_name == challenger:
        return True, f"same model as the champion ({challenger}) refitted on newer data"
    if champion_mape is None or not math.isfinite(champion_mape):
        return True, f"the champion's model {champion.model_name} cannot be backtested on this data"
    bar = champion_mape * (1 - margin)
    if math.isfinite(challenger_mape) and challenger_mape <= bar:
        return True, (f"{challenger} {metric.upper()} {challenger_mape:.2f}% beats champion {champion.model_name} "
                      f"{champion_mape:.2f}% by the margin {margin:.0%}")
    return False, (f"{challenger} {metric.upper()} {challenger_mape:.2f}% does not beat champion {champion.model_name} "
                   f"{champion_mape:.2f}% by the margin {margin:.0%}")


@dataclass
class Fitted:
    """A model backtested, reconciled, calibrated and fitted on all history: what training
    produces before the registry sees it (``train_challenger``, the Python API)."""

    name: str
    settings: Settings  # with the known-future assumption storecast settled on
    backtest: BacktestResult
    leaderboard: pd.DataFrame
    evaluation: PipelineEvaluation
    delivered: dict[str, float]
    pipeline: ForecastPipeline
    notes: list[str]

    @property
    def metrics(self) -> dict[str, float]:
        by_model = self.leaderboard.set_index("model")
        return {k: float(v) for k, v in by_model.loc[self.name].items()}


def fit_pipeline(
    settings: Settings, dataset: Dataset, *, compare: Iterable[str] = (), progress: Progress | None = None,
) -> Fitted:
    """Backtest the configured model (with the baselines and ``compare``), reconcile and
    calibrate every level on that backtest, and fit the pipeline on all history."""
    say = progress or (lambda _msg: None)
    name = resolve_model_name(settings, dataset.level)
    settings, future_note = resolve_future(settings, dataset, name)  # fails here, before any training
    if future_note:
        log.info("%s", future_note)  # the run report and run.json carry it
    names = list(dict.fromkeys([name, *BASELINES, *compare]))
    result = backtest(
        dataset, names,
        horizon=settings.horizon, windows=settings.backtest_windows, step=settings.backtest_step,
        seed=settings.seed, progress=lambda m: say(f"backtest {m}"), jobs=settings.resolved_backtest_jobs,
        quantiles=settings.quantiles,
    )
    say("reconciling the levels and calibrating quantiles")
    evaluation = evaluate_pipeline(dataset, result, name, seed=settings.seed, quantiles=settings.quantiles,
                                   jobs=settings.resolved_backtest_jobs)
    delivered = delivered_metrics(evaluation, result)
    say(f"training {name} on all history")
    pipeline = ForecastPipeline.fit(dataset, name, evaluation, seed=settings.seed, quantiles=settings.quantiles,
                                    assume_future=settings.data.assume_future)
    return Fitted(name, settings, result, result.leaderboard(), evaluation, delivered, pipeline,
                  [future_note] if future_note else [])


def train_challenger(
    settings: Settings,
    dataset: Dataset,
    *,
    registry: Registry,
    trigger: str = "manual",
    run_id: str | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Backtest, fit, register and promote-or-keep (the shared core of run, train and retrain)."""
    metric = selection_metric(dataset.level)
    champion = registry.champion()
    fitted = fit_pipeline(settings, dataset, compare=[champion.model_name] if champion else [], progress=progress)
    name, settings, pipeline, evaluation = fitted.name, fitted.settings, fitted.pipeline, fitted.evaluation
    result, board, delivered, future_notes = fitted.backtest, fitted.leaderboard, fitted.delivered, fitted.notes
    by_model = board.set_index("model")
    metrics = fitted.metrics
    champion_mape = (
        float(by_model.loc[champion.model_name, metric])
        if champion is not None and champion.model_name in by_model.index else None
    )
    run_id = run_id or make_run_id(dataset, name)
    version = registry.register(
        pipeline, metrics=metrics,
        params={"horizon": settings.horizon, "backtest_windows": settings.backtest_windows,
                "backtest_step": settings.backtest_step, "trigger": trigger,
                "first_week": str(dataset.first_week.date()), "last_week": str(dataset.last_week.date()),
                "series": dataset.n_series, "level": dataset.level, "keys": ",".join(dataset.keys),
                "reconciliation": evaluation.method, "quantiles": ",".join(f"{q:g}" for q in settings.quantiles)},
        data_fingerprint=dataset.fingerprint, run_id=run_id,
    )
    promote, reason = decide(name, metrics[metric], champion, champion_mape, settings.promotion_margin, metric)
    if promote:
        version = registry.promote(version.version)
        log.info("version %s promoted: %s", version.version, reason)
    else:
        log.info("version %s kept as challenger: %s", version.version, reason)
    return TrainResult(
        run_id=run_id, version=version, promoted=promote, reason=reason,
        champion=version if promote else champion, challenger_mape=metrics[metric],
        champion_mape=champion_mape, metrics=metrics, backtest=result, pipeline=pipeline,
        evaluation=evaluation, trigger=trigger, leaderboard=board, delivered=delivered,
        notes=future_notes,
    )


def delivered_metrics(evaluation: PipelineEvaluation, result: BacktestResult) -> dict[str, float]:
    """Metrics of what the pipeline delivered in the backtest (the leaves, reconciled)."""
    leaves = evaluation.leaves
    scales = result.predictions[[*result.keys, "cutoff", "scale_naive"]].drop_duplicates([*result.keys, "cutoff"]) \
        if "scale_naive" in result.predictions else None
    if scales is not None:
        leaves = leaves.merge(scales, on=[*result.keys, "cutoff"], how="left")
    holiday = result.predictions[[*result.keys, WEEK, "is_holiday"]].drop_duplicates([*result.keys, WEEK]) \
        if "is_holiday" in result.predictions else None
    if holiday is not None:
        leaves = leaves.merge(holiday, on=[*result.keys, WEEK], how="left")
    return {k: float(v) for k, v in summarize(leaves).items()}


# ---- the policy ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetrainDecision:
    due: bool
    trigger: str | None
    reason: str


def retraining_due(
    newest_week: pd.Timestamp,
    champion_last_week: pd.Timestamp | None,
    drift_alerts: Iterable[str] = (),
    *,
    manual: bool = False,
    every_weeks: int = 4,
) -> RetrainDecision:
    """Whether to retrain now, and why: manual, drift alert, or the monthly schedule."""
    if manual:
        return RetrainDecision(True, "manual", "requested")
    if champion_last_week is None:
        return RetrainDecision(True, "initial", "no champion yet")
    alerts = list(drift_alerts)
    if alerts:
        return RetrainDecision(True, "drift", "; ".join(alerts))
    newest, trained = pd.Timestamp(newest_week), pd.Timestamp(champion_last_week)
    new_weeks = (newest - trained).days // 7
    if new_weeks >= every_weeks:
        return RetrainDecision(
            True, "schedule",
            f"scheduled: {new_weeks} new weeks (data to {newest.date()}, champion trained to {trained.date()})",
        )
    return RetrainDecision(False, None, f"champion trained to {trained.date()} is current")


# ---- the jobs --------------------------------------------------------------------------------
@dataclass
class RetrainResult:
    train: TrainResult
    run_id: str  # the forecast run published after the decision
    model_version: str  # the champion that made that forecast
    forecast: LevelForecast


def warehouse_history(settings: Settings) -> Dataset:
    """The stored sales history, what scheduled retraining trains on."""
    from storecast.delivery.warehouse import Warehouse

    with Warehouse.from_settings(settings) as wh:
        history = wh.history()
    if history is None:
        raise NotFoundError("the warehouse holds no sales yet; run `storecast run` or ingest a file first")
    return history


def train_job(
    settings: Settings,
    data: Path | Dataset | None = None,
    *,
    fmt: str | None = None,
    trigger: str = "manual",
    progress: Progress | None = None,
) -> tuple[TrainResult, Dataset]:
    """Quality gate -> train a challenger -> backtest against the champion -> promote or keep.

    ``data=None`` trains on the warehouse history. A failed gate trains nothing, keeps the
    champion, raises an alert (log and webhook) and re-raises the ``QualityGateError``.
    """
    if data is None:
        data = warehouse_history(settings)
    try:
        dataset, _ = load_gated(settings, data, fmt)
    except QualityGateError as exc:
        dispatch_alerts(
            [Check("quality_gate", str(exc.path or "data"), float("nan"), 0.0, 0.0, "alert",
                   f"retraining blocked, champion kept: {exc.message}")],
            settings, source="retrain", context={"trigger": trigger},
        )
        raise
    return train_challenger(settings, dataset, registry=Registry(settings), trigger=trigger, progress=progress), dataset


def retrain_job(
    settings: Settings,
    data: Path | Dataset | None = None,
    *,
    fmt: str | None = None,
    trigger: str = "manual",
    progress: Progress | None = None,
) -> RetrainResult:
    """``train_job``, then forecast with whichever model is champion now and publish it."""
    say = progress or (lambda _msg: None)
    trained, dataset = train_job(settings, data, fmt=fmt, trigger=trigger, progress=say)
    registry = Registry(settings)
    say("forecasting with the champion")
    made = champion_forecast(settings, dataset, registry)
    version = made.loaded.version
    run_id = trained.run_id if version.version == trained.version.version else make_run_id(dataset, version.model_name)
    publish_forecast(
        settings, dataset, made.forecast, run_id=run_id, model=version.model_name, model_version=version.version,
        metrics=version.metrics, write_history=isinstance(data, (Path, str)),
        details={"trigger": trigger, "promoted": trained.promoted, "promotion_reason": trained.reason,
                 "challenger_version": trained.version.version},
    )
    return RetrainResult(trained, run_id, version.version, made.forecast)
