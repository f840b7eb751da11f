"""POST /predict: what-if scenarios on the champion's known-future inputs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from svc_helpers import FakeRegistry, cutoff_plus, promo_champion

from storecast.config import Settings
from storecast.data.schema import Dataset
from storecast.delivery.warehouse import Warehouse
from storecast.lifecycle.registry import LoadedModel
from storecast.service.app import create_app


@pytest.fixture
def promo(synthetic_dataset: Dataset) -> LoadedModel:
    return promo_champion(synthetic_dataset)


@pytest.fixture
def promo_client(service_settings: Settings, promo: LoadedModel, warehouse: Warehouse) -> Iterator[TestClient]:
    reg = FakeRegistry()
    reg.publish(promo)
    with TestClient(create_app(service_settings, source=reg, warehouse=warehouse, poll=False)) as c:
        yield c


def test_holiday_and_markdown_change_only_the_chosen_store_and_week(
    promo_client: TestClient, promo: LoadedModel
) -> None:
    week = cutoff_plus(promo, 2)
    body = promo_client.post("/predict", json={
        "stores": [2, 4], "weeks": 4,
        "scenario": [{"week": week, "is_holiday": True, "markdown1": 1000.0, "temperature": 20}],
    }).json()
    assert body["model_version"] == "7" and body["weeks"] == 4
    assert body["ignored_inputs"] == ["temperature"]
    points = body["forecast"]
    assert [(p["store"], p["step"]) for p in points] == [(s, k) for s in (2, 4) for k in (1, 2, 3, 4)]
    level = promo.model.level_.set_index("store")["sales"]
    for p in points:
        if p["week"] == week:
            assert p["difference"] == pytest.approx(0.2 * level[p["store"]] + 500, abs=0.02)
            assert p["difference_pct"] > 0
            assert p["lo_80"] == pytest.approx(0.9 * p["scenario"], rel=1e-6)
        else:
            assert p["difference"] == 0 and p["scenario"] == p["baseline"]
    assert body["total_difference"] == pytest.approx(sum(p["difference"] for p in points), abs=0.05)


def test_baseline_matches_get_forecast(promo_client: TestClient) -> None:
    body = promo_client.post("/predict", json={"stores": [3], "weeks": 13}).json()
    forecast = promo_client.get("/forecast/3").json()["forecast"]
    assert [p["baseline"] for p in body["forecast"]] == [p["yhat"] for p in forecast]
    assert all(p["difference"] == 0 for p in body["forecast"])


def test_scenario_week_outside_the_horizon_is_422(promo_client: TestClient, promo: LoadedModel) -> None:
    r = promo_client.post("/predict", json={
        "stores": [1], "weeks": 2, "scenario": [{"week": cutoff_plus(promo, 3), "is_holiday": True}]})
    assert r.status_code == 422
    assert "outside the forecast weeks" in r.json()["message"]


@pytest.mark.parametrize(("payload", "fragment"), [
    ({"stores": []}, "stores"),
    ({"stores": [1, 1]}, "must not repeat"),
    ({"stores": [1], "weeks": 60}, "weeks"),
    ({"stores": [1], "scenario": [{"week": "2012-11-03"}]}, "Saturday"),
    ({"stores": [1], "scenario": [{"week": "2012-11-02", "markdown1": -5}]}, "markdown1"),
    ({"stores": [1], "scenario": [{"week": "2012-11-02", "cpi": "high"}]}, "cpi"),
    ({"stores": [1], "scenario": [{"week": "2012-11-02", "rain": 3}]}, "rain"),
    ({"stores": [1], "scenario": [{"week": "2012-11-02"}, {"week": "2012-11-02"}]}, "only once"),
])
def test_invalid_scenarios_get_a_precise_422(promo_client: TestClient, payload: dict, fragment: str) -> None:
    r = promo_client.post("/predict", json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and fragment in r.json()["message"]


def test_unknown_store_in_scenario_is_404(promo_client: TestClient) -> None:
    r = promo_client.post("/predict", json={"stores": [1, 50]})
    assert r.status_code == 404 and "store 50" in r.json()["message"]
