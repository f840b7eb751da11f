"""Helpers shared by the service tests (imported as ``svc_helpers``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from storecast.data.schema import Dataset
from storecast.errors import NotFoundError, NotTrainedError
from storecast.evaluation.backtest import backtest
from storecast.lifecycle.registry import LoadedModel, ModelVersion
from storecast.models import create_model
from storecast.models.intervals import ConformalIntervals

KEY = "test-key-0123456789"


def train(dataset: Dataset, name: str = "yoy_scaled", version: str = "1") -> LoadedModel:
    """Fit ``name`` on the dataset with bands from a short backtest, as a registry would hold it."""
    result = backtest(dataset, [name], horizon=13, windows=2, step=13, seed=0)
    intervals = ConformalIntervals.from_residuals(result.residuals(name))
    model = create_model(name, seed=0).fit(dataset.frame)
    mv = ModelVersion(version=version, model_name=name, run_id=f"run-{version}",
                      metrics={"mape": 4.2, "wmape": 4.0, "coverage_80": float("nan")},
                      data_fingerprint=dataset.fingerprint, created_at="2024-01-01T00:00:00+00:00",
                      is_champion=True)
    return LoadedModel(mv, model, intervals)


@dataclass
class FakeRegistry:
    """The registry's read interface over models held in memory; ``publish`` promotes."""

    models: dict[str, LoadedModel] = field(default_factory=dict)
    champion_version: str | None = None
    loads: int = 0

    def publish(self, loaded: LoadedModel) -> None:
        self.models[loaded.version.version] = loaded
        self.champion_version = loaded.version.version

    def champion(self) -> ModelVersion | None:
        if self.champion_version is None:
            return None
        return self.models[self.champion_version].version

    def load(self, version: str | None = None) -> LoadedModel:
        version = version or self.champion_version
        if version is None:
            raise NotTrainedError("no champion")
        if version not in self.models:
            raise NotFoundError(f"no version {version}")
        self.loads += 1
        return self.models[version]

    def versions(self) -> list[ModelVersion]:
        return [replace(m.version, is_champion=v == self.champion_version) for v, m in self.models.items()]


def cutoff_plus(loaded: LoadedModel, weeks: int) -> str:
    return (pd.Timestamp(loaded.model.last_week_) + pd.Timedelta(weeks=weeks)).date().isoformat()
