"""Fixtures for the API: a small trained champion, an in-memory registry, a test client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from svc_helpers import KEY, FakeRegistry, train

from storecast.config import Settings
from storecast.data.schema import Dataset
from storecast.delivery.warehouse import RunRecord, Warehouse
from storecast.lifecycle.registry import LoadedModel
from storecast.models import create_model
from storecast.service.app import create_app


@pytest.fixture(scope="session")
def champion(synthetic_dataset: Dataset) -> LoadedModel:
    return train(synthetic_dataset)


@pytest.fixture
def registry(champion: LoadedModel) -> FakeRegistry:
    reg = FakeRegistry()
    reg.publish(champion)
    return reg


@pytest.fixture
def service_settings(tmp_path: Path) -> Settings:
    return Settings(out_dir=tmp_path / "out", api_keys=[KEY])


@pytest.fixture
def warehouse(service_settings: Settings, synthetic_dataset: Dataset, champion: LoadedModel) -> Iterator[Warehouse]:
    """A real DuckDB warehouse holding the history, the champion's run and an older run
    whose forecast weeks now have actuals (so realized accuracy exists)."""
    wh = Warehouse(service_settings.resolved_warehouse_url)
    frame = synthetic_dataset.frame
    cutoff = pd.Timestamp(champion.model.last_week_)
    forecast = champion.model.predict(13)
    wh.write_run(RunRecord(run_id="run-1", model="yoy_scaled", cutoff=cutoff, horizon=13, model_version="1",
                           metrics={"mape": 4.2}), forecast, history=synthetic_dataset)
    early = frame[frame["week"] <= cutoff - pd.Timedelta(weeks=13)]
    old = create_model("seasonal_naive").fit(early)
    wh.write_run(RunRecord(run_id="run-0", model="seasonal_naive", cutoff=early["week"].max(), horizon=13),
                 old.predict(13))
    wh.refresh_forecast_errors("run-0")
    yield wh
    wh.dispose()


@pytest.fixture
def client(service_settings: Settings, registry: FakeRegistry, warehouse: Warehouse) -> Iterator[TestClient]:
    app = create_app(service_settings, source=registry, warehouse=warehouse, poll=False)
    with TestClient(app) as c:
        yield c
