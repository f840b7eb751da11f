"""`storecast backtest --json`: the issue's shape, baselines beside, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from storecast.cli import app
from storecast.synthetic import write_walmart_csv

runner = CliRunner()


def test_backtest_json_shape(tmp_path: Path) -> None:
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=3, n_weeks=120, seed=4)
    result = runner.invoke(app, ["-q", "backtest", "--data", str(data), "--horizon", "13", "--windows", "2",
                                 "--step", "13", "--model", "calendar_yoy", "--json", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert isinstance(report["model"], str)
    for key in ("mape", "wmape", "wmae"):
        assert isinstance(report[key], float)
    assert [set(w) >= {"cutoff", "mape"} for w in report["windows"]] == [True, True]
    assert {r["model"] for r in report["leaderboard"]} == {"calendar_yoy", "seasonal_naive", "yoy_scaled"}
    assert len(report["stores"]) == 3


def test_backtest_table_and_bad_model(tmp_path: Path) -> None:
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=2, n_weeks=110, seed=4)
    ok = runner.invoke(app, ["backtest", "--data", str(data), "--windows", "1", "--model", "yoy_scaled"])
    assert ok.exit_code == 0, ok.output
    assert "leaderboard" in ok.output and "seasonal_naive" in ok.output
    bad = runner.invoke(app, ["backtest", "--data", str(data), "--model", "nope"])
    assert bad.exit_code == 2 and "unknown model 'nope'" in bad.output and "Traceback" not in bad.output
