"""A small Dagster resource that opens the project's DuckDB file (through :func:`lib.database.connect`,
which is what code without Dagster, the CLI's read commands and the reports, uses directly)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from dagster_project.lib.database import connect
from dagster_project.resources.run_lock import held_for_run


class DuckDBResource(dg.ConfigurableResource):
    """The reconciliation database (one DuckDB file by default).

    With ``state_dir`` (the definitions give the config's), a run whose steps use it holds the config's
    run lock while it runs (``resources.run_lock.held_for_run``): one writer, whoever started the run.
    """

    database: str
    state_dir: str | None = None
    memory_limit: str | None = None  # project.duckdb_memory_limit


    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[DuckDBResource]:
        with held_for_run(self.state_dir, context):
            yield self

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(self.database, memory_limit=self.memory_limit)
        try:
            yield con
        finally:
            con.close()
