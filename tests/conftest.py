"""Shared fixtures: seeded synthetic data, isolated settings, paths to the real data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from storecast.config import Settings
from storecast.data.schema import Dataset
from storecast.synthetic import walmart_like

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
WALMART_CSV = SHARED_DATA / "walmart" / "Walmart.csv"
RECRUITING_DIR = SHARED_DATA / "walmart-recruiting"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's STORECAST_* variables or storecast.toml."""
    import os

    for key in list(os.environ):
        if key.startswith("STORECAST_"):
            monkeypatch.delenv(key)
    # Worker processes cost ~1.5 s to start; tests that mean them ask for them (--jobs 2).
    monkeypatch.setenv("STORECAST_BACKTEST_JOBS", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(out_dir=tmp_path / "out")


@pytest.fixture(scope="session")
def synthetic_frame() -> pd.DataFrame:
    """Seed-format frame: 6 stores x 143 weeks (``Date`` as Timestamp)."""
    return walmart_like(n_stores=6, n_weeks=143, seed=3)


@pytest.fixture(scope="session")
def synthetic_dataset(synthetic_frame: pd.DataFrame) -> Dataset:
    from storecast.data.readers import WALMART_MAP

    frame = synthetic_frame.rename(columns=WALMART_MAP)
    frame["is_holiday"] = frame["is_holiday"].astype(bool)
    frame["sales"] = frame["sales"].astype("float64")
    frame["store"] = frame["store"].astype("int64")
    return Dataset.from_frame(frame, source="synthetic")


@pytest.fixture
def walmart_csv() -> Path:
    if not WALMART_CSV.is_file():
        pytest.skip(f"real data not present at {WALMART_CSV}")
    return WALMART_CSV


@pytest.fixture
def recruiting_dir() -> Path:
    if not (RECRUITING_DIR / "train.csv").is_file():
        pytest.skip(f"real data not present at {RECRUITING_DIR}")
    return RECRUITING_DIR
