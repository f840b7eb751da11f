"""Write endpoints: POST /ingest (the weekly file through the gate) and POST /retrain."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from svc_helpers import KEY

from storecast.config import Settings
from storecast.data.schema import Dataset
from storecast.delivery.warehouse import RunRecord, Warehouse
from storecast.service.app import create_app

AUTH = {"X-API-Key": KEY}


def _next_week_csv(frame: pd.DataFrame) -> bytes:
    """The seed-format rows of the week after the synthetic history (same values, one week on)."""
    last = frame[frame["Date"] == frame["Date"].max()].copy()
    last["Date"] = (last["Date"] + pd.Timedelta(weeks=1)).dt.strftime("%d-%m-%Y")
    return last.to_csv(index=False).encode()


def test_ingest_appends_a_new_week(client: TestClient, synthetic_frame: pd.DataFrame) -> None:
    before = {s["last_actual_week"] for s in client.get("/stores").json()["stores"]}
    files = {"file": ("week.csv", io.BytesIO(_next_week_csv(synthetic_frame)), "text/csv")}
    r = client.post("/ingest", files=files, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "accepted" and body["detail"]["rows_new"] == 6
    after = {s["last_actual_week"] for s in client.get("/stores").json()["stores"]}
    assert before == {"2012-10-26"} and after == {"2012-11-02"}
    again = client.post("/ingest", files={"file": ("week.csv", _next_week_csv(synthetic_frame), "text/csv")},
                        headers=AUTH)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"


def test_corrupt_file_is_422_and_changes_nothing(client: TestClient, warehouse: Warehouse) -> None:
    before = warehouse.read_sales()
    bad = b"Store,Date,Weekly_Sales,Holiday_Flag,Temperature,Fuel_Price,CPI,Unemployment\n1,02-11-2012,lots,0,50,3.5,210,7.5\n"
    r = client.post("/ingest", files={"file": ("bad.csv", bad, "text/csv")}, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["error"] in {"data_error", "quality_gate_failed"} and "bad.csv" in r.json()["message"]
    pd.testing.assert_frame_equal(warehouse.read_sales(), before)


def test_ingest_rejects_unknown_file_types(client: TestClient) -> None:
    r = client.post("/ingest", files={"file": ("week.xlsx", b"PK..", "application/octet-stream")}, headers=AUTH)
    assert r.status_code == 422 and ".xlsx" in r.json()["message"]


@pytest.mark.slow
def test_retrain_promotes_and_the_service_serves_the_new_champion(
    tmp_path, synthetic_dataset: Dataset  # type: ignore[no-untyped-def]
) -> None:
    """Real MLflow registry: no champion (503) -> POST /retrain -> served at once."""
    settings = Settings(out_dir=tmp_path / "out", api_keys=[KEY], backtest_windows=2)
    with Warehouse(settings.resolved_warehouse_url) as wh:
        wh.write_run(RunRecord(run_id="history", model="none", cutoff=synthetic_dataset.last_week),
                     pd.DataFrame({"store": [1], "week": [synthetic_dataset.last_week + pd.Timedelta(weeks=1)],
                                   "step": [1], "yhat": [1.0]}), history=synthetic_dataset)
    with TestClient(create_app(settings, poll=False)) as c:
        assert c.get("/forecast/1").status_code == 503
        r = c.post("/retrain", headers=AUTH)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "promoted" and body["model_version"] == "1"
        forecast = c.get("/forecast/1").json()
        assert forecast["model_version"] == "1" and forecast["cutoff"] == "2012-10-26"
        models = c.get("/models").json()
        assert models["champion"] == "1" and models["serving"] == "1"
