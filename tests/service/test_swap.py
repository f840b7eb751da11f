"""A new champion is served without a restart, with no failed or mixed-version responses."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient
from svc_helpers import FakeRegistry, train

from storecast.config import Settings
from storecast.data.schema import Dataset
from storecast.delivery.warehouse import Warehouse
from storecast.lifecycle.registry import LoadedModel
from storecast.service.app import create_app


def _yhat(loaded: LoadedModel, store: int) -> list[float]:
    fc = loaded.model.predict(13)
    return [round(v, 2) for v in fc.loc[fc["store"] == store, "yhat"]]


def test_new_champion_is_swapped_in_under_load(
    service_settings: Settings, registry: FakeRegistry, champion: LoadedModel,
    synthetic_dataset: Dataset, warehouse: Warehouse,
) -> None:
    challenger = train(synthetic_dataset, "seasonal_naive", version="2")
    expected = {"1": _yhat(champion, 1), "2": _yhat(challenger, 1)}
    assert expected["1"] != expected["2"]
    settings = service_settings.model_copy(update={"champion_poll_seconds": 0.1})
    seen: list[tuple[int, str, list[float], int]] = []
    stop = threading.Event()

    with TestClient(create_app(settings, source=registry, warehouse=warehouse)) as c:
        def hammer() -> None:
            while not stop.is_set():
                r = c.get("/forecast/1")
                body = r.json()
                seen.append((r.status_code, body.get("model_version", ""), [p["yhat"] for p in body["forecast"]],
                             threading.get_ident()))

        workers = [threading.Thread(target=hammer) for _ in range(3)]
        for w in workers:
            w.start()
        time.sleep(0.3)
        registry.publish(challenger)  # what promote does: the alias moves
        deadline = time.time() + 10
        while time.time() < deadline and not (seen and seen[-1][1] == "2"):
            time.sleep(0.05)
        time.sleep(0.2)
        stop.set()
        for w in workers:
            w.join()
        assert c.get("/models").json()["serving"] == "2"

    assert all(status == 200 for status, _, _, _ in seen)
    versions = [v for _, v, _, _ in seen]
    assert "1" in versions and versions[-1] == "2"
    # every response is internally consistent: its values belong to the version it names
    assert all(values == expected[version] for _, version, values, _ in seen)
    # for each client, once version 2 is served, version 1 never comes back
    for thread in {t for *_, t in seen}:
        mine = [v for _, v, _, t in seen if t == thread]
        if "2" in mine:
            assert set(mine[mine.index("2"):]) == {"2"}


def test_a_failing_load_keeps_serving_the_old_champion(
    client: TestClient, registry: FakeRegistry, synthetic_dataset: Dataset
) -> None:
    broken = train(synthetic_dataset, "seasonal_naive", version="3")
    registry.publish(broken)

    def fail(version: str | None = None) -> LoadedModel:
        raise OSError("artifact store unreachable")

    registry.load = fail  # type: ignore[method-assign]
    state = client.app.state.service  # type: ignore[attr-defined]
    assert state.try_refresh() is False
    assert "artifact store unreachable" in state.last_error
    r = client.get("/forecast/1")
    assert r.status_code == 200 and r.json()["model_version"] == "1"


def test_registry_stamp_changes_only_when_the_registry_file_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from storecast.service.app import registry_stamp

    settings = Settings(out_dir=tmp_path)
    stamp = registry_stamp(settings)
    assert stamp is not None and stamp() is None  # no registry yet
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"x")
    first = stamp()
    assert first is not None and stamp() == first
    db.write_bytes(b"xy")
    assert stamp() != first
    assert registry_stamp(Settings(out_dir=tmp_path, mlflow_tracking_uri="http://mlflow:5000")) is None
