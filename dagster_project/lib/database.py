"""Opening the project's DuckDB file, without Dagster (the CLI's read commands start fast on it).

Every connection is set to UTC so that timestamp arithmetic never depends on the machine's zone. A
file another process holds (a run, an analyst's session) is waited for, then named in a clear error.
The Dagster resource around it is :class:`dagster_project.resources.duckdb_resource.DuckDBResource`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import duckdb

from dagster_project.lib.errors import PlainError

log = logging.getLogger(__name__)
LOCK_WAIT_ENV = "RECON_DB_LOCK_WAIT_SECONDS"
DEFAULT_LOCK_WAIT_SECONDS = 120


class DatabaseBusyError(PlainError):
    """The DuckDB file stayed locked by another process for longer than the wait."""


def connect(path: str | Path, read_only: bool = False, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file (creating its folder) with the session time zone set to UTC.

    Args:
        path: the database file.
        read_only: open without taking the write lock (for analysts' queries and reports).
        memory_limit: DuckDB's ``memory_limit`` for the database while it is open (the config's
            ``project.duckdb_memory_limit``; a run's steps pass it); None keeps DuckDB's default.

    Returns:
        An open connection; close it when done.
    """
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = None
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            # Another process has the file open (a run, an analyst's session): wait for it, then say who.
            wait = float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_SECONDS))
            if deadline is None:
                deadline = time.monotonic() + wait
                log.warning("%s is in use by another process; waiting up to %.0f s", path, wait)
            if time.monotonic() >= deadline:
                raise DatabaseBusyError(
                    f"{path} is in use by another process and stayed so for {wait:.0f} s "
                    f"({str(exc).split(': ', 1)[-1]}). One process may write it at a time, and while it is "
                    "open for writing no other may open it, read-only or not: close the other session (an "
                    f"analyst's DuckDB shell, say) or wait for the run; ${LOCK_WAIT_ENV} sets the wait."
                ) from None
            time.sleep(0.5)
    con.execute("set TimeZone = 'UTC'")
    if memory_limit is not None:
        con.execute(f"set memory_limit = '{memory_limit}'")  # validated by the config: a size or a share
    return con


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether a table or view exists (the optional tables of other domains may not exist yet)."""
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()[0][0])
