"""Monitoring: realized errors, PSI, checks with thresholds, and the alert webhook."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from storecast.config import Settings
from storecast.data.schema import Dataset
from storecast.data.spec import RECRUITING_SPEC
from storecast.lifecycle.monitoring import (
    Check,
    MonitorReport,
    dispatch_alerts,
    evaluate,
    psi,
    realized_errors,
)
from storecast.models import get_model_class


def _forecasts_from_truth(frame: pd.DataFrame, cutoff: pd.Timestamp, factor: float = 1.0) -> pd.DataFrame:
    """Forecasts made at ``cutoff`` for the next 8 weeks, equal to the truth x ``factor``."""
    part = frame[(frame["week"] > cutoff) & (frame["week"] <= cutoff + pd.Timedelta(weeks=8))]
    out = part[["store", "week"]].copy()
    out["step"] = ((out["week"] - cutoff).dt.days // 7).astype(int)
    out["yhat"] = part["sales"].to_numpy() * factor
    out["run_id"], out["model_version"], out["cutoff"] = "r1", "1", cutoff
    return out


def test_psi_is_zero_for_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 5000)
    assert psi(base, rng.normal(0, 1, 5000)) < 0.02
    assert psi(base, base + 0.001, resolution=0.5) < 1e-3
    assert np.isnan(psi(base, base[:5]))  # too few values for a stable estimate
    assert psi(base, rng.normal(1.5, 1, 500)) > 0.25


def test_realized_errors_join_forecasts_with_arrived_actuals(synthetic_dataset: Dataset) -> None:
    frame = synthetic_dataset.frame
    cutoff = frame["week"].max() - pd.Timedelta(weeks=2)
    errors = realized_errors(_forecasts_from_truth(frame, cutoff, 1.1), frame, ["store"])
    assert set(errors["step"]) == {1, 2}  # only 2 of the 8 forecast weeks have actuals
    assert len(errors) == 2 * synthetic_dataset.n_series
    assert np.allclose(errors["ape"], 10.0)


def test_clean_data_is_ok_and_injected_drift_alerts(synthetic_dataset: Dataset) -> None:
    settings = Settings()
    frame = synthetic_dataset.frame.copy()
    # The synthetic fuel price grows linearly, so its yearly growth rate keeps falling: real
    # drift. A stable world for the clean case: fuel follows the season only.
    frame["fuel_price"] = 3.0 + 0.2 * np.sin(frame["week"].dt.dayofyear / 58.1)
    trained_to = frame["week"].max() - pd.Timedelta(weeks=8)
    good = realized_errors(_forecasts_from_truth(frame, trained_to, 1.02), frame, ["store"])
    report = evaluate(frame, good, settings=settings, champion_version="1", promise_mape=3.0, trained_to=trained_to)
    assert report.status == "ok", report.checks
    assert report.drift_alerts() == []

    drifted = frame.copy()
    late = drifted["week"] > trained_to
    drifted.loc[late, "temperature"] += 30  # a heat wave
    drifted.loc[late & (drifted["store"] == 2), "sales"] *= 1.5  # a store's level jumps
    errors = realized_errors(_forecasts_from_truth(frame, trained_to, 1.0), drifted, ["store"])
    report = evaluate(drifted, errors, settings=settings, champion_version="1", promise_mape=3.0, trained_to=trained_to)
    names = {c.name for c in report.alerts}
    assert {"psi:temperature", "level_shift", "realized_mape"} <= names
    assert [c.subject for c in report.alerts if c.name == "level_shift"] == ["store 2"]
    assert report.status == "alert" and report.drift_alerts()
    assert json.dumps(report.to_dict())  # JSON-able for --json and the API


def test_covariate_drift_retrains_only_a_champion_that_reads_the_covariate() -> None:
    cpi = Check("psi:cpi", "all", 0.9, 0.1, 0.25, "alert", "cpi PSI 0.900")
    shift = Check("level_shift", "store 2", 0.2, 0.1, 0.15, "alert", "store 2 sells +20%")
    warn = Check("psi:fuel_price", "all", 0.2, 0.1, 0.25, "warn", "fuel PSI 0.2")
    report = MonitorReport("now", "2012-10-26", "1", [cpi, shift, warn])
    assert report.drift_alerts() == [cpi.message, shift.message]  # no champion named: all count
    spec = RECRUITING_SPEC
    assert report.drift_alerts(get_model_class("calendar_yoy").covariates_read(spec)) == [shift.message]
    assert report.drift_alerts(get_model_class("gbm").covariates_read(spec)) == [cpi.message, shift.message]
    # An ensemble reads what its members read.
    assert get_model_class("pooled_blend").covariates_read(spec) >= {"cpi", "fuel_price"}
    assert get_model_class("ensemble").covariates_read(spec) == frozenset()
    # Reported either way: only the retraining decision changes.
    assert [c.name for c in report.alerts] == ["psi:cpi", "level_shift"]


def test_alerts_are_posted_to_the_webhook(webhook, caplog: pytest.LogCaptureFixture) -> None:
    url, received = webhook
    alert = Check("psi:cpi", "all", 0.9, 0.1, 0.25, "alert", "cpi PSI 0.900")
    assert dispatch_alerts([alert], Settings(alert_webhook_url=url), context={"as_of": "2012-10-26"})
    assert received[0]["alerts"][0]["name"] == "psi:cpi" and received[0]["as_of"] == "2012-10-26"
    assert "ALERT psi:cpi" in caplog.text
    # An unreachable webhook is logged, never raised.
    assert not dispatch_alerts([alert], Settings(alert_webhook_url="http://127.0.0.1:9/none"))
