"""Read endpoints through the real app: health, stores, forecasts, accuracy, models, dashboard."""

from __future__ import annotations

import io

import pandas as pd
from fastapi.testclient import TestClient
from svc_helpers import cutoff_plus

from storecast.lifecycle.registry import LoadedModel


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": "1", "warehouse": True, "problems": []}


def test_stores_lists_every_store_with_its_last_actual_week(client: TestClient) -> None:
    body = client.get("/stores").json()
    assert body["level"] == "store"
    assert [s["store"] for s in body["stores"]] == [1, 2, 3, 4, 5, 6]
    assert {s["last_actual_week"] for s in body["stores"]} == {"2012-10-26"}


def test_forecast_for_a_store_matches_the_champion(client: TestClient, champion: LoadedModel) -> None:
    body = client.get("/forecast/3", params={"weeks": 5}).json()
    assert body["store"] == 3 and body["weeks"] == 5
    assert body["model_version"] == "1" and body["model"] == "yoy_scaled" and body["run_id"] == "run-1"
    assert body["cutoff"] == cutoff_plus(champion, 0)
    points = body["forecast"]
    assert [p["step"] for p in points] == [1, 2, 3, 4, 5]
    assert points[0]["week"] == cutoff_plus(champion, 1)
    expected = champion.intervals.apply(champion.model.predict(5))
    expected = expected[expected["store"] == 3].reset_index(drop=True)
    for point, (_, row) in zip(points, expected.iterrows(), strict=True):
        assert abs(point["yhat"] - row["yhat"]) < 0.01
        assert point["lo_95"] <= point["lo_80"] <= point["yhat"] <= point["hi_80"] <= point["hi_95"]


def test_forecast_weeks_default_and_limits(client: TestClient) -> None:
    assert len(client.get("/forecast/1").json()["forecast"]) == 13
    assert len(client.get("/forecast/1?weeks=52").json()["forecast"]) == 52
    for bad in ("0", "53", "abc"):
        r = client.get(f"/forecast/1?weeks={bad}")
        assert r.status_code == 422, bad
        assert r.json()["error"] == "invalid_request" and "weeks" in r.json()["message"]


def test_unknown_store_is_404_naming_the_known_ones(client: TestClient) -> None:
    r = client.get("/forecast/99")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "message": "store 99 has no forecast; known stores: 1..6 (6 stores)"}


def test_dept_on_store_level_data_is_422(client: TestClient) -> None:
    r = client.get("/forecast/1?dept=3")
    assert r.status_code == 422 and "departments" in r.json()["message"]


def test_forecasts_for_a_week_json_and_csv(client: TestClient, champion: LoadedModel) -> None:
    week = cutoff_plus(champion, 2)
    body = client.get("/forecasts", params={"week": week}).json()
    assert body["week"] == week and len(body["forecast"]) == 6
    assert {p["step"] for p in body["forecast"]} == {2}
    r = client.get("/forecasts", params={"week": week}, headers={"Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(r.text))
    assert list(table.columns) == ["store", "week", "step", "yhat", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert table["store"].tolist() == [1, 2, 3, 4, 5, 6]
    json_yhat = [p["yhat"] for p in body["forecast"]]
    assert table["yhat"].round(2).tolist() == json_yhat


def test_forecasts_week_must_be_a_forecast_friday(client: TestClient, champion: LoadedModel) -> None:
    saturday = (pd.Timestamp(cutoff_plus(champion, 1)) + pd.Timedelta(days=1)).date().isoformat()
    r = client.get("/forecasts", params={"week": saturday})
    assert r.status_code == 422 and "Saturday" in r.json()["message"]
    r = client.get("/forecasts", params={"week": "2010-02-05"})
    assert r.status_code == 404 and cutoff_plus(champion, 1) in r.json()["message"]
    r = client.get("/forecasts", params={"week": "2012-13-01"})
    assert r.status_code == 422 and "week" in r.json()["message"]


def test_models_lists_versions_and_champion(client: TestClient) -> None:
    body = client.get("/models").json()
    assert body["champion"] == "1" and body["serving"] == "1"
    assert body["versions"][0]["metrics"] == {"mape": 4.2, "wmape": 4.0, "coverage_80": None}


def test_accuracy_has_backtest_and_realized_per_store(client: TestClient) -> None:
    body = client.get("/accuracy").json()
    assert body["backtest"]["mape"] == 4.2
    assert body["realized_available"] is True
    assert [r["store"] for r in body["realized"]] == [1, 2, 3, 4, 5, 6]
    assert all(r["weeks"] == 13 and r["mape"] > 0 for r in body["realized"])


def test_sales_history_for_the_dashboard(client: TestClient) -> None:
    body = client.get("/sales/2", params={"weeks": 3}).json()
    assert [p["week"] for p in body["sales"]] == ["2012-10-12", "2012-10-19", "2012-10-26"]
    assert client.get("/sales/77").status_code == 404


def test_dashboard_uses_the_local_plotly_bundle(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/plotly.min.js"' in page.text and "cdn" not in page.text.lower()
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000 and b"plotly" in js.content[:2000].lower()
    again = client.get("/static/plotly.min.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304


def test_metrics_count_requests_by_route_and_show_the_model(client: TestClient) -> None:
    for store in (1, 2, 3):
        client.get(f"/forecast/{store}")
    client.get("/forecast/999")
    text = client.get("/metrics").text
    assert 'storecast_requests_total{method="GET",route="/forecast/{store}",status="200"} 3.0' in text
    assert 'storecast_requests_total{method="GET",route="/forecast/{store}",status="404"} 1.0' in text
    assert 'storecast_request_duration_seconds_bucket{le="0.01",method="GET",route="/forecast/{store}"}' in text
    assert 'storecast_model_info{model="yoy_scaled",run_id="run-1",version="1"} 1.0' in text


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/health", "/ready", "/stores", "/forecast/{store}", "/forecasts", "/predict",
                 "/accuracy", "/models", "/dashboard", "/metrics", "/ingest", "/retrain"):
        assert path in paths, path
