"""Department data: the API serves the same reconciled forecasts `storecast run` stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from storecast.config import Settings
from storecast.data.schema import Dataset
from storecast.lifecycle.jobs import run_job
from storecast.service.app import create_app
from storecast.synthetic import walmart_like


def _departments() -> Dataset:
    base = walmart_like(n_stores=3, n_weeks=120, seed=8)
    rng = np.random.default_rng(8)
    parts = []
    for dept, share in ((1, 0.55), (2, 0.3), (7, 0.15)):
        part = base[["Store", "Date", "Weekly_Sales", "Holiday_Flag"]].copy()
        part["Dept"] = dept
        # Department noise: the departments' sum and the store model then disagree, so
        # reconciliation moves the forecasts and the test can tell if it was skipped.
        part["Weekly_Sales"] = part["Weekly_Sales"] * share * rng.normal(1, 0.08, len(part))
        parts.append(part)
    frame = pd.concat(parts).rename(
        columns={"Store": "store", "Dept": "dept", "Date": "week", "Weekly_Sales": "sales", "Holiday_Flag": "is_holiday"}
    )
    frame = frame.astype({"store": "int64", "dept": "int64", "sales": "float64", "is_holiday": bool})
    return Dataset.from_frame(frame, source="synthetic-departments")


@pytest.mark.slow
def test_served_department_forecasts_match_the_stored_run(tmp_path: Path) -> None:
    settings = Settings(out_dir=tmp_path / "out", model="calendar_yoy", backtest_windows=2)
    result = run_job(settings, _departments())
    stored = pd.read_parquet(result.files["parquet"]).sort_values(["store", "dept", "step"])

    with TestClient(create_app(settings, poll=False)) as client:
        body = client.get("/forecast/2", params={"dept": 7, "weeks": 13}).json()
    served = pd.DataFrame(body["forecast"])
    expected = stored[(stored["store"] == 2) & (stored["dept"] == 7)]
    assert served["yhat"].round(2).tolist() == expected["yhat"].round(2).tolist()
    assert served["hi_95"].round(2).tolist() == expected["hi_95"].round(2).tolist()
