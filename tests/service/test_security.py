"""API keys, private reads, CORS, body limit and the one error shape (no stack traces)."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from svc_helpers import KEY, FakeRegistry

from storecast.config import Settings
from storecast.delivery.warehouse import Warehouse
from storecast.errors import ConfigError
from storecast.service.app import create_app


def test_write_endpoints_need_a_key(client: TestClient) -> None:
    for path in ("/retrain", "/ingest"):
        r = client.post(path)
        assert r.status_code == 401, path
        assert r.json() == {"error": "unauthorized",
                            "message": "this endpoint needs an API key in the X-API-Key header"}
        r = client.post(path, headers={"X-API-Key": "not-the-right-key"})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"


def test_reads_are_public_by_default(client: TestClient) -> None:
    assert client.get("/forecast/1").status_code == 200


def test_private_reads_need_a_key(service_settings: Settings, registry: FakeRegistry, warehouse: Warehouse) -> None:
    settings = service_settings.model_copy(update={"private_reads": True})
    with TestClient(create_app(settings, source=registry, warehouse=warehouse, poll=False)) as c:
        assert c.get("/forecast/1").status_code == 401
        assert c.get("/forecast/1", headers={"X-API-Key": "wrong-key-123"}).status_code == 403
        assert c.get("/forecast/1", headers={"X-API-Key": KEY}).status_code == 200
        assert c.get("/metrics").status_code == 401
        assert c.get("/health").status_code == 200  # liveness stays open for orchestrators


def test_private_reads_without_keys_refuses_to_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="STORECAST_API_KEYS"):
        create_app(Settings(out_dir=tmp_path, private_reads=True))


def test_cors_closed_by_default_and_open_when_configured(
    client: TestClient, service_settings: Settings, registry: FakeRegistry, warehouse: Warehouse
) -> None:
    origin = {"Origin": "https://bi.example.com"}
    assert "access-control-allow-origin" not in client.get("/forecast/1", headers=origin).headers
    settings = service_settings.model_copy(update={"cors_origins": ["https://bi.example.com"]})
    with TestClient(create_app(settings, source=registry, warehouse=warehouse, poll=False)) as c:
        r = c.get("/forecast/1", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://bi.example.com"
        other = c.get("/forecast/1", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers


def test_body_over_the_limit_is_413(service_settings: Settings, registry: FakeRegistry, warehouse: Warehouse) -> None:
    settings = service_settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(settings, source=registry, warehouse=warehouse, poll=False)) as c:
        big = {"stores": [1], "scenario": [], "pad": "x" * 5000}
        r = c.post("/predict", json=big)
        assert r.status_code == 413 and r.json()["error"] == "too_large"

        def chunks():  # no Content-Length: the limit applies while streaming
            for _ in range(10):
                yield b"x" * 1000

        r = c.post("/predict", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert c.post("/predict", json={"stores": [1]}).status_code == 200


def test_malformed_json_is_422_in_the_common_shape(client: TestClient) -> None:
    r = client.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


def test_unexpected_errors_are_500_without_a_trace(
    service_settings: Settings, registry: FakeRegistry, warehouse: Warehouse
) -> None:
    app = create_app(service_settings, source=registry, warehouse=warehouse, poll=False)
    boom = APIRouter()

    @boom.get("/boom")
    def _boom() -> None:
        raise RuntimeError("secret internal detail")

    app.include_router(boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500
    assert r.json() == {"error": "internal_error", "message": "internal error; see the service log"}
    assert "secret" not in r.text and "Traceback" not in r.text


def test_no_champion_means_503_and_not_ready(service_settings: Settings, warehouse: Warehouse) -> None:
    with TestClient(create_app(service_settings, source=FakeRegistry(), warehouse=warehouse, poll=False)) as c:
        r = c.get("/forecast/1")
        assert r.status_code == 503 and r.json()["error"] == "not_trained"
        assert "storecast run" in r.json()["message"]
        ready = c.get("/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        assert c.get("/health").status_code == 200


def test_private_reads_cover_the_api_docs(service_settings: Settings, registry: FakeRegistry, warehouse: Warehouse) -> None:
    settings = service_settings.model_copy(update={"private_reads": True})
    with TestClient(create_app(settings, source=registry, warehouse=warehouse, poll=False)) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 401, path
            assert c.get(path, headers={"X-API-Key": "wrong-key-1234567"}).status_code == 403, path
            r = c.get(path, headers={"X-API-Key": KEY})
            assert r.status_code == 200, path
            assert "/forecast/{store}" in r.text, path  # the page carries the schema: it cannot fetch it keyless


def test_public_docs_stay_public(client: TestClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def _operations(spec: dict) -> list[tuple[str, str, set[str]]]:
    return [(method.upper(), path, set(op["responses"])) for path, ops in spec["paths"].items()
            for method, op in ops.items()]


def test_every_status_the_api_answers_is_documented(
    client: TestClient, service_settings: Settings, registry: FakeRegistry, warehouse: Warehouse
) -> None:
    public = _operations(client.get("/openapi.json").json())
    for method, path, codes in public:
        assert {"405", "413", "422"} <= codes, (method, path)
        keyed = path in {"/ingest", "/retrain"}
        assert ({"401", "403"} <= codes) == keyed, (method, path)
    settings = service_settings.model_copy(update={"private_reads": True})
    with TestClient(create_app(settings, source=registry, warehouse=warehouse, poll=False)) as c:
        private = _operations(c.get("/openapi.json", headers={"X-API-Key": KEY}).json())
    for method, path, codes in private:
        assert ({"401", "403"} <= codes) == (path not in {"/health", "/ready"}), (method, path)


def _fuzz(operation, app, headers: dict[str, str], seen: set[int], check_status) -> None:  # type: ignore[no-untyped-def]
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings

    @given(case=operation.as_strategy())
    @hsettings(max_examples=3, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"} | headers
        response = case.call(app=app)
        seen.add(response.status_code)
        case.validate_response(response, checks=[check_status])

    check()


def test_a_fuzzer_sees_no_undocumented_status(
    service_settings: Settings, registry: FakeRegistry, warehouse: Warehouse
) -> None:
    """Without a key, with a wrong one, and with methods the API does not have."""
    import schemathesis
    from schemathesis.specs.openapi.checks import status_code_conformance

    settings = service_settings.model_copy(update={"private_reads": True})
    app = create_app(settings, source=registry, warehouse=warehouse, poll=False)
    with TestClient(app) as c:
        spec = c.get("/openapi.json", headers={"X-API-Key": KEY}).json()
        schema = schemathesis.openapi.from_dict(spec)
        schema.app = app
        seen: set[int] = set()
        for operation in (result.ok() for result in schema.get_all_operations()):
            for headers in ({}, {"X-API-Key": "wrong-key-1234567"}):
                _fuzz(operation, app, headers, seen, status_code_conformance)
            other = c.request("DELETE" if operation.method.upper() != "DELETE" else "PUT",
                              operation.path.replace("{store}", "1"))
            assert other.status_code == 405
            assert "405" in {str(k) for k in operation.definition.raw["responses"]}, seen
        assert {401, 403} <= seen
