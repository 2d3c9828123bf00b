"""Opening the project's DuckDB file, without Dagster (the CLI's read commands start fast on it).

Every connection is set to UTC so that timestamp arithmetic never depends on the machine's zone.
The Dagster resource around it is :class:`dagster_project.lib.duckdb_resource.DuckDBResource`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file (creating its folder) with the session time zone set to UTC.

    Args:
        path: the database file.
        read_only: open without taking the write lock (for analysts' queries and reports).

    Returns:
        An open connection; close it when done.
    """
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    return con


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether a table or view exists (the optional tables of other domains may not exist yet)."""
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()[0][0])
