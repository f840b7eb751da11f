"""End-to-end through the CLI: `storecast run` and `storecast demo`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from storecast.cli import app
from storecast.delivery.warehouse.scratch import postgres_reachable, scratch_schema
from storecast.synthetic import write_walmart_csv

PG_URL = os.environ.get("STORECAST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

runner = CliRunner()


def _run(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, args)
    return result.exit_code, result.output


def test_run_writes_the_four_files_and_a_deterministic_csv(tmp_path: Path) -> None:
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=4, n_weeks=130, seed=1)
    for out in ("a", "b"):
        code, output = _run(["-q", "run", "--data", str(data), "--out", str(tmp_path / out)])
        assert code == 0, output
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("walmart_sales_predictions.csv", "forecasts.parquet", "dashboard.html", "run.json"):
        assert (a / name).is_file(), name
    assert (a / "walmart_sales_predictions.csv").read_bytes() == (b / "walmart_sales_predictions.csv").read_bytes()

    csv = pd.read_csv(a / "walmart_sales_predictions.csv")
    assert list(csv.columns) == ["Store", "Date", "Weekly_Sales", "Predicted_Sales"]
    assert len(csv) == 4 * (130 + 13)
    future = csv[csv["Weekly_Sales"].isna()]
    assert len(future) == 4 * 13 and future["Predicted_Sales"].notna().all()
    record = json.loads((a / "run.json").read_text())
    assert {"run_id", "model", "backtest", "timings"} <= record.keys()
    assert record["data"]["fingerprint"]


def test_historical_predictions_are_out_of_sample(tmp_path: Path) -> None:
    """A week's prediction must not change when that week's actual changes."""
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=2, n_weeks=130, seed=2)
    code, out = _run(["-q", "run", "--data", str(data), "--out", str(tmp_path / "o1")])
    assert code == 0, out
    raw = pd.read_csv(data)
    # Inflate the very last actual week; its backtest prediction came from an earlier origin.
    last = raw["Date"] == raw["Date"].iloc[-1]
    raw.loc[last, "Weekly_Sales"] *= 3
    raw.to_csv(tmp_path / "w2.csv", index=False)
    code, out = _run(["-q", "run", "--data", str(tmp_path / "w2.csv"), "--out", str(tmp_path / "o2")])
    assert code == 0, out
    p1 = pd.read_csv(tmp_path / "o1" / "walmart_sales_predictions.csv")
    p2 = pd.read_csv(tmp_path / "o2" / "walmart_sales_predictions.csv")
    hist1 = p1[p1["Weekly_Sales"].notna()]
    hist2 = p2[p2["Weekly_Sales"].notna()]
    last_date = hist1["Date"].max()
    pd.testing.assert_series_equal(
        hist1.loc[hist1["Date"] == last_date, "Predicted_Sales"].reset_index(drop=True),
        hist2.loc[hist2["Date"] == last_date, "Predicted_Sales"].reset_index(drop=True),
    )


def test_missing_file_is_a_clean_exit_2(tmp_path: Path) -> None:
    code, output = _run(["run", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "nope.csv" in output and "Traceback" not in output


@pytest.mark.slow
@pytest.mark.realdata
def test_run_on_the_real_walmart_file(walmart_csv: Path, tmp_path: Path) -> None:
    code, output = _run(["-q", "run", "--data", str(walmart_csv), "--out", str(tmp_path / "o")])
    assert code == 0, output
    csv = pd.read_csv(tmp_path / "o" / "walmart_sales_predictions.csv")
    assert csv["Store"].nunique() == 45


def test_run_on_department_data_reconciles_and_writes_dept_columns(tmp_path: Path) -> None:
    """The competition format end to end: Dept column, coherent store totals, WMAPE reported."""
    from storecast.synthetic import walmart_like

    base = walmart_like(n_stores=3, n_weeks=120, seed=4)
    parts = []
    for dept, share in ((1, 0.5), (2, 0.3), (3, 0.2)):
        part = base[["Store", "Date", "Weekly_Sales", "Holiday_Flag"]].copy()
        part["Dept"] = dept
        part["Weekly_Sales"] = (part["Weekly_Sales"] * share).round(2)
        parts.append(part)
    train = pd.concat(parts)
    train["IsHoliday"] = train["Holiday_Flag"].map({0: "False", 1: "True"})
    train["Date"] = train["Date"].dt.strftime("%Y-%m-%d")
    folder = tmp_path / "recruiting"
    folder.mkdir()
    train[["Store", "Dept", "Date", "Weekly_Sales", "IsHoliday"]].to_csv(folder / "train.csv", index=False)

    result = runner.invoke(app, ["run", "--data", str(folder), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "WMAPE" in result.output
    csv = pd.read_csv(tmp_path / "o" / "walmart_sales_predictions.csv")
    assert list(csv.columns) == ["Store", "Dept", "Date", "Weekly_Sales", "Predicted_Sales"]
    future = csv[csv["Weekly_Sales"].isna()]
    assert len(future) == 3 * 3 * 13
    rich = pd.read_parquet(tmp_path / "o" / "forecasts.parquet")
    assert rich["model"].unique().tolist() == ["pooled_blend"]
    assert (rich["lo_95"] <= rich["yhat"]).all() and (rich["yhat"] <= rich["hi_95"]).all()


@pytest.mark.postgres
def test_run_json_and_summary_never_show_the_warehouse_password(tmp_path: Path) -> None:
    """The server trusts local connections, so any password works and must appear nowhere."""
    import sqlalchemy as sa

    if problem := postgres_reachable(PG_URL):
        pytest.skip(problem)
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=2, n_weeks=110, seed=3)
    password = "Pw-s3cret-run-9"
    with scratch_schema(PG_URL) as url:
        secret_url = sa.make_url(url).set(password=password).render_as_string(hide_password=False)
        code, output = _run(["run", "--data", str(data), "--out", str(tmp_path / "o"), "--warehouse", secret_url])
    assert code == 0, output
    record = (tmp_path / "o" / "run.json").read_text()
    assert password not in output and password not in record
    assert json.loads(record)["warehouse"].startswith("postgresql+psycopg://postgres:***@127.0.0.1:5432/")
