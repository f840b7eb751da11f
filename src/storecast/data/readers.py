"""Readers: every supported input format becomes a canonical ``Dataset``.

First version: the seed's Walmart.csv and the competition folder. The data layer issue
hardens this (format detection, date formats, corrupt input, generic mapping).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from storecast.config import Settings
from storecast.data.schema import DEPT, HOLIDAY, STORE, TARGET, WEEK, Dataset
from storecast.errors import DataError

WALMART_MAP = {
    "Store": STORE,
    "Date": WEEK,
    "Weekly_Sales": TARGET,
    "Holiday_Flag": HOLIDAY,
    "Temperature": "temperature",
    "Fuel_Price": "fuel_price",
    "CPI": "cpi",
    "Unemployment": "unemployment",
}


def read_history(path: Path | str, settings: Settings, fmt: str | None = None) -> Dataset:
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=str(path))
    fmt = fmt or settings.data_format
    if fmt == "auto":
        fmt = "recruiting" if path.is_dir() or path.name == "train.csv" else "walmart"
    if fmt == "walmart":
        raw = pd.read_csv(path)
        frame = raw.rename(columns=WALMART_MAP)[list(WALMART_MAP.values())]
        frame[WEEK] = pd.to_datetime(frame[WEEK], format="%d-%m-%Y")
        frame[HOLIDAY] = frame[HOLIDAY].astype(bool)
        frame[STORE] = frame[STORE].astype("int64")
        frame[TARGET] = frame[TARGET].astype("float64")
        return Dataset.from_frame(frame, source=str(path))
    folder = path if path.is_dir() else path.parent
    train = pd.read_csv(folder / "train.csv", parse_dates=["Date"])
    frame = train.rename(columns={"Store": STORE, "Dept": DEPT, "Date": WEEK, "Weekly_Sales": TARGET, "IsHoliday": HOLIDAY})
    frame[HOLIDAY] = frame[HOLIDAY].astype(bool)
    frame[TARGET] = frame[TARGET].astype("float64")
    return Dataset.from_frame(frame, source=str(folder))
