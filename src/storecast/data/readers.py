"""Readers: every supported input becomes a canonical ``Dataset``, or a clear error.

Formats, detected from the header (``--format`` forces one):
- ``walmart``: the seed's ``Walmart.csv`` (``Store, Date, Weekly_Sales, Holiday_Flag, ...``);
- ``recruiting``: the competition folder (``train.csv`` plus, when present beside it,
  ``features.csv`` and ``stores.csv``) -> store x dept series with markdowns, type, size;
- ``generic``: any retailer's CSV or Parquet under the data declaration
  (``settings.data``: ``--keys --date --target ...``, see ``data.declared``); a declared
  ``keys`` selects it.

Never guess: columns are matched by name (any order, case and surrounding spaces ignored),
BOM and CR/CRLF/LF line endings are fine, ``NA``/empty cells are missing values; but a
wrong delimiter, text or thousands separators in numbers, a holiday flag other than
0/1/true/false, and dates whose format is mixed or ambiguous are errors naming the file,
the line and the problem (``data.parsing`` does the reading).

``read_history`` raises ``DataError``; ``load`` reads and validates and turns data
problems into a ``QualityReport`` (a missing path still raises).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from storecast.config import Settings
from storecast.data.parsing import (
    DATE_FORMATS,
    Columns,
    DateFormatError,
    ReadFailure,
    _join,
    _parquet_header,
    _read_file,
    _sniff_header,
    detect_date_format,
    parse_dates,
)
from storecast.data.quality import Issue, QualityReport, validate
from storecast.data.schema import (
    CANONICAL_ORDER,
    DEPT,
    HOLIDAY,
    SOURCE_ROW,
    STORE,
    TARGET,
    WEEK,
    Dataset,
)
from storecast.errors import DataError

__all__ = [
    "DATE_FORMATS", "DateFormatError", "ReadFailure", "detect_date_format", "detect_format", "load",
    "parse_dates", "read_history",
]

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
TRAIN_MAP = {"Store": STORE, "Dept": DEPT, "Date": WEEK, "Weekly_Sales": TARGET, "IsHoliday": HOLIDAY}
FEATURES_MAP = {
    "Store": STORE,
    "Date": WEEK,
    "Temperature": "temperature",
    "Fuel_Price": "fuel_price",
    **{f"MarkDown{i}": f"markdown{i}" for i in range(1, 6)},
    "CPI": "cpi",
    "Unemployment": "unemployment",
}
STORES_MAP = {"Store": STORE, "Type": "store_type", "Size": "store_size"}
def _frame(cols: Columns) -> pd.DataFrame:
    """Canonical column order; the arrays become the frame's columns without copying."""
    order = [c for c in CANONICAL_ORDER if c in cols]
    return pd.DataFrame({c: cols[c] for c in order}, copy=False)


# ---- formats -------------------------------------------------------------------------------------


def _header_of(path: Path) -> list[str]:
    if path.suffix.lower() in {".parquet", ".pq"}:
        return _parquet_header(path, str(path))
    return _sniff_header(path)


def detect_format(path: Path, settings: Settings) -> str:
    """``walmart``, ``recruiting`` or ``generic`` from the header (a folder is ``recruiting``)."""
    if path.is_dir():
        return "recruiting"
    names = {n.strip().lower() for n in _header_of(path)}
    if {"store", "dept", "date", "weekly_sales"} <= names:
        return "recruiting"
    if {"store", "date", "weekly_sales", "holiday_flag"} <= names:
        return "walmart"
    raise ReadFailure([Issue(
        "format", "error",
        f"cannot tell the format from the header ({', '.join(sorted(names))}); expected Walmart.csv columns "
        "(Store, Date, Weekly_Sales, Holiday_Flag, ...), the competition's train.csv (Store, Dept, Date, "
        "Weekly_Sales, IsHoliday), or declare the data: --keys COLS --date COL --target COL "
        "(or a [data] table in storecast.toml)",
        [1], file=str(path),
    )], str(path))


def _read_walmart(path: Path) -> tuple[Columns, list[Issue]]:
    return _read_file(path, WALMART_MAP, ["Store", "Date", "Weekly_Sales", "Holiday_Flag"])


def _read_recruiting(path: Path) -> tuple[Columns, list[Issue], str]:
    folder = path if path.is_dir() else path.parent
    train = path if path.is_file() else folder / "train.csv"
    if not train.is_file():
        raise DataError("no train.csv in this folder (the competition format needs train.csv, "
                        "and reads features.csv and stores.csv beside it)", path=str(folder))
    cols, notes = _read_file(train, TRAIN_MAP, list(TRAIN_MAP))
    features, stores = folder / "features.csv", folder / "stores.csv"
    if features.is_file():
        feats, more = _read_file(features, FEATURES_MAP, ["Store", "Date"], ignore=["IsHoliday"])
        notes += more
        _join(cols, feats, [STORE, WEEK], str(features), "store-weeks in features.csv")
    else:
        notes.append(Issue("missing_columns", "warning", f"{features.name} not found beside {train.name}: no weather, "
                           "fuel, CPI, unemployment or markdown covariates", file=str(features)))
    if stores.is_file():
        info, more = _read_file(stores, STORES_MAP, ["Store"])
        notes += more
        _join(cols, info, [STORE], str(stores), "stores in stores.csv")
    else:
        notes.append(Issue("missing_columns", "warning", f"{stores.name} not found beside {train.name}: no store type "
                           "or size", file=str(stores)))
    return cols, notes, str(folder if path.is_dir() else train)


def _read(path: Path, settings: Settings, fmt: str | None) -> tuple[Dataset, list[Issue]]:
    if not path.exists():
        raise DataError("file not found", path=str(path))
    fmt = fmt or settings.data_format
    if fmt not in {"auto", "walmart", "recruiting", "generic"}:
        raise DataError(f"unknown format {fmt!r}; use auto, walmart, recruiting or generic", path=str(path))
    if fmt == "auto":
        fmt = "generic" if settings.data.declared else detect_format(path, settings)
    if path.is_dir() and fmt != "recruiting":
        raise DataError(f"a folder can only be read as the competition format, not {fmt}", path=str(path))
    source = str(path)
    if fmt == "generic":
        from storecast.data.declared import read_declared

        dataset = read_declared(path, settings.data)
        return dataset, [i for i in dataset.notes if isinstance(i, Issue)]
    if fmt == "walmart":
        cols, notes = _read_walmart(path)
    else:
        cols, notes, source = _read_recruiting(path)
    return Dataset.from_frame(_frame(cols), source=source, source_rows=cols[SOURCE_ROW]), notes


def read_history(path: Path | str, settings: Settings, fmt: str | None = None) -> Dataset:
    """Read a history file or folder into a canonical ``Dataset``; ``DataError`` if unreadable."""
    dataset, _ = _read(Path(path), settings, fmt)
    return dataset


def load(
    path: Path | str,
    settings: Settings,
    fmt: str | None = None,
    *,
    reference: Dataset | None = None,
    today: dt.date | None = None,
) -> tuple[Dataset | None, QualityReport]:
    """Read and validate without raising for data problems.

    Unreadable content becomes error issues in the report and the dataset is ``None``; a
    path that does not exist (or an unknown format name) still raises ``DataError``.
    """
    path = Path(path)
    try:
        dataset, notes = _read(path, settings, fmt)
    except ReadFailure as exc:
        return None, QualityReport(source=str(path), issues=exc.issues)
    report = validate(dataset, settings, reference=reference, today=today)
    report.issues[:0] = notes
    return dataset, report
