"""The week-by-week replay: fast on synthetic data, and the real-data acceptance run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

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
    assert [r["week"] for r in result.retrains if r["trigger"] == "schedule"][:2] == ["2012-04-06", "2012-05-04"]
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
