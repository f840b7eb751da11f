"""The warehouse, the same suite against DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from storecast.data.schema import Dataset
from storecast.delivery.warehouse import (
    RunRecord,
    Warehouse,
    export_run,
    run_predictions_table,
    tables,
)
from storecast.delivery.warehouse import store as store_module
from storecast.delivery.warehouse.scratch import PostgresUnavailable, scratch_url
from storecast.errors import ConfigError, DataError, NotFoundError, WarehouseBusyError

PG_URL = os.environ.get("STORECAST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    try:
        with scratch_url(request.param, tmp_path, PG_URL) as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def wh(warehouse_url: str) -> Iterator[Warehouse]:
    warehouse = Warehouse(warehouse_url)
    yield warehouse
    warehouse.dispose()


def _split(dataset: Dataset, weeks: int) -> tuple[Dataset, pd.DataFrame]:
    """History without its last ``weeks`` weeks, and those weeks."""
    cut = dataset.last_week - pd.Timedelta(weeks=weeks)
    frame = dataset.frame
    return Dataset.from_frame(frame[frame["week"] <= cut], "head"), frame[frame["week"] > cut].reset_index(drop=True)


def _forecast(history: Dataset, horizon: int = 4, scale: float = 1.0) -> pd.DataFrame:
    last = history.frame.groupby("store")["sales"].last()
    rows = []
    for store, level in last.items():
        for step in range(1, horizon + 1):
            yhat = level * scale * (1 + 0.01 * step)
            rows.append({"store": store, "week": history.last_week + pd.Timedelta(weeks=step), "step": step,
                         "yhat": yhat, "lo_80": yhat * 0.9, "hi_80": yhat * 1.1, "lo_95": yhat * 0.8, "hi_95": np.nan})
    return pd.DataFrame(rows)


def _backtest(history: Dataset) -> pd.DataFrame:
    frame = history.frame
    cutoff = history.last_week - pd.Timedelta(weeks=3)
    rows = frame[frame["week"] > cutoff][["store", "week", "sales"]].rename(columns={"sales": "y"})
    rows = rows.assign(cutoff=cutoff, step=((rows["week"] - cutoff).dt.days // 7).astype(int), yhat=rows["y"] * 1.02)
    return rows.reset_index(drop=True)


def _record(history: Dataset, run_id: str = "run-a", **kw: object) -> RunRecord:
    return RunRecord(run_id=run_id, model="seasonal_naive", cutoff=history.last_week, horizon=4,
                     metrics={"mape": 3.5, "wmape": float("nan")}, data_fingerprint=history.fingerprint,
                     data_source=history.source, **kw)  # type: ignore[arg-type]


def _snapshot(wh: Warehouse) -> dict[str, pd.DataFrame]:
    return {name: wh.read_table(name) for name in tables.DATA_TABLES}


def _assert_same(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame], skip: tuple[str, ...] = ()) -> None:
    for name in before:
        if name not in skip:
            pd.testing.assert_frame_equal(before[name], after[name], obj=name)


# --- schema and migrations ---------------------------------------------------------------------
def test_migrations_create_every_table_once(wh: Warehouse, warehouse_url: str) -> None:
    assert wh.schema_version() == tables.LATEST_VERSION
    inspector = sa.inspect(wh.engine)
    assert set(tables.DATA_TABLES) <= set(inspector.get_table_names())
    again = Warehouse(warehouse_url)  # re-opening applies nothing new
    assert len(again.read_table("schema_version")) == len(tables.MIGRATIONS)
    again.dispose()


def test_a_foreign_database_is_refused(warehouse_url: str) -> None:
    engine = sa.create_engine(warehouse_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE sales (x INTEGER)"))
    engine.dispose()
    with pytest.raises(ConfigError, match="no schema_version"):
        Warehouse(warehouse_url)


def test_a_newer_schema_is_refused(wh: Warehouse, warehouse_url: str) -> None:
    with wh.engine.begin() as conn:
        conn.execute(tables.schema_version.insert().values(version=99, description="future", applied_at=store_module.utcnow()))
    with pytest.raises(ConfigError, match="newer than this storecast"):
        Warehouse(warehouse_url)


# --- runs --------------------------------------------------------------------------------------
def test_write_run_round_trips_forecasts_and_metadata(wh: Warehouse, synthetic_dataset: Dataset) -> None:
    forecast = _forecast(synthetic_dataset)
    wh.write_run(_record(synthetic_dataset), forecast, backtest=_backtest(synthetic_dataset))
    assert wh.latest_run_id() == "run-a"
    stored = wh.read_forecasts()
    assert len(stored) == len(forecast)
    merged = stored.merge(forecast, on=["store", "week", "step"])
    assert len(merged) == len(forecast)
    np.testing.assert_allclose(merged["prediction"], merged["yhat"])
    np.testing.assert_allclose(merged["lo_80_x"], merged["lo_80_y"])
    assert merged["hi_95_x"].isna().all() and "dept" not in stored
    assert (stored["cutoff"] == synthetic_dataset.last_week).all()
    backtest = wh.read_forecasts(kind="backtest")
    assert len(backtest) == 6 * 3 and backtest["actual"].notna().all()
    run = wh.read_run("latest")
    assert run["metrics"] == {"mape": 3.5, "wmape": None}
    assert run["n_series"] == 6 and run["n_rows"] == len(forecast) + 18
    assert wh.read_forecasts(store=2, week=forecast["week"].iloc[1])["store"].tolist() == [2]


def test_rewriting_a_run_replaces_its_rows(wh: Warehouse, synthetic_dataset: Dataset) -> None:
    wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset))
    wh.write_run(_record(synthetic_dataset, run_id="run-b"), _forecast(synthetic_dataset))
    wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset, scale=2.0))
    a = wh.read_forecasts("run-a")
    b = wh.read_forecasts("run-b")
    assert len(a) == len(b) == 6 * 4
    np.testing.assert_allclose(a["prediction"], b["prediction"] * 2)
    assert len(wh.read_runs()) == 2


def test_unknown_run_is_not_found(wh: Warehouse, synthetic_dataset: Dataset) -> None:
    with pytest.raises(NotFoundError, match="no forecast runs"):
        wh.read_forecasts()
    wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset))
    with pytest.raises(NotFoundError, match="nope"):
        wh.read_forecasts("nope")
    wh.delete_run("run-a")
    assert wh.latest_run_id() is None


@pytest.mark.parametrize("fail_on", ["forecasts", "fill_actuals"])
def test_a_failure_midway_leaves_the_warehouse_as_it_was(
    wh: Warehouse, synthetic_dataset: Dataset, monkeypatch: pytest.MonkeyPatch, fail_on: str
) -> None:
    head, _ = _split(synthetic_dataset, 4)
    wh.write_run(_record(head), _forecast(head), history=head)
    before = _snapshot(wh)

    if fail_on == "forecasts":
        real = store_module.bulk_insert

        def broken(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
            written = real(conn, table, frame)  # rows reach the database, then the step fails
            if table is tables.forecasts:
                raise RuntimeError("injected failure after the forecast rows were written")
            return written

        monkeypatch.setattr(store_module, "bulk_insert", broken)
    else:
        def broken_fill(self: Warehouse, conn: sa.Connection, where: object) -> None:
            raise RuntimeError("injected failure while filling actuals")

        monkeypatch.setattr(Warehouse, "_fill_actuals", broken_fill)

    with pytest.raises(RuntimeError, match="injected"):
        wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset, scale=3.0), history=synthetic_dataset)
    _assert_same(before, _snapshot(wh))


# --- sales history -----------------------------------------------------------------------------
def test_history_round_trips_exactly(wh: Warehouse, synthetic_dataset: Dataset) -> None:
    wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset), history=synthetic_dataset)
    back = wh.history()
    assert back is not None
    pd.testing.assert_frame_equal(back.frame, synthetic_dataset.frame, check_like=True)
    assert back.fingerprint == synthetic_dataset.fingerprint
    stores = wh.stores()
    assert stores["store"].tolist() == list(range(1, 7))
    assert (stores["last_week"] == synthetic_dataset.last_week).all() and (stores["n_weeks"] == 143).all()
    assert len(wh.read_sales(store=3, since=synthetic_dataset.last_week - pd.Timedelta(weeks=1))) == 2
    # The same history again changes nothing and records no ingest.
    before = _snapshot(wh)
    wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset), history=synthetic_dataset)
    after = _snapshot(wh)
    _assert_same(before, after, skip=("forecast_runs",))


def _ingest(wh: Warehouse, frame: pd.DataFrame, ingest_id: str, allow: bool = False, **kw: object) -> tuple[str, object, str]:
    return wh.ingest_sales(frame, ingest_id=ingest_id, source="test.csv", file_fingerprint=ingest_id,
                           content_fingerprint=None, started_at=store_module.utcnow(), allow_restatement=allow, **kw)  # type: ignore[arg-type]


def test_new_weeks_fill_forecast_actuals_and_errors(wh: Warehouse, synthetic_dataset: Dataset) -> None:
    head, tail = _split(synthetic_dataset, 4)
    wh.write_run(_record(head), _forecast(head), history=head)
    assert wh.read_forecasts()["actual"].isna().all()
    status, merge, _ = _ingest(wh, tail[tail["week"] <= head.last_week + pd.Timedelta(weeks=2)], "i1")
    assert status == "accepted" and merge.new == 12  # type: ignore[attr-defined]
    stored = wh.read_forecasts()
    assert stored["actual"].notna().sum() == 12
    errors = wh.refresh_forecast_errors()
    assert len(errors) == 12
    check = errors.iloc[0]
    assert check["abs_pct_error"] == pytest.approx(abs(check["actual"] - check["prediction"]) / check["actual"] * 100)


def test_restatement_is_refused_then_audited(wh: Warehouse, synthetic_dataset: Dataset) -> None:
    wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset), history=synthetic_dataset)
    restated = synthetic_dataset.frame.tail(3).copy()
    restated.loc[restated.index[-1], "sales"] += 1000.0
    before = _snapshot(wh)
    status, _, message = _ingest(wh, restated, "i-refused")
    assert status == "rejected" and "--allow-restatement" in message
    _assert_same(before, _snapshot(wh), skip=("ingests", "quarantine"))
    quarantined = wh.read_quarantine("i-refused")
    assert quarantined["check"].tolist() == ["restatement"]
    assert "store 6" in quarantined["reason"].iloc[0]

    status, merge, _ = _ingest(wh, restated, "i-allowed", allow=True)
    assert status == "accepted" and merge.restated == 1 and merge.unchanged == 2  # type: ignore[attr-defined]
    audit = wh.read_table("sales_restatements")
    old = float(synthetic_dataset.frame["sales"].iloc[-1])
    assert audit[["old_sales", "new_sales"]].iloc[0].tolist() == pytest.approx([old, old + 1000.0])
    first_ingest = wh.read_ingests()["ingest_id"].iloc[-1]
    assert first_ingest.startswith("run-run-a-") and audit["old_ingest_id"].iloc[0] == first_ingest
    back = wh.history()
    assert back is not None and len(back.frame) == len(synthetic_dataset.frame)
    assert back.frame["sales"].iloc[-1] == pytest.approx(old + 1000.0)
    assert wh.read_sales(store=6)["ingest_id"].value_counts().to_dict() == {first_ingest: 142, "i-allowed": 1}


def test_department_data_and_level_mismatch(wh: Warehouse, synthetic_dataset: Dataset) -> None:
    frame = synthetic_dataset.frame
    dept = pd.concat([frame.assign(dept=d, sales=frame["sales"] / (d + 1)) for d in (1, 7)], ignore_index=True)
    dept = dept.assign(store_type="A", store_size=151315.0)
    history = Dataset.from_frame(dept, "dept")
    forecast = _forecast(synthetic_dataset).assign(dept=1)
    wh.write_run(_record(history, level="dept"), forecast, history=history)
    back = wh.history()
    assert back is not None and back.level == "dept"
    pd.testing.assert_frame_equal(back.frame, history.frame, check_like=True)
    assert len(wh.stores()) == 12
    assert wh.read_forecasts(dept=1)["dept"].eq(1).all()
    with pytest.raises(DataError, match="keyed by store, dept; this data is keyed by store"):
        _ingest(wh, synthetic_dataset.frame, "store-level")


def test_rejected_ingest_writes_only_its_record_and_quarantine(wh: Warehouse, synthetic_dataset: Dataset) -> None:
    head, tail = _split(synthetic_dataset, 2)
    wh.write_run(_record(head), _forecast(head), history=head)
    before = _snapshot(wh)
    bad = pd.DataFrame({"source_row": [3, 5], "check": ["negative_sales", "not_a_number"],
                        "severity": ["error", "error"], "reason": ["sales -5 < 0", "'abc' is not a number"]})
    status, _, _ = _ingest(wh, tail, "i-bad", quarantine=bad, quality={"n_errors": 2, "issues": []})
    assert status == "rejected"
    after = _snapshot(wh)
    _assert_same(before, after, skip=("ingests", "quarantine", "quality_reports"))
    ingest = wh.read_ingests().iloc[0]
    assert ingest["status"] == "rejected" and ingest["rows_rejected"] == 2 and ingest["rows_new"] == 0
    assert wh.read_quarantine("i-bad")["source_row"].tolist() == [3, 5]
    assert wh.read_quality_reports()["n_errors"].tolist() == [2]


# --- monitoring and bulk types -------------------------------------------------------------------
def test_monitoring_rows_round_trip_with_nulls_and_text(wh: Warehouse) -> None:
    rows = pd.DataFrame({
        "check": ["realized_mape", "psi_temperature", "level_shift"],
        "subject": ["chain", "store 12 — Zürich", "store 4 dept 92"],
        "value": [3.2, np.nan, 0.2], "threshold": [4.0, 0.25, None],
        "status": ["ok", "warn", "alert"], "run_id": ["r1", None, "r1"],
        "details": [{"n": 3}, None, "plain"],
    })
    assert wh.write_monitoring(rows) == 3
    back = wh.read_monitoring().sort_values("check", ignore_index=True)
    assert back["subject"].tolist() == ["store 4 dept 92", "store 12 — Zürich", "chain"]
    assert back["value"].isna().tolist() == [False, True, False]
    assert back["threshold"].isna().tolist() == [True, False, False]
    assert back["details"].tolist() == ["plain", None, '{"n": 3}']
    assert len(wh.read_monitoring(check="level_shift")) == 1


def test_forecast_errors_written_elsewhere_replace_by_run_and_week(wh: Warehouse) -> None:
    base = {"run_id": "r1", "store": 1, "dept": None, "step": 1, "actual": 100.0, "prediction": 90.0, "abs_pct_error": 10.0}
    week = pd.Timestamp("2012-11-02")
    wh.write_forecast_errors(pd.DataFrame([{**base, "week": week}]))
    wh.write_forecast_errors(pd.DataFrame([{**base, "week": week, "prediction": 95.0, "abs_pct_error": 5.0}]))
    errors = wh.read_forecast_errors("r1")
    assert errors["prediction"].tolist() == [95.0]


# --- export ------------------------------------------------------------------------------------------
def test_export_rebuilds_the_run_table(wh: Warehouse, synthetic_dataset: Dataset, tmp_path: Path) -> None:
    wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset), backtest=_backtest(synthetic_dataset),
                 history=synthetic_dataset)
    table, keys = run_predictions_table(wh)
    assert keys == ["store"] and len(table) == 6 * (143 + 4)
    assert table["predicted"].notna().sum() == 6 * (3 + 4)
    csv = pd.read_csv(export_run(wh, "latest", "csv", tmp_path / "x.csv"))
    assert list(csv.columns) == ["Store", "Date", "Weekly_Sales", "Predicted_Sales"]
    parquet = pd.read_parquet(export_run(wh, "run-a", "parquet", tmp_path / "x.parquet"))
    assert len(parquet) == 6 * 7 and set(parquet["kind"]) == {"forecast", "backtest"}


# --- sharing the warehouse between processes -------------------------------------------------------
def _hold_duckdb(path: Path, seconds: float, read_only: bool = False) -> subprocess.Popen[str]:
    """Another process holding the DuckDB file open (as `storecast serve` or a job would)."""
    code = (f"import duckdb, time; c = duckdb.connect({str(path)!r}, read_only={read_only}); "
            f"print('holding', flush=True); time.sleep({seconds})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_duckdb_writes_wait_for_another_process_then_succeed(tmp_path: Path, synthetic_dataset: Dataset) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    Warehouse(url).dispose()  # created and migrated
    holder = _hold_duckdb(tmp_path / "w.duckdb", 1.5)
    started = time.monotonic()
    with Warehouse(url, lock_timeout=30) as wh:
        wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset))
        assert wh.latest_run_id() == "run-a"
    assert time.monotonic() - started >= 1.0  # it waited for the holder instead of failing at once
    holder.wait(timeout=30)


def test_a_lock_held_too_long_is_a_clear_error(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    Warehouse(url).dispose()
    holder = _hold_duckdb(tmp_path / "w.duckdb", 20)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseBusyError, match="another process") as info:
            Warehouse(url, lock_timeout=1)
        assert 0.9 <= time.monotonic() - started < 10
        assert "STORECAST_WAREHOUSE_LOCK_TIMEOUT" in info.value.message and info.value.exit_code == 2
    finally:
        holder.kill()
        holder.wait()


def test_the_warehouse_holds_the_duckdb_file_only_while_it_works(tmp_path: Path, synthetic_dataset: Dataset) -> None:
    """Between calls no connection stays open, so another process can write at once."""
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with Warehouse(url) as wh:
        wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset), history=synthetic_dataset)
        assert wh.history() is not None
        other = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(tmp_path / 'w.duckdb')!r}).close()"],
                               capture_output=True, text=True, timeout=60)
        assert other.returncode == 0, other.stderr


def test_read_only_warehouses_share_the_file_and_never_write(tmp_path: Path, synthetic_dataset: Dataset) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with Warehouse(url) as wh:
        wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset), history=synthetic_dataset)
    holder = _hold_duckdb(tmp_path / "w.duckdb", 20, read_only=True)  # another reader, e.g. a second service
    try:
        with Warehouse(url, read_only=True, lock_timeout=5) as ro:
            assert ro.latest_run_id() == "run-a" and len(ro.read_forecasts()) == 24
            with pytest.raises(Exception):  # noqa: B017 - the driver's read-only error
                ro.delete_run("run-a")
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.postgres
def test_postgres_writers_wait_for_the_write_lock(warehouse_url: str, synthetic_dataset: Dataset) -> None:
    if not warehouse_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's write lock")
    with Warehouse(warehouse_url) as wh:
        engine = sa.create_engine(warehouse_url)
        holder = engine.connect()
        tx = holder.begin()
        holder.execute(sa.text(r"SELECT pg_advisory_xact_lock(hashtext(current_schema() || '\:storecast'))"))
        try:
            with pytest.raises(WarehouseBusyError, match="another process"), Warehouse(warehouse_url, lock_timeout=1) as busy:
                busy.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset))
            threading.Timer(1.0, tx.rollback).start()
            wh.write_run(_record(synthetic_dataset), _forecast(synthetic_dataset))  # waits, then writes
            assert wh.latest_run_id() == "run-a"
        finally:
            holder.close()
            engine.dispose()
        with Warehouse(warehouse_url, read_only=True) as ro:
            assert ro.latest_run_id() == "run-a"
            with pytest.raises(Exception, match="read-only"):
                ro.delete_run("run-a")
