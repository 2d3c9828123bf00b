"""A small Dagster resource that opens the project's DuckDB file (through :func:`lib.database.connect`).

``connect``, ``table_exists``, ``DatabaseBusyError`` and ``LOCK_WAIT_ENV`` are re-exported for the code
that imports them from here; code that runs without Dagster (the CLI's read commands, reports)
imports ``lib.database``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from dagster_project.lib.database import LOCK_WAIT_ENV, DatabaseBusyError, connect, table_exists

__all__ = ["LOCK_WAIT_ENV", "DatabaseBusyError", "DuckDBResource", "connect", "table_exists"]


class DuckDBResource(dg.ConfigurableResource):
    """The reconciliation database (one DuckDB file by default)."""

    database: str

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(self.database)
        try:
            yield con
        finally:
            con.close()
