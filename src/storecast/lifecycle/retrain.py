"""Retraining: when to retrain, and the job that trains a challenger and promotes it or not.

``train_challenger`` is the one place a model is trained for the registry: backtest the
challenger and the champion's model on the SAME data with the SAME protocol, fit the
challenger on all history, register it, and promote it only if it wins:

- no champion yet: promote;
- the challenger is the champion's own model (same name, so the same backtest): promote,
  it is the champion refitted on newer data — the margin guards against switching models
  on noise, not against learning from new weeks;
- otherwise promote only if ``challenger MAPE <= champion MAPE x (1 - promotion_margin)``.

``retraining_due`` is the policy: the monthly schedule (the newest week is in a later month
than the champion's training data), a drift alert from monitoring, or a manual request.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from storecast.config import Settings
from storecast.data.schema import Dataset
from storecast.evaluation.backtest import BacktestResult, backtest
from storecast.lifecycle.registry import ModelVersion, Registry
from storecast.models import BASELINES, DEFAULT_MODEL, Forecaster, create_model
from storecast.models.intervals import ConformalIntervals

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
    model: Forecaster
    intervals: ConformalIntervals
    trigger: str = "manual"
    leaderboard: pd.DataFrame = field(default_factory=pd.DataFrame)


def resolve_model_name(settings: Settings) -> str:
    return DEFAULT_MODEL if settings.model == "auto" else settings.model


def make_run_id(dataset: Dataset, model: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}-{model}-{dataset.fingerprint[:8]}"


def decide(
    challenger: str, challenger_mape: float, champion: ModelVersion | None, champion_mape: float | None, margin: float
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
        return True, (f"{challenger} MAPE {challenger_mape:.2f}% beats champion {champion.model_name} "
                      f"{champion_mape:.2f}% by the margin {margin:.0%}")
    return False, (f"{challenger} MAPE {challenger_mape:.2f}% does not beat champion {champion.model_name} "
                   f"{champion_mape:.2f}% by the margin {margin:.0%}")


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
    say = progress or (lambda _msg: None)
    name = resolve_model_name(settings)
    champion = registry.champion()
    names = list(dict.fromkeys([name, *BASELINES, *([champion.model_name] if champion else [])]))
    result = backtest(
        dataset, names,
        horizon=settings.horizon, windows=settings.backtest_windows, step=settings.backtest_step,
        seed=settings.seed, progress=lambda m: say(f"backtest {m}"),
    )
    board = result.leaderboard()
    by_model = board.set_index("model")
    metrics = {k: float(v) for k, v in by_model.loc[name].items()}
    champion_mape = (
        float(by_model.loc[champion.model_name, "mape"])
        if champion is not None and champion.model_name in by_model.index else None
    )

    say(f"training {name} on all history")
    model = create_model(name, seed=settings.seed).fit(dataset.frame)
    intervals = ConformalIntervals.from_residuals(result.residuals(name))
    run_id = run_id or make_run_id(dataset, name)
    version = registry.register(
        model, intervals=intervals, metrics=metrics,
        params={"horizon": settings.horizon, "backtest_windows": settings.backtest_windows,
                "backtest_step": settings.backtest_step, "trigger": trigger,
                "first_week": str(dataset.first_week.date()), "last_week": str(dataset.last_week.date()),
                "series": dataset.n_series, "level": dataset.level},
        data_fingerprint=dataset.fingerprint, run_id=run_id,
    )
    promote, reason = decide(name, metrics["mape"], champion, champion_mape, settings.promotion_margin)
    if promote:
        version = registry.promote(version.version)
        log.info("version %s promoted: %s", version.version, reason)
    else:
        log.info("version %s kept as challenger: %s", version.version, reason)
    return TrainResult(
        run_id=run_id, version=version, promoted=promote, reason=reason,
        champion=version if promote else champion, challenger_mape=metrics["mape"],
        champion_mape=champion_mape, metrics=metrics, backtest=result, model=model,
        intervals=intervals, trigger=trigger, leaderboard=board,
    )


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
    if (newest.year, newest.month) > (trained.year, trained.month):
        return RetrainDecision(
            True, "schedule", f"monthly: data reaches {newest.date()}, champion trained to {trained.date()}"
        )
    return RetrainDecision(False, None, f"champion trained to {trained.date()} is current")
