"""The canonical frame every later layer uses, named once.

A *week* is the Friday that ends a Saturday-to-Friday retail week, as in the Walmart
files (the Thanksgiving week of 2010 is dated 2010-11-26). One row per series and week.

Column roles:
- keys: ``store`` and, for department data, ``dept``;
- ``week`` (datetime64, a Friday) and ``sales`` (float; NaN only for future rows);
- known-future covariates (planned, usable for future weeks): ``is_holiday``, ``markdown1..5``;
- past-only covariates (observed, usable only as known at the forecast origin):
  ``temperature``, ``fuel_price``, ``cpi``, ``unemployment``;
- static attributes: ``store_type``, ``store_size``.

Where rows came from: readers add a ``source_row`` column (the 1-based line in the file,
header = line 1; for Parquet the record number + 1, as if it had a header). ``Dataset``
takes it out of the frame into ``Dataset.source_rows`` (aligned with the sorted frame), so
models never see it and the quality gate can still point at file lines.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa

STORE = "store"
DEPT = "dept"
WEEK = "week"
TARGET = "sales"
HOLIDAY = "is_holiday"
MARKDOWNS = tuple(f"markdown{i}" for i in range(1, 6))
KNOWN_FUTURE = (HOLIDAY, *MARKDOWNS)
PAST_ONLY = ("temperature", "fuel_price", "cpi", "unemployment")
STATIC = ("store_type", "store_size")
COVARIATES = (*KNOWN_FUTURE, *PAST_ONLY, *STATIC)
SOURCE_ROW = "source_row"
#: canonical column order: keys, week, target, then covariates in role order
CANONICAL_ORDER = (STORE, DEPT, WEEK, TARGET, *COVARIATES)

Level = Literal["store", "dept"]


def series_keys(frame_or_level: pd.DataFrame | str) -> list[str]:
    """Key columns of a canonical frame (or of a level name)."""
    if isinstance(frame_or_level, str):
        return [STORE, DEPT] if frame_or_level == "dept" else [STORE]
    return [STORE, DEPT] if DEPT in frame_or_level.columns else [STORE]


def _is_friday(week: pd.Series) -> pd.Series:
    return week.dt.dayofweek == 4


def canonical_schema(level: Level, *, allow_future: bool = False) -> pa.DataFrameSchema:
    """The declarative schema of a canonical frame at ``level``.

    ``allow_future`` admits rows with missing sales (forecast scaffolds).
    """
    columns: dict[str, pa.Column] = {
        STORE: pa.Column("int64", pa.Check.ge(1)),
        WEEK: pa.Column("datetime64[ns]", pa.Check(_is_friday, error="week must be a Friday")),
        TARGET: pa.Column("float64", pa.Check(lambda s: ~s.isin([float("inf"), float("-inf")]), error="sales must be finite"), nullable=allow_future),
        HOLIDAY: pa.Column("bool"),
    }
    if level == "dept":
        columns[DEPT] = pa.Column("int64", pa.Check.ge(0))
    for name in (*MARKDOWNS, *PAST_ONLY, "store_size"):
        columns[name] = pa.Column("float64", nullable=True, required=False)
    columns["store_type"] = pa.Column("object", nullable=True, required=False)
    return pa.DataFrameSchema(
        columns,
        unique=series_keys(level) + [WEEK],
        strict=False,
        coerce=False,
        name=f"canonical_{level}",
    )


def fingerprint(frame: pd.DataFrame) -> str:
    """A stable content hash of a canonical frame (order-insensitive over rows and columns).

    Columns are hashed in name order, each as its raw bytes in series-week order (object
    columns through pandas' row hashes); a frame already in that order is not copied.
    """
    keys = series_keys(frame)
    order = None
    if not is_sorted(frame, [*keys, WEEK]):
        order = np.lexsort([frame[c].to_numpy() for c in reversed([*keys, WEEK])])
    digest = hashlib.sha256()
    for name in sorted(frame.columns):
        values = frame[name].to_numpy()
        if values.dtype == object:
            values = pd.util.hash_pandas_object(frame[name], index=False).to_numpy()
        if order is not None:
            values = values[order]
        digest.update(f"{name}:{values.dtype.str}\0".encode())
        digest.update(np.ascontiguousarray(values).view(np.uint8).tobytes())
    return digest.hexdigest()[:16]


def is_sorted(frame: pd.DataFrame, columns: list[str]) -> bool:
    """Lexicographic order check in a few vectorised passes (no sort, no copy of the frame)."""
    if len(frame) < 2:
        return True
    undecided = np.ones(len(frame) - 1, dtype=bool)  # pairs equal on all columns so far
    for name in columns:
        values = frame[name].to_numpy()
        prev, curr = values[:-1], values[1:]
        if (undecided & (curr < prev)).any():
            return False
        undecided &= curr == prev
    return True


@dataclass(frozen=True)
class Dataset:
    """A canonical frame with where it came from."""

    frame: pd.DataFrame
    level: Level
    source: str
    fingerprint: str = field(default="")
    #: 1-based file line of each frame row (None when the data did not come from a file)
    source_rows: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: str, *, source_rows: np.ndarray | None = None) -> Dataset:
        """Sort by series and week (skipped when already sorted) and keep file lines aside.

        File lines come from ``source_rows`` (aligned with ``frame``) or a ``source_row``
        column, which is taken out of the frame. No copy is made of a sorted frame.
        """
        level: Level = "dept" if DEPT in frame.columns else "store"
        keys = series_keys(level)
        rows = source_rows
        if SOURCE_ROW in frame.columns:
            rows = frame[SOURCE_ROW].to_numpy(dtype="int64")
            frame = frame.drop(columns=SOURCE_ROW)
        if not is_sorted(frame, [*keys, WEEK]):
            order = np.lexsort([frame[c].to_numpy() for c in reversed([*keys, WEEK])])
            frame = frame.take(order)
            rows = None if rows is None else np.asarray(rows)[order]
        if not (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1):
            frame = frame.copy(deep=False)
            frame.index = pd.RangeIndex(len(frame))
        return cls(frame=frame, level=level, source=source, fingerprint=fingerprint(frame), source_rows=rows)

    @property
    def keys(self) -> list[str]:
        return series_keys(self.level)

    @property
    def n_series(self) -> int:
        return int(self.frame.groupby(self.keys).ngroups)

    @property
    def first_week(self) -> pd.Timestamp:
        return pd.Timestamp(self.frame[WEEK].min())

    @property
    def last_week(self) -> pd.Timestamp:
        return pd.Timestamp(self.frame[WEEK].max())
