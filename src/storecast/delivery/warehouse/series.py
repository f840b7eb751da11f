"""Series ids, the dataset's declaration, columns added per dataset, and the BI views.

Functions over an open connection (the ``Warehouse`` calls them inside its transactions):
- ``declared_spec`` / ``declare``: the ``dataset`` row (the data's ``SeriesSpec``); a
  warehouse holds one dataset, so writing data with other key columns is an error;
- ``series_ids``: the id of each row's series at a level, adding new series;
- ``ensure_columns``: driver columns of ``sales`` and quantile columns of ``forecasts``;
- ``key_frame``: the series table with the key columns under their declared names;
- ``refresh_views``: ``v_sales`` and ``v_forecasts`` (keys by name, for BI tools).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa

from storecast.data.spec import SeriesSpec
from storecast.delivery.warehouse import tables as t
from storecast.delivery.warehouse.bulk import bulk_insert
from storecast.errors import DataError


def level_name(level: Sequence[str]) -> str:
    return "/".join(level) if level else "total"


def declared_spec(conn: sa.Connection) -> SeriesSpec | None:
    rows = conn.execute(sa.select(t.dataset.c.spec).where(t.dataset.c.dataset_id == 1)).fetchall()
    return None if not rows else SeriesSpec.from_dict(json.loads(rows[0][0]))


def declared_declaration(conn: sa.Connection) -> dict | None:
    rows = conn.execute(sa.select(t.dataset.c.declaration).where(t.dataset.c.dataset_id == 1)).fetchall()
    return None if not rows or rows[0][0] is None else json.loads(rows[0][0])


def declare(conn: sa.Connection, spec: SeriesSpec, declaration: dict | None = None) -> None:
    """Record the dataset's spec; data with other key columns than the stored ones is refused."""
    stored = declared_spec(conn)
    now = sa.func.current_timestamp()
    if stored is not None and list(stored.keys) != list(spec.keys):
        raise DataError(
            f"this warehouse holds data keyed by {', '.join(stored.keys)}; this data is keyed by "
            f"{', '.join(spec.keys)}. Use a separate warehouse (--warehouse) for each dataset"
        )
    values = {"keys": json.dumps(list(spec.keys)), "spec": json.dumps(spec.to_dict()), "updated_at": now}
    if declaration is not None:
        values["declaration"] = json.dumps(declaration, default=str)
    if stored is None:
        conn.execute(t.dataset.insert().values(dataset_id=1, **values))
    elif stored != spec or (declaration is not None and declared_declaration(conn) != json.loads(str(values["declaration"]))):
        conn.execute(t.dataset.update().where(t.dataset.c.dataset_id == 1).values(**values))


def _text(values: np.ndarray) -> list[str]:
    return [str(int(v)) if isinstance(v, (int, np.integer)) else str(v) for v in values]


def series_keys_json(frame: pd.DataFrame, level: Sequence[str]) -> pd.Series:
    """The ``series_key`` of each row: JSON ``[level name, [key values as text]]``."""
    name = level_name(level)
    if not level:
        return pd.Series([json.dumps([name, []])] * len(frame), index=frame.index)
    parts = [pd.Series(_text(frame[k].to_numpy()), index=frame.index) for k in level]
    encoded = [p.map(json.dumps) for p in parts]
    joined = encoded[0]
    for p in encoded[1:]:
        joined = joined + ", " + p
    return f'["{name}", [' + joined + "]]"


def series_ids(conn: sa.Connection, frame: pd.DataFrame, level: Sequence[str], *, create: bool = True) -> np.ndarray:
    """The series id of each row of ``frame`` at ``level`` (its key columns), adding the series
    the warehouse does not know yet (``create=False``: -1 for them)."""
    level = list(level)
    if frame.empty:
        return np.array([], dtype=np.int64)
    distinct = frame[level].drop_duplicates() if level else frame.head(1)[[]]
    keys = series_keys_json(distinct, level).to_numpy()
    known = dict(conn.execute(sa.select(t.series.c.series_key, t.series.c.series_id)
                              .where(t.series.c.level == level_name(level))).fetchall())
    missing = [i for i, k in enumerate(keys) if k not in known]
    if missing and create:
        top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.series.c.series_id), 0))).fetchall()
        start = int(top[0][0] or 0) + 1
        new = distinct.iloc[missing]
        rows = pd.DataFrame({
            "series_id": np.arange(start, start + len(missing), dtype=np.int64),
            "level": level_name(level),
            "series_key": keys[missing],
            "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
        })
        for i, k in enumerate(level):
            rows[t.KEY_COLUMNS[i]] = _text(new[k].to_numpy())
        bulk_insert(conn, t.series, rows)
        known.update(zip(rows["series_key"], rows["series_id"].tolist(), strict=True))
    lookup = pd.Series([known.get(k, -1) for k in keys], index=pd.MultiIndex.from_frame(distinct) if len(level) > 1
                       else (pd.Index(distinct[level[0]]) if level else pd.Index([0])))
    if not level:
        return np.full(len(frame), int(lookup.iloc[0]), dtype=np.int64)
    at = pd.MultiIndex.from_frame(frame[level]) if len(level) > 1 else pd.Index(frame[level[0]])
    return lookup.reindex(at).to_numpy(dtype=np.int64)


def key_frame(conn: sa.Connection, spec: SeriesSpec, level: Sequence[str] | None = None) -> pd.DataFrame:
    """``series_id``, ``level`` and the key columns by their declared names (typed) of every
    series (or those of one ``level``)."""
    s = t.series
    cols = [s.c.series_id, s.c.level, *[s.c[t.KEY_COLUMNS[i]] for i in range(len(spec.keys))]]
    stmt = sa.select(*cols)
    if level is not None:
        stmt = stmt.where(s.c.level == level_name(level))
    result = conn.execute(stmt)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for i, (name, kind) in enumerate(zip(spec.keys, spec.key_types, strict=True)):
        column = frame.pop(t.KEY_COLUMNS[i])
        if kind == "int":
            frame[name] = pd.to_numeric(column, errors="coerce").astype("Int64")
        else:
            frame[name] = column.astype(object)
    return frame


def _sql_type(values: pd.Series) -> sa.types.TypeEngine:
    if pd.api.types.is_bool_dtype(values):
        return sa.Boolean()
    if pd.api.types.is_numeric_dtype(values):
        return sa.Double()
    return sa.Text()


def table_columns(conn: sa.Connection, table: str) -> list[tuple[str, str]]:
    """(name, SQL type) of a table's columns in the current schema, in order (``information_schema``:
    the same query on DuckDB and PostgreSQL)."""
    rows = conn.execute(sa.text(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = :t AND table_schema = current_schema() ORDER BY ordinal_position"
    ), {"t": table}).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def _from_sql(type_name: str) -> sa.types.TypeEngine:
    name = type_name.lower()
    if "bool" in name:
        return sa.Boolean()
    if "timestamp" in name:
        return sa.DateTime()
    if name == "date":
        return sa.Date()
    if "smallint" in name or name == "int2":
        return sa.SmallInteger()
    if "bigint" in name or name == "int8":
        return sa.BigInteger()
    if "int" in name:
        return sa.Integer()
    if "double" in name or "float" in name or "real" in name or "numeric" in name or "decimal" in name:
        return sa.Double()
    return sa.Text()


def ensure_columns(conn: sa.Connection, table: str, frame: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """Add the columns of ``frame`` named in ``names`` that ``table`` lacks; returns the added."""
    have = {name for name, _ in table_columns(conn, table)}
    quote = conn.dialect.identifier_preparer.quote
    added = []
    for name in names:
        if name in have or name not in frame.columns:
            continue
        kind = _sql_type(frame[name]).compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {kind}"))
        added.append(name)
    return added


def reflect(conn: sa.Connection, name: str) -> sa.Table:
    """The table as the database has it now (with the columns added per dataset): declared
    columns keep their declared types, added ones get theirs from the database."""
    declared = t.metadata.tables.get(name)
    columns = []
    for column, sql_type in table_columns(conn, name):
        if declared is not None and column in declared.c:
            columns.append(sa.Column(column, declared.c[column].type))
        else:
            columns.append(sa.Column(column, _from_sql(sql_type)))
    return sa.Table(name, sa.MetaData(), *columns)


def refresh_views(conn: sa.Connection, spec: SeriesSpec) -> None:
    """``v_sales`` and ``v_forecasts``: the tables with the keys under their declared names."""
    quote = conn.dialect.identifier_preparer.quote
    keys = []
    for i, (name, kind) in enumerate(zip(spec.keys, spec.key_types, strict=True)):
        col = f"s.{t.KEY_COLUMNS[i]}"
        keys.append(f"CAST({col} AS BIGINT) AS {quote(name)}" if kind == "int" else f"{col} AS {quote(name)}")
    key_sql = ", ".join(keys)
    for view, table in (("v_sales", "sales"), ("v_forecasts", "forecasts")):
        cols = [c for c, _ in table_columns(conn, table) if c != "series_id"]
        body = ", ".join(f"x.{quote(c)}" for c in cols)
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
        conn.execute(sa.text(
            f"CREATE VIEW {view} AS SELECT s.level AS level, {key_sql}, {body} "
            f"FROM {quote(table)} AS x JOIN series AS s ON s.series_id = x.series_id"
        ))
