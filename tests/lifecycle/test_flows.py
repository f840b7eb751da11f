"""The Prefect flows under Prefect's test harness (skipped when the extra is not installed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from storecast.config import Settings
from storecast.data.schema import WEEK, Dataset
from storecast.lifecycle.flows import build_flows, inbox_files
from storecast.lifecycle.jobs import run_job
from storecast.lifecycle.registry import Registry
from storecast.lifecycle.simulate import _write_week

prefect_testing = pytest.importorskip("prefect.testing.utilities", reason="prefect extra not installed")


@pytest.mark.slow
def test_weekly_refresh_and_retrain_flows(tmp_path: Path, synthetic_dataset: Dataset) -> None:
    settings = Settings(out_dir=tmp_path / "out", refresh_inbox=tmp_path / "inbox", model="yoy_scaled",
                        horizon=8, backtest_windows=2, backtest_step=8)
    frame = synthetic_dataset.frame
    cut = frame[WEEK].max() - pd.Timedelta(weeks=2)
    run_job(settings, Dataset.from_frame(frame[frame[WEEK] <= cut], source="head"))
    settings.refresh_inbox.mkdir()
    for week in sorted(frame.loc[frame[WEEK] > cut, WEEK].unique()):
        _write_week(frame[frame[WEEK] == week], settings.refresh_inbox / f"week_{pd.Timestamp(week).date()}.csv")
    assert len(inbox_files(settings)) == 2

    flows = build_flows(settings)
    with prefect_testing.prefect_test_harness(server_startup_timeout=60):
        weeks = flows["weekly_refresh"](retrain=False)
        assert [w["as_of"] for w in weeks] == [str(w.date()) for w in sorted(frame.loc[frame[WEEK] > cut, WEEK].unique())]
        assert all(w["model_version"] == "1" for w in weeks)
        assert inbox_files(settings) == [] and len(list((settings.refresh_inbox / "done").iterdir())) == 2
        retrained = flows["retrain"](trigger="manual")
    assert retrained["promoted"] and retrained["champion_version"] == "2"
    assert Registry(settings).champion().trained_to == str(frame[WEEK].max().date())
