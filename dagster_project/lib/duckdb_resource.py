"""A small Dagster resource that opens the project's DuckDB file (through :func:`lib.database.connect`,
which is what code without Dagster, the CLI's read commands and the reports, uses directly)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from dagster_project.lib.database import connect


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
