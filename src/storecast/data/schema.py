"""The canonical frame every later layer uses, named once.

One row per series and week. A *week* is named by the date the data's ``WeekSpec`` says
(``data.spec``): for the Walmart files the Friday that ends a Saturday-to-Friday retail
week (the Thanksgiving week of 2010 is dated 2010-11-26); for another retailer whatever it
declared (Dominick's: the Thursday that starts a Thursday-to-Wednesday week).

Column roles (``SeriesSpec``):
- keys: the declared key columns, top of the hierarchy first (Walmart: ``store`` and, for
  department data, ``dept``);
- ``week`` (datetime64) and ``sales`` (float; NaN only for future rows);
- known-future covariates (planned, usable for future weeks): Walmart's ``is_holiday``,
  ``markdown1..5``, or another retailer's prices, promotions, events;
- past-only covariates (observed, usable only as known at the forecast origin): Walmart's
  ``temperature``, ``fuel_price``, ``cpi``, ``unemployment``, or customers, weather...;
- static attributes: Walmart's ``store_type``, ``store_size``, or store demographics.

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

from storecast.data.spec import SeriesSpec, legacy_spec

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
    """Key columns of a Walmart-shaped canonical frame (or of a level name)."""
    if isinstance(frame_or_level, str):
        return [STORE, DEPT] if frame_or_level == "dept" else [STORE]
    return [STORE, DEPT] if DEPT in frame_or_level.columns else [STORE]


def canonical_schema(spec: SeriesSpec | Level, *, allow_future: bool = False) -> pa.DataFrameSchema:
    """The declarative schema of a canonical frame under ``spec`` (or a Walmart level name).

    Keys are integers or text as declared; the week falls on the weekday that names the
    data's weeks; ``allow_future`` admits rows with missing sales (forecast scaffolds).
    """
    if isinstance(spec, str):
        spec = legacy_spec(pd.DataFrame(columns=series_keys(spec)))
    weekday = spec.week.label_weekday
    day_name = pd.Timestamp(2024, 1, 1 + weekday).day_name()
    columns: dict[str, pa.Column] = {}
    for key, kind in zip(spec.keys, spec.key_types, strict=True):
        columns[key] = pa.Column("int64" if kind == "int" else "object", nullable=False)
    columns[WEEK] = pa.Column("datetime64[ns]", pa.Check(lambda w: w.dt.dayofweek == weekday, error=f"week must be a {day_name}"))
    columns[TARGET] = pa.Column("float64", pa.Check(lambda s: ~s.isin([float("inf"), float("-inf")]), error="sales must be finite"), nullable=allow_future)
    if HOLIDAY in spec.known_future:
        columns[HOLIDAY] = pa.Column("bool")
    return pa.DataFrameSchema(
        columns,
        unique=[*spec.keys, WEEK],
        strict=False,
        coerce=False,
        name=f"canonical_{'_'.join(spec.keys)}",
    )


def fingerprint(frame: pd.DataFrame, keys: list[str] | None = None) -> str:
    """A stable content hash of a canonical frame (order-insensitive over rows and columns).

    Columns are hashed in name order, each as its raw bytes in series-week order (object
    columns through pandas' row hashes); a frame already in that order is not copied.
    """
    keys = keys if keys is not None else series_keys(frame)
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
    """A canonical frame with its spec and where it came from.

    ``future`` holds the known-future covariates the data gives for weeks after its last
    actual week (future rows of the file, or a ``--future`` file): keys, ``week`` and the
    known-future columns, no sales. ``notes`` are what the reader wants the quality report
    to say (aggregated days, dropped partial weeks, the inferred week).
    """

    frame: pd.DataFrame
    spec: SeriesSpec
    source: str
    fingerprint: str = field(default="")
    #: 1-based file line of each frame row (None when the data did not come from a file)
    source_rows: np.ndarray | None = field(default=None, repr=False, compare=False)
    future: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    notes: tuple[object, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        source: str,
        *,
        spec: SeriesSpec | None = None,
        source_rows: np.ndarray | None = None,
        future: pd.DataFrame | None = None,
        notes: tuple[object, ...] = (),
    ) -> Dataset:
        """Sort by series and week (skipped when already sorted) and keep file lines aside.

        File lines come from ``source_rows`` (aligned with ``frame``) or a ``source_row``
        column, which is taken out of the frame. No copy is made of a sorted frame. Without
        ``spec`` the frame is Walmart-shaped (``store`` [and ``dept``] keys).
        """
        spec = spec if spec is not None else legacy_spec(frame)
        keys = list(spec.keys)
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
        return cls(frame=frame, spec=spec, source=source, fingerprint=fingerprint(frame, keys), source_rows=rows,
                   future=future, notes=notes)

    def with_frame(self, frame: pd.DataFrame, source: str | None = None) -> Dataset:
        """Another frame under the same spec (a head of the history, a store's rows...)."""
        return Dataset.from_frame(frame, source or self.source, spec=self.spec)

    @property
    def level(self) -> Level:
        return self.spec.level

    @property
    def keys(self) -> list[str]:
        return list(self.spec.keys)

    @property
    def n_series(self) -> int:
        return int(self.frame.groupby(self.keys).ngroups)

    @property
    def first_week(self) -> pd.Timestamp:
        return pd.Timestamp(self.frame[WEEK].min())

    @property
    def last_week(self) -> pd.Timestamp:
        return pd.Timestamp(self.frame[WEEK].max())
