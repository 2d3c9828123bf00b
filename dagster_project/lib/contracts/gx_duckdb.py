"""Make Great Expectations 1.24's SQL engine work on DuckDB (through ``duckdb_engine``).

GX 1.24 does not list DuckDB among its SQL dialects, and three things break without this shim:

1. **Rows fetched after the connection closed.** ``SqlAlchemyExecutionEngine.execute_query`` opens a
   connection, executes, closes the connection and only then calls ``fetchall()``. DuckDB's cursor is
   gone by then, so every metric comes back empty and fails with "list index out of range": nothing
   is validated. GX already keeps one persisted connection (``StaticPool``) for SQLite and SQL
   Server; we add DuckDB to that tuple.
2. **Column reflection.** ``duckdb_engine`` 0.17 reflects columns with SQLAlchemy's PostgreSQL
   catalog query, which in SQLAlchemy 2.1 joins ``pg_catalog.pg_collation`` (absent in DuckDB), so
   ``inspector.get_columns`` fails and GX falls back to ``SELECT * FROM <table>`` *without the
   schema* ("Table with name ... does not exist"). We give the dialect a ``get_columns`` that reads
   ``information_schema.columns`` and returns DuckDB's own type names (``VARCHAR``, ``BIGINT``,
   ``TIMESTAMP WITH TIME ZONE``, ``JSON`` ...).
3. **Type names.** So that ``expect_column_values_to_be_in_type_list`` compares those names as
   written (case-insensitively), DuckDB joins GX's case-insensitive dialects.

4. **One database instance per file.** DuckDB refuses a second in-process connection to a file
   with a different configuration (``duckdb_engine`` adds a user agent), so GX gets its connection
   from the caller's: :func:`engine_kwargs` passes a ``creator`` that opens a cursor (a sibling
   connection on the same database instance) of the connection the caller already holds.

:func:`install` applies 1-3, once, idempotently. It patches module attributes only (no GX file
is edited) and is proven by ``tests/test_contracts.py`` (a null key, a duplicate key, a retyped
column each make their expectation fail on DuckDB). Remove it when GX supports DuckDB natively.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

_INSTALLED = False
DIALECT = "duckdb"


class _DialectName:
    """Stands in for a ``GXSqlDialect`` member (GX compares ``.value`` and ``==`` with strings)."""

    value = DIALECT

    def __eq__(self, other: object) -> bool:
        return str(getattr(other, "value", other)).lower() == DIALECT

    def __hash__(self) -> int:
        return hash(DIALECT)

    def __repr__(self) -> str:
        return "<GXSqlDialect.DUCKDB (recon shim)>"


class DuckDBTypeName(sa.types.UserDefinedType):
    """A reflected column type that compiles to DuckDB's own name for it."""

    cache_ok = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get_col_spec(self, **kw: Any) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name


def _get_columns(self: Any, connection: Any, table_name: str, schema: str | None = None, **kw: Any) -> list[dict]:
    rows = connection.execute(
        sa.text(
            "select column_name, data_type, is_nullable, column_default from information_schema.columns "
            "where table_name = :table and table_schema = coalesce(:schema, current_schema()) "
            "order by ordinal_position"
        ),
        {"table": str(table_name), "schema": schema},
    ).fetchall()
    if not rows:
        raise sa.exc.NoSuchTableError(f"{schema}.{table_name}" if schema else str(table_name))
    return [
        {"name": name, "type": DuckDBTypeName(data_type), "nullable": nullable == "YES", "default": default}
        for name, data_type, nullable, default in rows
    ]


def engine_kwargs(con: Any) -> dict[str, Any]:
    """SQLAlchemy engine kwargs that make GX use ``con``'s DuckDB database instance.

    Args:
        con: an open ``duckdb.DuckDBPyConnection`` (keep it open while GX validates).

    Returns:
        ``{"creator": ...}`` for ``context.data_sources.add_sql(..., kwargs=...)``.
    """
    import duckdb_engine

    def creator() -> Any:
        cursor = con.cursor()
        cursor.execute("set TimeZone = 'UTC'")
        return duckdb_engine.ConnectionWrapper(cursor)

    return {"creator": creator}


def install() -> None:
    """Apply the shim (idempotent). Call before building a GX data source on DuckDB."""
    global _INSTALLED
    if _INSTALLED:
        return
    import duckdb_engine
    from great_expectations.execution_engine import sqlalchemy_execution_engine as sa_engine
    from great_expectations.expectations import type_comparison
    from great_expectations.expectations.core import expect_column_type_to_be

    name = _DialectName()
    if name not in sa_engine._PERSISTED_CONNECTION_DIALECTS:
        sa_engine._PERSISTED_CONNECTION_DIALECTS = (*sa_engine._PERSISTED_CONNECTION_DIALECTS, name)
    ci = frozenset({*type_comparison.CASE_INSENSITIVE_DIALECTS, name})
    type_comparison.CASE_INSENSITIVE_DIALECTS = ci
    expect_column_type_to_be.CASE_INSENSITIVE_DIALECTS = ci
    duckdb_engine.Dialect.get_columns = _get_columns
    _INSTALLED = True
