"""Copy a table the engine built back into the DuckDB file: the as-of day of a per-day history, else whole.

Both engines' servers (:class:`~dagster_project.warehouse.postgres.PostgresServer`,
:class:`~dagster_project.warehouse.spark.SparkServer`) export the engine's rows to a scratch file their
own way (Postgres ``COPY`` to CSV, Spark Parquet) and hand DuckDB a ``select`` over it; what happens in
the DuckDB file is decided and done here, once:

- :func:`plan_copy_back`: a per-day history (``day_column`` and ``day`` given) replaces only that day's
  rows when the DuckDB copy is a table with the same columns (the other days are its own, from earlier
  nights); otherwise, and for every other table, the copy is replaced whole (a view of that name too).
- :func:`replace_in_duckdb`: in one DuckDB transaction, delete the day and insert it, or drop and
  create; count the rows and, if the engine's count is known and differs, roll back so that the file is
  left as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from ingestion.protocol import quote_ident


@dataclass(frozen=True)
class CopyBack:
    """How one table comes back into the DuckDB file."""

    schema: str
    table: str
    existing: str | None  # the DuckDB copy's table_type ('BASE TABLE', 'VIEW'), None when there is none
    day_column: str | None  # set when only the as-of day's rows are replaced
    day: dt.date | None

    @property
    def by_day(self) -> bool:
        return self.day_column is not None

    @property
    def mode(self) -> str:
        """``day`` or ``replace``, as the servers log and report it."""
        return "day" if self.by_day else "replace"

    @property
    def target(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.table)}"

    def where(self, placeholder: str = "?") -> str:
        """The filter to the as-of day (empty when the table comes back whole)."""
        return f" where {quote_ident(self.day_column)} = {placeholder}" if self.by_day else ""


def plan_copy_back(duck: duckdb.DuckDBPyConnection, schema: str, table: str,
                   columns: Sequence[tuple[str, str | None]], day_column: str | None = None,
                   day: dt.date | None = None) -> CopyBack:
    """Decide whether ``schema.table`` comes back by day or whole.

    Args:
        duck: the DuckDB file's connection.
        schema, table: the table on the engine, and its copy in DuckDB.
        columns: the engine table's columns in order, each with the DuckDB type it arrives as (None: not
            known before the copy; only the names are then compared).
        day_column, day: for a per-day history, its as-of day column and the day.
    """
    kind = duck.execute("select table_type from information_schema.tables where table_schema = ? "
                        "and table_name = ?", [schema, table]).fetchall()
    existing = kind[0][0] if kind else None
    held = duck.execute("select column_name, data_type from information_schema.columns where table_schema = ? "
                        "and table_name = ? order by ordinal_position", [schema, table]).fetchall()
    same = [n for n, _ in held] == [n for n, _ in columns] and all(
        want is None or want.upper() == have.upper() for (_, have), (_, want) in zip(held, columns, strict=True))
    by_day = bool(day_column and day is not None and existing == "BASE TABLE" and same)
    return CopyBack(schema, table, existing, day_column if by_day else None, day if by_day else None)


def replace_in_duckdb(duck: duckdb.DuckDBPyConnection, plan: CopyBack, select_sql: str,
                      params: Sequence[object] = (), *, expected: int | None = None,
                      error: type[Exception] = RuntimeError, engine: str = "the engine") -> int:
    """Put ``select_sql``'s rows (the engine's export) into the DuckDB copy as ``plan`` says; one transaction.

    Args:
        duck: the DuckDB file's connection.
        plan: from :func:`plan_copy_back`.
        select_sql: a DuckDB ``select`` over the exported file, its columns named as the table's.
        params: its parameters.
        expected: the engine's row count of what was exported (None: not known).
        error: the exception raised when the counts differ.
        engine: the engine's name in that message.

    Returns:
        The rows the DuckDB copy holds afterwards (of the day, for a per-day copy).

    Raises:
        error: the counts differ; the DuckDB file is left as it was.
    """
    target, where, day = plan.target, plan.where(), [plan.day] if plan.by_day else []
    duck.execute("begin")
    try:
        duck.execute(f"create schema if not exists {quote_ident(plan.schema)}")
        if plan.by_day:
            duck.execute(f"delete from {target}{where}", day)
            duck.execute(f"insert into {target} by name {select_sql}", list(params))
        else:
            if plan.existing:
                duck.execute(f"drop {'view' if plan.existing == 'VIEW' else 'table'} {target}")
            duck.execute(f"create table {target} as {select_sql}", list(params))
        here = duck.execute(f"select count(*) from {target}{where}", day).fetchall()[0][0]
        if expected is not None and here != expected:
            raise error(f"{plan.schema}.{plan.table}: the DuckDB file would hold {here} rows after the copy back, "
                        f"{engine}'s table {expected}{' on ' + str(plan.day) if plan.by_day else ''}")
        duck.execute("commit")
    except BaseException:
        duck.execute("rollback")
        raise
    return here
