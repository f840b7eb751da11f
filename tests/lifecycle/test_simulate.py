"""The week-by-week replay: fast on synthetic data, and the real-data acceptance run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from storecast.config import Settings
from storecast.lifecycle.simulate import simulate
from storecast.synthetic import write_walmart_csv


def test_simulate_replays_weeks_and_retrains_on_schedule(tmp_path: Path) -> None:
    data = write_walmart_csv(tmp_path / "walmart.csv", n_stores=5, n_weeks=121, seed=11)
    settings = Settings(out_dir=tmp_path / "out", model="yoy_scaled", horizon=8, backtest_windows=2, backtest_step=8)
    result = simulate(settings, data, dt.date(2012, 3, 30), out=tmp_path / "sim")
    assert len(result.weekly) == 8 and result.end == "2012-05-25"
    # Every replayed week has a one-week-ahead forecast from the previous week's refresh.
    assert (result.weekly["n"] == 5).all() and result.weekly["realized_mape"].notna().all()
    assert {"schedule"} <= {r["trigger"] for r in result.retrains}
    # A scheduled retrain comes once 4 new weeks (retrain_every_weeks) have arrived since the
    # previous training, whatever triggered it - not at every turn of a calendar month.
    trained = pd.Timestamp("2012-03-30")
    for retrain in result.retrains:
        week = pd.Timestamp(retrain["week"])
        if retrain["trigger"] == "schedule":
            assert (week - trained).days // 7 == 4, result.retrains
        trained = week
    assert 0 < result.realized_mape <= 1.5 * result.promised_mape
    payload = json.loads((tmp_path / "sim" / "simulation.json").read_text())
    assert payload["realized_mape"] == pytest.approx(result.realized_mape)
    assert "plotly" in (tmp_path / "sim" / "simulation.html").read_text()[:5000].lower()
    assert not (tmp_path / "out").exists()  # the replay never writes into the real outputs


@pytest.mark.slow
@pytest.mark.realdata
def test_simulate_on_walmart_keeps_the_backtest_promise(walmart_csv: Path, tmp_path: Path) -> None:
    result = simulate(Settings(out_dir=tmp_path / "out"), walmart_csv, dt.date(2011, 4, 29))
    assert result.realized_mape <= result.promised_mape
    assert result.seconds < 300


def test_retraining_policy_counts_new_weeks_not_calendar_months() -> None:
    from storecast.lifecycle.retrain import retraining_due

    trained = pd.Timestamp("2011-07-29")  # a drift retrain at a month's end
    assert not retraining_due(pd.Timestamp("2011-08-05"), trained).due  # one week on, a new month
    due = retraining_due(pd.Timestamp("2011-08-26"), trained)
    assert due.due and due.trigger == "schedule" and "4 new weeks" in due.reason
    assert retraining_due(pd.Timestamp("2011-08-12"), trained, every_weeks=2).due
    assert retraining_due(pd.Timestamp("2011-08-05"), trained, ["psi:cpi"]).trigger == "drift"
    assert retraining_due(pd.Timestamp("2011-08-05"), None).trigger == "initial"
    assert retraining_due(pd.Timestamp("2011-08-05"), trained, manual=True).trigger == "manual"
