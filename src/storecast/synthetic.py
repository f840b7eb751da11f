"""A seeded synthetic dataset shaped like the seed's Walmart.csv, for the demo and tests.

45 stores (by default), weekly Fridays from 2010-02-05, the same columns, with yearly
seasonality, Thanksgiving and Christmas peaks, a month-start payday lift, per-store level,
trend and noise, and plausible covariates. Nothing here reads or copies the real data.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from storecast.features.holidays import FLAGGED_HOLIDAYS, holiday_week, retail_week

FIRST_WEEK = dt.date(2010, 2, 5)
WALMART_COLUMNS = [
    "Store", "Date", "Weekly_Sales", "Holiday_Flag",
    "Temperature", "Fuel_Price", "CPI", "Unemployment",
]


def _weeks(n_weeks: int, start: dt.date) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start), periods=n_weeks, freq="7D")


def _holiday_weeks(years: range) -> dict[str, set[pd.Timestamp]]:
    out: dict[str, set[pd.Timestamp]] = {}
    for name in (*FLAGGED_HOLIDAYS, "easter"):
        out[name] = {pd.Timestamp(holiday_week(name, y)) for y in years}
    return out


def walmart_like(
    n_stores: int = 45,
    n_weeks: int = 143,
    *,
    seed: int = 7,
    start: dt.date = FIRST_WEEK,
) -> pd.DataFrame:
    """A frame with the seed file's columns (``Date`` still a Timestamp)."""
    if start != retail_week(start):
        raise ValueError(f"start must be a Friday, got {start}")
    rng = np.random.default_rng(seed)
    weeks = _weeks(n_weeks, start)
    years = range(weeks[0].year - 1, weeks[-1].year + 2)
    hol = _holiday_weeks(years)
    thanks = hol["thanksgiving"]
    pre_xmas = {pd.Timestamp(holiday_week("christmas", y)) - pd.Timedelta(days=7) for y in years}

    doy = weeks.dayofyear.to_numpy()
    season = 0.05 * np.sin(2 * np.pi * (doy - 80) / 365.25) + 0.03 * np.cos(4 * np.pi * doy / 365.25)
    # The week holding the 1st-3rd of a month carries paydays and benefit payments.
    month_start = np.array([(w - pd.Timedelta(days=6)).month != w.month or w.day <= 3 for w in weeks])
    effect = np.zeros(n_weeks)
    for i, w in enumerate(weeks):
        if w in thanks:
            effect[i] += 0.38
        if w in pre_xmas:
            effect[i] += 0.55
        if w - pd.Timedelta(days=7) in pre_xmas:  # the week holding Christmas
            effect[i] -= 0.10
        if w - pd.Timedelta(days=14) in pre_xmas:  # the first week of January
            effect[i] -= 0.18
        if w in hol["super_bowl"]:
            effect[i] += 0.04
        if w in hol["labor_day"]:
            effect[i] += 0.02
        if w in hol["easter"]:
            effect[i] += 0.05
        # The run-up to Christmas follows the days before it, not fixed dates.
        if w + pd.Timedelta(days=7) in pre_xmas:
            effect[i] += 0.15
        if w + pd.Timedelta(days=14) in pre_xmas:
            effect[i] += 0.06
    effect += 0.025 * month_start
    holiday_flag = np.array([any(w in hol[h] for h in FLAGGED_HOLIDAYS) for w in weeks], dtype=int)

    t = np.arange(n_weeks) / 52.0
    fuel = 2.6 + 0.5 * t + 0.15 * np.sin(2 * np.pi * doy / 365.25) + rng.normal(0, 0.03, n_weeks).cumsum() * 0.2
    rows = []
    for store in range(1, n_stores + 1):
        level = float(np.exp(rng.normal(np.log(1.0e6), 0.45)))
        trend = rng.normal(0.0, 0.03)  # yearly growth
        amp = rng.uniform(0.6, 1.4)  # how strongly this store feels the season
        noise = rng.normal(0, 0.025, n_weeks)
        log_sales = np.log(level) + trend * t + amp * (season + effect) + noise
        sales = np.round(np.exp(log_sales), 2)
        base_temp = rng.uniform(40, 70)
        temp = base_temp - 22 * np.cos(2 * np.pi * (doy - 15) / 365.25) + rng.normal(0, 5, n_weeks)
        cpi0 = rng.choice([130.0, 210.0])
        cpi = cpi0 * (1 + 0.02 * t) + rng.normal(0, 0.05, n_weeks)
        unemp = np.clip(rng.uniform(5, 10) - 0.4 * t + rng.normal(0, 0.05, n_weeks), 3, 15)
        rows.append(
            pd.DataFrame(
                {
                    "Store": store,
                    "Date": weeks,
                    "Weekly_Sales": sales,
                    "Holiday_Flag": holiday_flag,
                    "Temperature": np.round(temp, 2),
                    "Fuel_Price": np.round(fuel + rng.normal(0, 0.02), 3),
                    "CPI": np.round(cpi, 7),
                    "Unemployment": np.round(unemp, 3),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def write_walmart_csv(path: Path, **kwargs: object) -> Path:
    """Write a synthetic file in the seed's exact format (``dd-mm-yyyy`` dates)."""
    frame = walmart_like(**kwargs)  # type: ignore[arg-type]
    frame["Date"] = frame["Date"].dt.strftime("%d-%m-%Y")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[WALMART_COLUMNS].to_csv(path, index=False)
    return path
