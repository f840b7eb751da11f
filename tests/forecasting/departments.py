"""Seeded department-level frames for the model tests: short, gappy and negative series."""

from __future__ import annotations

import numpy as np
import pandas as pd

from storecast.data.readers import WALMART_MAP
from storecast.synthetic import walmart_like


def department_frame(n_stores: int = 2, n_depts: int = 4, n_weeks: int = 120, seed: int = 0) -> pd.DataFrame:
    """Store sales split into departments, plus one new, one gappy and one returns-heavy dept."""
    rng = np.random.default_rng(seed)
    stores = walmart_like(n_stores=n_stores, n_weeks=n_weeks, seed=seed).rename(columns=WALMART_MAP)
    parts = []
    for dept in range(1, n_depts + 1):
        share = rng.uniform(0.05, 0.4)
        part = stores[["store", "week", "sales", "is_holiday"]].copy()
        part["dept"] = dept
        part["sales"] = part["sales"] * share * rng.normal(1, 0.05, len(part))
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    last = frame["week"].max()
    # A department opened 6 weeks before the end, one with gaps, one with returns.
    new = frame[(frame["dept"] == 1) & (frame["week"] > last - pd.Timedelta(weeks=6))].assign(dept=90)
    gappy = frame[(frame["dept"] == 2)].sample(frac=0.7, random_state=seed).assign(dept=91)
    returns = frame[frame["dept"] == 3].assign(dept=92)
    returns["sales"] = rng.normal(0, 200, len(returns))
    frame = pd.concat([frame, new, gappy, returns], ignore_index=True)
    frame["is_holiday"] = frame["is_holiday"].astype(bool)
    frame["store"] = frame["store"].astype("int64")
    frame["dept"] = frame["dept"].astype("int64")
    return frame.sort_values(["store", "dept", "week"]).reset_index(drop=True)
