"""One contract, every model in MODELS: shape, determinism, save/load, too-short history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from storecast.data.schema import WEEK, Dataset
from storecast.errors import DataError, InsufficientHistoryError
from storecast.models import MODELS, create_model
from storecast.models.base import Forecaster

HORIZON = 13


@pytest.fixture(scope="module")
def history(synthetic_dataset: Dataset) -> pd.DataFrame:
    frame = synthetic_dataset.frame
    return frame[frame["store"] <= 3].reset_index(drop=True)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_predict_save_load(name: str, history: pd.DataFrame, tmp_path: Path) -> None:
    model = create_model(name, seed=5).fit(history)
    pred = model.predict(HORIZON)
    assert list(pred.columns) == ["store", "week", "step", "yhat"]
    assert len(pred) == 3 * HORIZON
    assert np.isfinite(pred["yhat"]).all()
    assert pred[WEEK].min() == history[WEEK].max() + pd.Timedelta(weeks=1)
    assert sorted(pred["step"].unique()) == list(range(1, HORIZON + 1))

    again = create_model(name, seed=5).fit(history).predict(HORIZON)
    pd.testing.assert_frame_equal(pred, again)

    loaded = Forecaster.load(model.save(tmp_path / name))
    pd.testing.assert_frame_equal(pred, loaded.predict(HORIZON))
    # The series a model knows, without predicting (the service scaffolds what-ifs on them).
    predicted = pred[["store"]].drop_duplicates().reset_index(drop=True)
    pd.testing.assert_frame_equal(model.known_series(), predicted)
    pd.testing.assert_frame_equal(loaded.known_series(), predicted)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_too_short_history_is_a_clear_error(name: str, history: pd.DataFrame) -> None:
    klass = MODELS[name]
    if klass.min_history_weeks <= 1:
        with pytest.raises(DataError, match="empty"):
            klass(seed=0).fit(history.iloc[:0])
        return
    weeks = sorted(history[WEEK].unique())[: klass.min_history_weeks - 1]
    with pytest.raises(InsufficientHistoryError, match=f"{name} needs at least {klass.min_history_weeks} weeks"):
        klass(seed=0).fit(history[history[WEEK].isin(weeks)])


def test_artifact_without_a_series_list_still_knows_its_series(history: pd.DataFrame, tmp_path: Path) -> None:
    import json

    folder = create_model("calendar_yoy").fit(history).save(tmp_path / "old")
    meta = json.loads((folder / "model.json").read_text())
    del meta["series"]  # as saved before the series were recorded
    (folder / "model.json").write_text(json.dumps(meta))
    assert list(Forecaster.load(folder).known_series()["store"]) == [1, 2, 3]
