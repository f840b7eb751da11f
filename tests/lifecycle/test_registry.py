"""The MLflow registry: register, champion, promote, rollback, load gives the same predictions."""

from __future__ import annotations

import pandas as pd
import pytest

from storecast.config import Settings
from storecast.data.schema import Dataset
from storecast.errors import NotFoundError, NotTrainedError, UsageError
from storecast.lifecycle.registry import Registry
from storecast.models import create_model
from storecast.models.intervals import ConformalIntervals


def _fit(dataset: Dataset, name: str = "yoy_scaled"):
    model = create_model(name, seed=1).fit(dataset.frame)
    resid = pd.DataFrame({"step": [1, 1, 2, 2], "y": [100.0, 110.0, 90.0, 120.0], "yhat": [105.0, 100.0, 100.0, 100.0]})
    return model, ConformalIntervals.from_residuals(resid)


def test_register_promote_rollback_and_load(settings: Settings, synthetic_dataset: Dataset) -> None:
    reg = Registry(settings)
    assert reg.versions() == []
    assert reg.champion() is None
    with pytest.raises(NotTrainedError):
        reg.load()

    model, intervals = _fit(synthetic_dataset)
    v1 = reg.register(model, intervals=intervals, metrics={"mape": 5.0, "wmape": float("nan")},
                      params={"horizon": 13}, data_fingerprint=synthetic_dataset.fingerprint, run_id="run-1")
    assert (v1.version, v1.model_name, v1.run_id, v1.is_champion) == ("1", "yoy_scaled", "run-1", False)
    assert v1.metrics["mape"] == 5.0 and pd.isna(v1.metrics["wmape"])
    assert v1.data_fingerprint == synthetic_dataset.fingerprint

    assert reg.promote("1").is_champion
    naive, _ = _fit(synthetic_dataset, "seasonal_naive")
    v2 = reg.register(naive, intervals=intervals, metrics={"mape": 4.0}, params={},
                      data_fingerprint="abc", run_id="run-2")
    assert reg.champion().version == "1"
    reg.promote(v2.version)
    assert reg.champion().version == "2"
    assert [v.is_champion for v in reg.versions()] == [False, True]

    back = reg.rollback()
    assert back.version == "1" and back.is_champion
    assert Registry(settings).champion().version == "1"  # the alias is persistent, not in memory
    with pytest.raises(UsageError, match="no earlier champion"):
        reg.rollback()

    loaded = reg.load()
    assert loaded.version.version == "1" and loaded.model.name == "yoy_scaled"
    pd.testing.assert_frame_equal(loaded.model.predict(13), model.predict(13))
    pd.testing.assert_frame_equal(loaded.intervals.table, intervals.table)
    assert reg.load("2").model.name == "seasonal_naive"

    with pytest.raises(NotFoundError, match="registered versions: 1, 2"):
        reg.promote("9")
    # Artifacts live next to the sqlite database, not in the working directory.
    assert (settings.out_dir / "mlartifacts").is_dir()
