"""The jobs end to end on synthetic data: run registers a champion, drift triggers retraining,
a corrupt file blocks retraining and keeps the champion."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from storecast.config import Settings
from storecast.data.schema import WEEK, Dataset
from storecast.delivery.warehouse import Warehouse
from storecast.errors import QualityGateError
from storecast.lifecycle.jobs import refresh_job, run_job
from storecast.lifecycle.monitoring import accuracy_frames
from storecast.lifecycle.registry import Registry
from storecast.lifecycle.retrain import retrain_job
from storecast.synthetic import WALMART_COLUMNS


def _head(dataset: Dataset, weeks: int) -> Dataset:
    cut = dataset.first_week + pd.Timedelta(weeks=weeks - 1)
    return Dataset.from_frame(dataset.frame[dataset.frame[WEEK] <= cut], source="synthetic head")


def _arrive(settings: Settings, frame: pd.DataFrame, ingest_id: str) -> None:
    """New weeks of actuals land in the warehouse (what `storecast ingest` does after its gate)."""
    with Warehouse(settings.resolved_warehouse_url) as wh:
        status, _, message = wh.ingest_sales(
            frame, ingest_id=ingest_id, source="test", file_fingerprint=ingest_id, content_fingerprint=None,
            started_at=dt.datetime.now(dt.UTC).replace(tzinfo=None), allow_restatement=False)
    assert status == "accepted", message


@pytest.fixture
def lifecycle_settings(tmp_path: Path) -> Settings:
    return Settings(out_dir=tmp_path / "out", model="yoy_scaled", backtest_windows=2, horizon=8, backtest_step=8)


def test_run_registers_a_champion_and_drift_triggers_retraining(
    lifecycle_settings: Settings, synthetic_dataset: Dataset, webhook
) -> None:
    url, received = webhook
    settings = lifecycle_settings.model_copy(update={"alert_webhook_url": url})
    first = run_job(settings, _head(synthetic_dataset, 120))
    assert (first.model_version, first.promoted) == ("1", True)
    registry = Registry(settings)
    assert registry.champion().trained_to == str(_head(synthetic_dataset, 120).last_week.date())
    with Warehouse(settings.resolved_warehouse_url) as wh:
        assert set(wh.read_forecasts(first.run_id)["model_version"]) == {"1"}

    # Four more weeks arrive with a jump in store 2's level and a heat wave.
    late = synthetic_dataset.frame[(synthetic_dataset.frame[WEEK] > _head(synthetic_dataset, 120).last_week)]
    late = late[late[WEEK] <= late[WEEK].min() + pd.Timedelta(weeks=3)].copy()
    late.loc[late["store"] == 2, "sales"] *= 1.6
    _arrive(settings, late, "drift-weeks")
    result = refresh_job(settings)
    assert any(c.name == "level_shift" and c.subject == "store 2" for c in result.report.alerts)
    assert result.decision.due and result.decision.trigger == "drift"
    assert result.retrain is not None and result.retrain.train.trigger == "drift"
    assert registry.champion().version == "2"  # the refit of the same model on the new weeks
    assert received and any(a["name"] == "level_shift" for a in received[0]["alerts"])

    frames = accuracy_frames(settings)
    assert not frames["weekly"].empty and 2 in set(frames["by_store"]["store"])
    assert set(frames["checks"]["status"]) >= {"alert"}


def test_corrupt_file_blocks_retraining_and_keeps_the_champion(
    lifecycle_settings: Settings, synthetic_dataset: Dataset, synthetic_frame: pd.DataFrame, tmp_path: Path,
    webhook
) -> None:
    url, received = webhook
    settings = lifecycle_settings.model_copy(update={"alert_webhook_url": url})
    run_job(settings, _head(synthetic_dataset, 120))
    corrupt = synthetic_frame.copy()
    corrupt["Date"] = corrupt["Date"].dt.strftime("%d-%m-%Y")
    corrupt.loc[5, "Weekly_Sales"] = -1e12  # an impossible week
    path = tmp_path / "corrupt.csv"
    corrupt[WALMART_COLUMNS].to_csv(path, index=False)
    with pytest.raises(QualityGateError):
        retrain_job(settings, path, trigger="schedule")
    registry = Registry(settings)
    assert [v.version for v in registry.versions()] == ["1"] and registry.champion().version == "1"
    assert received[-1]["alerts"][0]["name"] == "quality_gate"
