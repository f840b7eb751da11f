"""Bulk loading a frame into a warehouse table inside the caller's transaction.

PostgreSQL gets binary ``COPY FROM STDIN``: rows are encoded with numpy, grouped by
layout (which cells are NULL, how long each text cell is) so every group is one fixed-width
structured array written in one piece; no per-row Python. DuckDB gets the frame as an Arrow
table registered on the connection and ``INSERT ... SELECT``. Anything else falls back to
``executemany``. All three run on the SQLAlchemy connection, so the caller's rollback undoes
them.
"""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from psycopg.copy import QueuedLibpqWriter

_PG_EPOCH = np.datetime64("2000-01-01", "D")
_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_PG_TRAILER = struct.pack(">h", -1)
CHUNK_ROWS = 500_000
_tmp_names = itertools.count()


def _kind(column: sa.Column) -> str:
    t = column.type
    if isinstance(t, sa.SmallInteger):
        return "int2"
    if isinstance(t, sa.BigInteger):
        return "int8"
    if isinstance(t, sa.Integer):
        return "int4"
    if isinstance(t, sa.Float):  # Double is a Float
        return "float8"
    if isinstance(t, sa.DateTime):
        return "timestamp"
    if isinstance(t, sa.Date):
        return "date"
    if isinstance(t, sa.Boolean):
        return "bool"
    return "text"


def _stamps(series: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(series)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[us]")


def _numbers(series: pd.Series, kind: str, null: np.ndarray) -> np.ndarray:
    if not null.any() and kind != "bool" and series.dtype.kind in "iuf":
        return series.to_numpy()
    if kind == "float8":
        return np.where(null, 0.0, series.to_numpy(dtype="float64", na_value=np.nan))
    if kind == "bool":
        return series.where(~null, False).astype(bool).to_numpy()
    return series.where(~null, 0).astype("int64").to_numpy()


class _Column:
    """One column in PostgreSQL's binary wire form: fixed-width values or text codes."""

    def __init__(self, series: pd.Series, kind: str) -> None:
        self.kind = kind
        self.null = series.isna().to_numpy()
        n = len(series)
        if kind == "text":
            if isinstance(series.dtype, pd.CategoricalDtype):  # constants arrive as categoricals
                codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
            else:
                codes, uniques = pd.factorize(series.astype("object"), use_na_sentinel=True)
            encoded = [str(v).encode("utf-8") for v in uniques]
            sizes = np.array([len(b) for b in encoded] + [0], dtype="int64")
            self.codes = codes
            self.table = np.array(encoded or [b""], dtype=f"S{max(1, int(sizes.max()))}")
            self.width = sizes[codes]  # code -1 (NULL) picks the trailing 0
        elif kind in {"date", "timestamp"}:
            raw = _stamps(series)
            if kind == "date":
                days = (raw.astype("datetime64[D]") - _PG_EPOCH).astype("int64")
                self.values = np.where(self.null, 0, days).astype(">i4")
            else:
                micros = (raw - _PG_EPOCH.astype("datetime64[us]")).astype("int64")
                self.values = np.where(self.null, 0, micros).astype(">i8")
            self.width = np.full(n, self.values.dtype.itemsize, dtype="int64")
        else:
            dtype = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8", "bool": "u1"}[kind]
            self.values = _numbers(series, kind, self.null).astype(dtype)
            self.width = np.full(n, self.values.dtype.itemsize, dtype="int64")
        self.length = np.where(self.null, -1, self.width)

    def field(self, width: int) -> str:
        return f"S{width}" if self.kind == "text" else self.values.dtype.str

    def take(self, rows: np.ndarray, width: int) -> np.ndarray:
        if self.kind == "text":
            return self.table[self.codes[rows]].astype(f"S{width}")
        return self.values[rows]


def _pg_binary(frame: pd.DataFrame, kinds: list[str]) -> list[memoryview]:
    """Encode ``frame`` as PostgreSQL binary COPY tuples, one bytes object per row layout.

    A layout is the length of every cell (-1 for NULL); rows sharing one are a fixed-width
    numpy structured array. Typical frames have one or two layouts.
    """
    cols = [_Column(frame[name], kind) for name, kind in zip(frame.columns, kinds, strict=True)]
    varying = [i for i, c in enumerate(cols) if len(c.length) and (c.length != c.length[0]).any()]
    if varying:
        layout = pd.DataFrame({i: cols[i].length for i in varying})
        groups = layout.groupby(varying, sort=False).indices
    else:
        groups = {(): np.arange(len(frame))}
    out: list[memoryview] = []
    for rows in groups.values():
        first = rows[0]
        widths = [int(c.length[first]) for c in cols]
        fields: list[tuple[str, str]] = [("nfields", ">i2")]
        for i, width in enumerate(widths):
            fields.append((f"l{i}", ">i4"))
            if width > 0:
                fields.append((f"v{i}", cols[i].field(width)))
        block = np.empty(len(rows), dtype=np.dtype(fields))
        block["nfields"] = len(cols)
        for i, width in enumerate(widths):
            block[f"l{i}"] = width
            if width > 0:
                block[f"v{i}"] = cols[i].take(rows, width)
        out.append(memoryview(block).cast("B"))  # type: ignore[arg-type]  # numpy arrays are buffers; no copy; the writer thread sends it as is
    return out


def _copy_postgres(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    quote = conn.dialect.identifier_preparer.quote
    kinds = [_kind(table.c[name]) for name in frame.columns]
    names = ", ".join(quote(name) for name in frame.columns)
    raw = conn.connection.driver_connection
    assert raw is not None, "the connection is closed"
    statement = f"COPY {quote(table.name)} ({names}) FROM STDIN (FORMAT binary)"
    # The queued writer sends in a worker thread, so encoding the next chunk overlaps the
    # server parsing this one.
    with raw.cursor() as cur, cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        copy.write(_PG_HEADER)
        for start in range(0, len(frame), CHUNK_ROWS):
            for block in _pg_binary(frame.iloc[start:start + CHUNK_ROWS], kinds):
                copy.write(block)
        copy.write(_PG_TRAILER)


_ARROW = {
    "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(), "float8": pa.float64(),
    "bool": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us"), "text": pa.string(),
}


def to_arrow(frame: pd.DataFrame, table: sa.Table) -> pa.Table:
    """``frame`` as an Arrow table typed like ``table``'s columns (NaN becomes null)."""
    arrays = []
    for name in frame.columns:
        kind = _kind(table.c[name])
        series = frame[name]
        null = series.isna().to_numpy()
        if kind in {"date", "timestamp"}:
            arr = pa.array(_stamps(series), mask=null).cast(_ARROW[kind])
        elif kind == "text":
            arr = pa.array(series.astype("object").where(~null, None), type=pa.string(), from_pandas=True)
        else:
            arr = pa.array(_numbers(series, kind, null), mask=null).cast(_ARROW[kind])
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=list(frame.columns))


def _insert_duckdb(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    quote = conn.dialect.identifier_preparer.quote
    raw = conn.connection.driver_connection
    assert raw is not None, "the connection is closed"
    view = f"storecast_bulk_{next(_tmp_names)}"
    names = ", ".join(quote(name) for name in frame.columns)
    raw.register(view, to_arrow(frame, table))
    try:
        raw.execute(f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {view}")
    finally:
        raw.unregister(view)


def bulk_insert(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Append ``frame`` (columns named like ``table``'s) to ``table``; returns rows written."""
    unknown = set(frame.columns) - set(table.c.keys())
    if unknown:
        raise ValueError(f"columns not in table {table.name}: {sorted(unknown)}")
    if frame.empty:
        return 0
    dialect = conn.dialect.name
    if dialect == "postgresql":
        _copy_postgres(conn, table, frame)
    elif dialect == "duckdb":
        _insert_duckdb(conn, table, frame)
    else:
        records = to_arrow(frame, table).to_pylist()
        conn.execute(table.insert(), records)
    return len(frame)
