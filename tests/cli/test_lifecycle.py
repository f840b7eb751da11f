"""The maintenance commands through the CLI: train, models, monitor, refresh, simulate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storecast.cli import app
from storecast.synthetic import write_walmart_csv

runner = CliRunner()


@pytest.fixture
def small_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"MODEL": "yoy_scaled", "HORIZON": "8", "BACKTEST_WINDOWS": "2", "BACKTEST_STEP": "8"}.items():
        monkeypatch.setenv(f"STORECAST_{key}", value)


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_train_models_monitor_and_refresh(tmp_path: Path, small_env: None) -> None:
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=4, n_weeks=121, seed=2)
    out = str(tmp_path / "out")
    first = json.loads(_ok(["-q", "train", "--data", str(data), "--out", out, "--json"]))
    assert first["promoted"] and first["reason"] == "no champion yet"
    second = json.loads(_ok(["-q", "train", "--data", str(data), "--out", out, "--json", "--model", "seasonal_naive"]))
    assert second["version"] == "2" and "seasonal_naive MAPE" in second["reason"]

    listed = json.loads(_ok(["models", "list", "--out", out, "--json"]))
    assert [v["version"] for v in listed] == ["1", "2"]
    champion = next(v["version"] for v in listed if v["is_champion"])
    other = "1" if champion == "2" else "2"
    assert f"version {other}" in _ok(["models", "promote", other, "--out", out])
    assert f"version {champion}" in _ok(["models", "rollback", "--out", out])
    assert "yoy_scaled" in _ok(["models", "available"])

    report = json.loads(_ok(["monitor", "--out", out, "--json"]))
    assert report["champion_version"] == champion and report["checks"]
    assert "monitoring:" in _ok(["refresh", "--out", out, "--no-retrain"])


def test_bad_input_exits_2_without_a_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "promote", "7", "--out", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["simulate", "--data", "x.csv", "--start", "29-04-2011"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    result = runner.invoke(app, ["models", "rollback", "--out", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no earlier champion" in result.output
