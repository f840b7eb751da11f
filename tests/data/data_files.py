"""Helpers: small seeded input files in every supported format (imported by the data tests)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from storecast.synthetic import WALMART_COLUMNS, walmart_like

N_STORES, N_WEEKS = 3, 30


def seed_frame(n_stores: int = N_STORES, n_weeks: int = N_WEEKS, seed: int = 5) -> pd.DataFrame:
    """Walmart.csv-shaped rows with ``Date`` as dd-mm-yyyy text."""
    frame = walmart_like(n_stores=n_stores, n_weeks=n_weeks, seed=seed)
    frame["Date"] = frame["Date"].dt.strftime("%d-%m-%Y")
    return frame[WALMART_COLUMNS]


def write_lines(path: Path, lines: list[str], newline: str = "\n", bom: bool = False) -> Path:
    data = newline.join(lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode())
    return path


def csv_lines(frame: pd.DataFrame) -> list[str]:
    return frame.to_csv(index=False, lineterminator="\n").rstrip("\n").split("\n")


def write_recruiting(folder: Path, *, stores: int = 2, depts: int = 3, weeks: int = 20,
                     with_extras: bool = True) -> Path:
    """train.csv (ISO dates, True/False), features.csv with NA markdowns, stores.csv with CR endings."""
    folder.mkdir(parents=True, exist_ok=True)
    base = walmart_like(n_stores=stores, n_weeks=weeks, seed=11)
    rows = []
    for dept in range(1, depts + 1):
        part = base[["Store", "Date", "Weekly_Sales", "Holiday_Flag"]].copy()
        part["Dept"] = dept
        part["Weekly_Sales"] = (part["Weekly_Sales"] / (10 * dept)).round(2)
        rows.append(part)
    train = pd.concat(rows).sort_values(["Store", "Dept", "Date"])
    train["IsHoliday"] = train["Holiday_Flag"].map({0: "False", 1: "True"})
    train["Date"] = train["Date"].dt.strftime("%Y-%m-%d")
    train[["Store", "Dept", "Date", "Weekly_Sales", "IsHoliday"]].to_csv(folder / "train.csv", index=False)
    if with_extras:
        feats = base.rename(columns={"Holiday_Flag": "IsHoliday"}).copy()
        feats["Date"] = feats["Date"].dt.strftime("%Y-%m-%d")
        for i in range(1, 6):
            feats[f"MarkDown{i}"] = None
        feats.loc[feats.index[-4:], "MarkDown1"] = 1500.5
        feats["IsHoliday"] = feats["IsHoliday"].map({0: "FALSE", 1: "TRUE"})
        cols = ["Store", "Date", "Temperature", "Fuel_Price", *[f"MarkDown{i}" for i in range(1, 6)],
                "CPI", "Unemployment", "IsHoliday"]
        feats[cols].to_csv(folder / "features.csv", index=False, na_rep="NA")
        lines = ["Store,Type,Size"] + [f"{s},{'AB'[s % 2]},{100000 + s}" for s in range(1, stores + 1)]
        (folder / "stores.csv").write_bytes(("\r".join(lines) + "\r").encode())
    return folder
