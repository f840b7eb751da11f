"""Helpers shared by the service tests (imported as ``svc_helpers``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from storecast.data.schema import Dataset
from storecast.errors import NotFoundError, NotTrainedError
from storecast.evaluation.backtest import backtest
from storecast.forecasting.pipeline import ForecastPipeline
from storecast.lifecycle.registry import LoadedModel, ModelVersion
from storecast.models import Forecaster, create_model
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
    return LoadedModel(mv, ForecastPipeline.from_model(model, intervals))


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


class PromoModel(Forecaster):
    """A test model that reads the future frame: mean level, x1.2 on holidays, + half of markdown1."""

    name = "promo_test"
    reads_known_future = True

    def _fit(self, history: pd.DataFrame) -> None:
        self.level_ = history.groupby(self.keys_, as_index=False)["sales"].mean()

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        weeks = pd.DataFrame({"week": self.future_weeks(horizon), "step": range(1, horizon + 1)})
        grid = self.level_.merge(weeks, how="cross")
        if future is not None:
            cols = [c for c in ("is_holiday", "markdown1") if c in future]
            grid = grid.merge(future[[*self.keys_, "week", *cols]], on=[*self.keys_, "week"], how="left")
        holiday = grid["is_holiday"].fillna(False).astype(bool) if "is_holiday" in grid else False
        markdown = grid["markdown1"].fillna(0.0) if "markdown1" in grid else 0.0
        grid["yhat"] = grid["sales"] * (1 + 0.2 * holiday) + 0.5 * markdown
        return grid

    def _save_state(self, folder: Path) -> dict[str, object]:
        return {}

    def _load_state(self, folder: Path, state: dict[str, object]) -> None:
        return None


def promo_champion(dataset: Dataset, version: str = "7") -> LoadedModel:
    intervals = ConformalIntervals(pd.DataFrame(
        {"step": [1], "lo_80": [-0.1], "hi_80": [0.1], "lo_95": [-0.2], "hi_95": [0.2]}))
    spec = replace(dataset.spec, known_future=("is_holiday", "markdown1"))
    model = PromoModel().fit(dataset.frame, spec)
    mv = ModelVersion(version=version, model_name=PromoModel.name, run_id=f"run-{version}", metrics={"mape": 5.0},
                      data_fingerprint=dataset.fingerprint, created_at="", is_champion=True)
    return LoadedModel(mv, ForecastPipeline.from_model(model, intervals))
