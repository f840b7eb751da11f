"""The service and the weekly jobs share the embedded DuckDB warehouse (issue 13, failure 2).

DuckDB lets one process write a file or several read it, never both: the service opens the
file read-only, only to refresh what it serves after a job changed it, and the jobs wait
for their turn instead of failing with "Could not set lock".
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from svc_helpers import KEY, FakeRegistry
from typer.testing import CliRunner

from storecast.cli import app as cli
from storecast.config import Settings
from storecast.data.schema import Dataset
from storecast.delivery.warehouse import RunRecord, Warehouse
from storecast.service.app import create_app
from storecast.synthetic import write_walmart_csv

STORECAST = Path(sys.executable).with_name("storecast")


def _write_from_another_process(path: Path, sql: str = "SELECT 1") -> subprocess.CompletedProcess[str]:
    code = f"import duckdb; c = duckdb.connect({str(path)!r}); c.execute({sql!r}); c.close()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_service_holds_no_lock_on_the_duckdb_file(
    tmp_path: Path, registry: FakeRegistry, synthetic_dataset: Dataset
) -> None:
    settings = Settings(out_dir=tmp_path / "out", api_keys=[KEY])
    with Warehouse.from_settings(settings) as wh:
        wh.write_run(RunRecord(run_id="r1", model="yoy_scaled", cutoff=synthetic_dataset.last_week),
                     registry.load().model.predict(4), history=synthetic_dataset)
    db = settings.out_dir / "storecast.duckdb"
    with TestClient(create_app(settings, source=registry, poll=False)) as c:
        assert c.get("/stores").status_code == 200 and c.get("/sales/1").status_code == 200
        assert c.get("/ready").json()["warehouse"] is True
        # A job in another process can write at once: the service holds nothing between requests.
        done = _write_from_another_process(db, "UPDATE sales SET sales = sales + 1 WHERE series_id = 1")
        assert done.returncode == 0, done.stderr
        # ... and the service sees the change afterwards.
        sales = c.get("/sales/1?weeks=1").json()["sales"][-1]["sales"]
        assert sales == pytest.approx(float(synthetic_dataset.frame.query("store == 1")["sales"].iloc[-1]) + 1, abs=0.01)
        # While a writer holds the file, reads answer from what the service already read.
        code = f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('holding', flush=True); time.sleep(4)"
        holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        try:
            started = time.monotonic()
            assert c.get("/sales/1?weeks=1").status_code == 200
            assert c.get("/ready").status_code == 200
            assert time.monotonic() - started < 3
        finally:
            holder.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_runs_while_the_weekly_jobs_use_the_same_duckdb_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    data = write_walmart_csv(tmp_path / "walmart.csv", n_stores=3, n_weeks=130, seed=5)
    frame = pd.read_csv(data)
    dates = pd.to_datetime(frame["Date"], format="%d-%m-%Y")
    head, tail = frame[dates <= dates.max() - pd.Timedelta(weeks=2)], frame[dates > dates.max() - pd.Timedelta(weeks=2)]
    head.to_csv(tmp_path / "head.csv", index=False)
    last = dates[dates > dates.max() - pd.Timedelta(weeks=2)]
    tail[last == last.min()].to_csv(tmp_path / "week1.csv", index=False)
    tail[last == last.max()].to_csv(tmp_path / "week2.csv", index=False)
    for key, value in {"MODEL": "yoy_scaled", "BACKTEST_WINDOWS": "2", "HORIZON": "8", "BACKTEST_STEP": "8",
                       "API_KEYS": KEY, "WAREHOUSE_LOCK_TIMEOUT": "60"}.items():
        monkeypatch.setenv(f"STORECAST_{key}", value)
    runner = CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, f"{args}: {result.output}"
        return result.output

    ok("-q", "run", "--data", str(tmp_path / "head.csv"), "--out", str(out))
    port = _free_port()
    server = subprocess.Popen([str(STORECAST), "-q", "serve", "--out", str(out), "--port", str(port)],
                              cwd=tmp_path, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    failures: list[str] = []
    stop = threading.Event()

    def keep_reading() -> None:  # a dashboard polling the service throughout
        while not stop.is_set():
            for path in ("/stores", "/sales/1", "/accuracy", "/ready"):
                try:
                    r = httpx.get(base + path, timeout=30)
                    if r.status_code != 200:
                        failures.append(f"{path}: {r.status_code} {r.text[:200]}")
                except httpx.TransportError as exc:
                    failures.append(f"{path}: {exc}")
            time.sleep(0.05)

    try:
        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.time() > deadline:
                pytest.fail(f"serve did not start: {server.stdout.read().decode() if server.stdout else ''}")
            time.sleep(0.3)
        reader = threading.Thread(target=keep_reading, daemon=True)
        reader.start()
        ok("ingest", "--data", str(tmp_path / "week1.csv"), "--warehouse", f"duckdb:///{out / 'storecast.duckdb'}")
        ok("-q", "refresh", "--data", str(tmp_path / "week2.csv"), "--out", str(out), "--no-retrain")
        trained = json.loads(ok("-q", "train", "--out", str(out), "--json"))
        assert trained["promoted"]
        ok("monitor", "--out", str(out))
        ok("export", "--out", str(tmp_path / "export.csv"), "--warehouse", f"duckdb:///{out / 'storecast.duckdb'}")
        # The service serves the new champion and the new weeks.
        deadline = time.time() + 60
        while httpx.get(f"{base}/models", timeout=10).json()["serving"] != trained["champion_version"]:
            assert time.time() < deadline, "the service never picked up the new champion"
            time.sleep(0.5)
        weeks = {s["last_actual_week"] for s in httpx.get(f"{base}/stores", timeout=10).json()["stores"]}
        assert weeks == {str(dates.max().date())}
        stop.set()
        reader.join(timeout=60)
        assert failures == []
        # A second service on the same port is one clean line, not a traceback.
        second = subprocess.run([str(STORECAST), "serve", "--out", str(out), "--port", str(port)],
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "Traceback" not in second.stderr + second.stdout
        assert f"{port}" in second.stderr and "in use" in second.stderr
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)


def test_serve_with_an_unreachable_warehouse_is_one_clean_line(tmp_path: Path, registry: FakeRegistry) -> None:
    from storecast.lifecycle.registry import Registry

    settings = Settings(out_dir=tmp_path / "out")
    loaded = registry.load()
    reg = Registry(settings)
    version = reg.register(loaded.model, intervals=loaded.intervals, metrics={"mape": 4.2}, params={},
                           data_fingerprint="x", run_id="r1")
    reg.promote(version.version)
    result = CliRunner().invoke(cli, ["serve", "--out", str(settings.out_dir), "--warehouse",
                                      "postgresql+psycopg://postgres:Pw-s3cret-9@127.0.0.1:5999/db"])
    assert result.exit_code == 2, result.output
    assert "127.0.0.1:5999" in result.output and "Traceback" not in result.output
    assert "Pw-s3cret-9" not in result.output


