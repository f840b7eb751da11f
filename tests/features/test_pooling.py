"""Low-rank pooling across stores: shape, absent weeks, and that it removes shared-free noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storecast.features.pooling import low_rank_smooth


def _panel(n_stores: int = 12, n_weeks: int = 60, noise: float = 0.2, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    season = 1 + 0.5 * np.sin(np.arange(n_weeks) / 5)
    level = rng.uniform(50, 150, n_stores)
    truth = np.outer(level, season)
    observed = truth * (1 + rng.normal(0, noise, truth.shape))
    weeks = pd.date_range("2011-01-07", periods=n_weeks, freq="7D")
    frame = pd.DataFrame(
        {
            "store": np.repeat(np.arange(1, n_stores + 1), n_weeks),
            "dept": 3,
            "week": np.tile(weeks, n_stores),
            "sales": observed.ravel(),
        }
    )
    return frame, truth.ravel()


def test_smoothing_moves_series_toward_the_shared_signal() -> None:
    frame, truth = _panel()
    smoothed = low_rank_smooth(frame, rank=1)
    before = np.abs(frame["sales"].to_numpy() - truth).mean()
    after = np.abs(smoothed["sales"].to_numpy() - truth).mean()
    assert after < 0.6 * before


def test_rows_index_and_absent_weeks_are_kept() -> None:
    frame, _ = _panel(n_stores=5, n_weeks=20)
    frame = frame.drop(index=[3, 4, 30]).sample(frac=1.0, random_state=1)
    frame.loc[frame.index[0], "sales"] = np.nan
    out = low_rank_smooth(frame, rank=2)
    assert out.index.equals(frame.index)
    assert out[["store", "dept", "week"]].equals(frame[["store", "dept", "week"]])
    assert out["sales"].isna().sum() == 1


def test_groups_smaller_than_the_rank_are_left_alone_and_store_level_works() -> None:
    frame, _ = _panel(n_stores=3, n_weeks=10)
    assert np.allclose(low_rank_smooth(frame, rank=5)["sales"], frame["sales"])
    store_level = frame.drop(columns="dept")
    assert len(low_rank_smooth(store_level, rank=1)) == len(store_level)
    with pytest.raises(ValueError, match="rank"):
        low_rank_smooth(frame, rank=0)
