"""A throw-away PostgreSQL schema, for tests and benchmarks that must not touch real tables.

``scratch_schema(url)`` creates a uniquely named schema, yields a URL whose connections use
it (``search_path`` in the connection options), and drops it afterwards. Parallel test
workers each get their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from storecast.delivery.warehouse.store import redact
from storecast.errors import ConfigError


class PostgresUnavailable(ConfigError):
    """The PostgreSQL server asked for does not answer (tests skip on it)."""


def postgres_reachable(url: str) -> str | None:
    """``None`` when ``url`` answers, else why not (for skip messages)."""
    try:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {redact(url)} is unreachable: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


@contextmanager
def scratch_schema(url: str, prefix: str = "storecast_scratch") -> Iterator[str]:
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        scoped = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def scratch_url(backend: str, folder: Path, postgres_url: str) -> Iterator[str]:
    """A fresh, empty warehouse URL: a DuckDB file in ``folder`` or a scratch PostgreSQL schema.

    Raises ``PostgresUnavailable`` (before yielding) when PostgreSQL does not answer.
    """
    if backend == "duckdb":
        yield f"duckdb:///{(folder / 'warehouse.duckdb').as_posix()}"
        return
    problem = postgres_reachable(postgres_url)
    if problem:
        raise PostgresUnavailable(problem)
    with scratch_schema(postgres_url, prefix="storecast_test") as url:
        yield url
