"""Ensembles: equal weighting, pooled members, per-level defaults."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from storecast.errors import UsageError
from storecast.models import DEFAULT_MODELS, create_model, resolve_model
from storecast.models.base import Forecaster
from storecast.models.ensemble import Ensemble, PooledBlend


def _history(synthetic_dataset) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return synthetic_dataset.frame


def test_equal_weighting_skips_inner_backtests(synthetic_dataset, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    def boom(self, history):  # type: ignore[no-untyped-def]
        raise AssertionError("equal weighting must not run inner backtests")

    monkeypatch.setattr(Ensemble, "_inner_errors", boom)
    model = Ensemble(members=["calendar_yoy", "seasonal_naive"], weighting="equal").fit(_history(synthetic_dataset))
    assert model.weights_ == {"calendar_yoy": 0.5, "seasonal_naive": 0.5}


def test_pooled_member_sees_smoothed_history(synthetic_dataset) -> None:  # type: ignore[no-untyped-def]
    history = _history(synthetic_dataset)
    plain = Ensemble(members=["seasonal_naive"], weighting="equal").fit(history).predict(4)
    pooled = Ensemble(members=["seasonal_naive"], weighting="equal", denoise={"seasonal_naive": 1}).fit(history).predict(4)
    assert not plain["yhat"].equals(pooled["yhat"])
    # Low-rank pooling keeps the level of each store: forecasts stay close.
    rel = (pooled["yhat"] - plain["yhat"]).abs() / plain["yhat"]
    assert rel.median() < 0.1


def test_pooled_blend_round_trips_its_settings(synthetic_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    history = _history(synthetic_dataset)
    model = PooledBlend(members=["calendar_yoy", "calendar_naive"]).fit(history)
    loaded = Forecaster.load(model.save(tmp_path / "blend"))
    assert isinstance(loaded, PooledBlend)
    assert loaded.denoise == {"calendar_yoy": 10, "calendar_naive": 10}
    assert PooledBlend().members == ["gbm", "calendar_yoy", "calendar_naive"]
    pd.testing.assert_frame_equal(model.predict(13), loaded.predict(13))


def test_bad_weighting_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="weighting"):
        Ensemble(weighting="best")


def test_auto_resolves_per_level() -> None:
    assert resolve_model("auto", "store") == DEFAULT_MODELS["store"]
    assert resolve_model(None, "dept") == DEFAULT_MODELS["dept"] == "pooled_blend"
    assert resolve_model("mstl", "dept") == "mstl"
    assert create_model(resolve_model("auto", "dept")).name == "pooled_blend"
