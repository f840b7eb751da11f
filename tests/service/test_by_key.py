"""The API on another retailer's data: text keys, Thursday-dated weeks, planned drivers.

Forecasts by key at every level (``GET /forecast?store=2&brand=...``), ``/series``, sales
by key, and what-if scenarios on any declared known-future driver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from svc_helpers import KEY, FakeRegistry

import storecast
from panels import promo_chain
from storecast.config import Settings
from storecast.delivery.warehouse import RunRecord, Warehouse
from storecast.lifecycle.registry import LoadedModel, ModelVersion
from storecast.service.app import create_app

SPEC = storecast.DataSpec(keys=["store", "brand"], date="week_start", target="units", week_label="start",
                          known_future=["deal", "feature", "price"])
BRAND = "Beta 64oz"


@pytest.fixture(scope="module")
def fitted() -> storecast.Forecast:
    return storecast.fit(promo_chain(), SPEC, horizon=13, model="drivers")


@pytest.fixture
def client(fitted: storecast.Forecast, tmp_path: Path) -> Iterator[TestClient]:
    version = ModelVersion(version="1", model_name="drivers", run_id="run-1", metrics={"wmape": 12.0},
                           data_fingerprint=fitted.dataset.fingerprint, created_at="2024-01-01T00:00:00+00:00",
                           is_champion=True)
    registry = FakeRegistry()
    registry.publish(LoadedModel(version, fitted.pipeline))
    settings = Settings(out_dir=tmp_path / "out", api_keys=[KEY])
    wh = Warehouse(settings.resolved_warehouse_url)
    made = fitted.pipeline.predict(13)
    wh.write_run(RunRecord(run_id="run-1", model="drivers", cutoff=fitted.dataset.last_week, horizon=13,
                           level="dept", model_version="1"), made.leaves, history=fitted.dataset, levels=made.levels)
    app = create_app(settings, source=registry, warehouse=wh, poll=False)
    with TestClient(app) as c:
        yield c
    wh.dispose()


def test_forecast_by_key_at_every_level(client: TestClient, fitted: storecast.Forecast) -> None:
    leaf = client.get(f"/forecast?store=2&brand={quote(BRAND)}&weeks=8").json()
    assert leaf["level"] == "store/brand" and leaf["series"] == {"store": 2, "brand": BRAND}
    rows = leaf["forecast"]
    assert len(rows) == 8 and rows[0]["brand"] == BRAND and "q0.9" in rows[0]
    first = (fitted.dataset.last_week + pd.Timedelta(weeks=1)).date().isoformat()
    assert rows[0]["week"] == first and pd.Timestamp(first).day_name() == "Thursday"
    store = client.get("/forecast?store=2&weeks=8").json()
    brands = [client.get(f"/forecast?store=2&brand={quote(b)}&weeks=8").json()["forecast"][0]["yhat"]
              for b in ("Alpha 64oz", BRAND, "Gamma 96oz")]
    assert store["level"] == "store" and store["forecast"][0]["yhat"] == pytest.approx(sum(brands), abs=0.05)
    total = client.get("/forecast").json()
    assert total["level"] == "total" and total["series"] == {} and len(total["forecast"]) == 13


def test_unknown_or_misordered_keys_say_what_exists(client: TestClient) -> None:
    r = client.get("/forecast?store=2&brand=Nope")
    assert r.status_code == 404 and "Alpha 64oz" in r.json()["message"]
    r = client.get(f"/forecast?brand={quote(BRAND)}")
    assert r.status_code == 422 and "top-first" in r.json()["message"]
    r = client.get("/forecast?region=north")
    assert r.status_code == 422 and "store, brand" in r.json()["message"]
    r = client.get("/forecast/99")
    assert r.status_code == 404 and "store 99" in r.json()["message"]


def test_series_lists_keys_levels_and_stored_weeks(client: TestClient) -> None:
    body = client.get("/series?store=3").json()
    assert body["keys"] == ["store", "brand"] and body["levels"] == ["total", "store", "store/brand"]
    assert "Thursday" in body["week"] and body["total"] == 3
    assert [s["brand"] for s in body["series"]] == ["Alpha 64oz", BRAND, "Gamma 96oz"]
    assert all(s["weeks"] == 120 and s["last_week"] == "1992-09-24" for s in body["series"])
    page = client.get("/series?limit=2&offset=1").json()
    assert page["total"] == 15 and len(page["series"]) == 2 and page["series"][0]["brand"] == BRAND


def test_sales_and_week_listing_follow_the_data(client: TestClient, fitted: storecast.Forecast) -> None:
    sales = client.get(f"/sales?store=2&brand={quote(BRAND)}&weeks=3").json()
    assert [p["week"] for p in sales["sales"]] == ["1992-09-10", "1992-09-17", "1992-09-24"]
    week = (fitted.dataset.last_week + pd.Timedelta(weeks=2)).date()
    r = client.get("/forecasts", params={"week": (week + pd.Timedelta(days=1)).isoformat()})
    assert r.status_code == 422 and "Thursday" in r.json()["message"]
    csv = client.get("/forecasts", params={"week": week.isoformat()}, headers={"Accept": "text/csv"}).text
    assert csv.splitlines()[0].startswith("store,brand,week,step,yhat,lo_80")


def test_what_if_on_a_declared_driver(client: TestClient, fitted: storecast.Forecast) -> None:
    week = (fitted.dataset.last_week + pd.Timedelta(weeks=2)).date().isoformat()
    body = client.post("/predict", json={
        "where": {"brand": BRAND, "store": [2, 4]}, "weeks": 4,
        "scenario": [{"week": week, "set": {"deal": 1, "feature": 1.0}}],
    }).json()
    assert body["series"] == 2 and body["ignored_inputs"] == []
    rows = pd.DataFrame(body["forecast"])
    assert set(rows["store"]) == {2, 4} and set(rows["brand"]) == {BRAND}
    moved = rows[rows["week"] == week]
    assert (moved["difference"] > 0).all()  # a deal and a feature ad sell more
    assert (rows.loc[rows["week"] < week, "difference"].abs() < 1e-6).all()  # (later weeks may dip after it)
    cheaper = client.post("/predict", json={"where": {"brand": BRAND}, "scenario": [{"change": {"price": -10}}]}).json()
    assert cheaper["series"] == 5 and cheaper["total_difference"] != 0


def test_what_if_refuses_what_the_data_does_not_have(client: TestClient) -> None:
    r = client.post("/predict", json={"where": {"brand": BRAND}, "scenario": [{"set": {"markdown9": 1}}]})
    assert r.status_code == 422 and "deal, feature, price" in r.json()["message"]
    r = client.post("/predict", json={"where": {"brand": "Nope"}})
    assert r.status_code == 404 and "Alpha 64oz" in r.json()["message"]
    r = client.post("/predict", json={"stores": [2], "scenario": [{"week": "1992-10-02", "set": {"deal": 1}}]})
    assert r.status_code == 422 and "Thursday" in r.json()["message"]
