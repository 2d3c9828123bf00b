"""Publishing the landed tables from the embedded DuckDB file into the warehouse engine, in bulk.

Landing (schema evolution, typing, the quarantine, the sync bookkeeping) and the contracts run on the
embedded DuckDB file whatever the engine: they are the platform's bad-input policy, and one
implementation of it is enough. When the dbt project runs on another engine, the tables it reads as
sources are then published there, each as one bulk load:

- Postgres: ``COPY ... FROM STDIN`` of the rows DuckDB writes as CSV.

A raw table is append-only between syncs, so only its new rows travel: those extracted after the
newest row already published. When that cannot be true (the table was retyped or gained a column, a
full-refresh stream's dedup deleted rows, the published copy was changed by hand) the table is
published whole again, and the log says why. Small bookkeeping tables are always published whole.
Either way, after a publish the engine's copy holds exactly the DuckDB table's rows (checked by count).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg

from dagster_project.warehouse.copy_back import plan_copy_back, replace_in_duckdb
from ingestion.protocol import quote_ident as _quote

log = logging.getLogger(__name__)

EXTRACTED_AT = "_airbyte_extracted_at"

# DuckDB column type -> Postgres column type, spelt as Postgres's format_type() spells it (so a published
# table's columns compare equal to what it should have). Lists, structs and maps travel as JSON.
_SIMPLE = {
    "VARCHAR": "text",
    "JSON": "jsonb",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric(38,0)",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20,0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIME": "time without time zone",
    "TIMESTAMP": "timestamp without time zone",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "UUID": "uuid",
    "BLOB": "bytea",
    "INTERVAL": "interval",
}


class PublishError(Exception):
    """A table could not be published to the engine; the message names the table and why."""


@dataclass(frozen=True)
class PublishedTable:
    """What one publish did: ``mode`` is 'append' (new rows only), 'replace' (whole) or 'unchanged'."""

    schema: str
    table: str
    mode: str
    rows: int
    reason: str = ""


def postgres_type(duckdb_type: str) -> str:
    """The Postgres type a DuckDB column is published as.

    Args:
        duckdb_type: the column's type as DuckDB's ``information_schema`` spells it.

    Returns:
        A Postgres type; nested types (lists, structs, maps) are ``jsonb``.
    """
    upper = duckdb_type.upper()
    if upper in _SIMPLE:
        return _SIMPLE[upper]
    if m := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", upper):
        return f"numeric({m[1]},{m[2]})"
    if upper.startswith(("TIMESTAMP_", "TIMESTAMP(")):
        return "timestamp without time zone"
    if upper.endswith("[]") or upper.startswith(("STRUCT", "MAP", "UNION")) or re.search(r"\[\d+\]$", upper):
        return "jsonb"
    raise PublishError(f"column type {duckdb_type} has no Postgres counterpart here")



def _duckdb_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return [(n, t) for n, t in con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()]


def pg_columns(pg, schema: str, table: str) -> list[tuple[str, str]]:
    """A Postgres table's or view's columns with their types as ``format_type`` spells them (empty if none)."""
    with pg.cursor() as cur:
        cur.execute(
            "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
            "join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped "
            "order by a.attnum",
            [schema, table],
        )
        return [(n, t) for n, t in cur.fetchall()]


def _select_list(columns: list[tuple[str, str]]) -> str:
    """DuckDB expressions writing each column as Postgres reads it back from CSV."""
    out = []
    for name, dtype in columns:
        target = postgres_type(dtype)
        expr = _quote(name)
        if target == "jsonb" and dtype.upper() != "JSON":
            expr = f"to_json({expr})"
        elif dtype.upper() == "BLOB":
            expr = f"'\\x' || hex({expr})"
        out.append(f"{expr} as {_quote(name)}")
    return ", ".join(out)


class PostgresPublisher:
    """Publishes DuckDB tables to one Postgres database (a psycopg 3 connection the caller owns).

    Each :meth:`publish` commits on its own: a table is either published or left as it was.
    """

    def __init__(self, duck: duckdb.DuckDBPyConnection, pg) -> None:
        if not pg.autocommit:
            # Otherwise each publish's transaction would be a savepoint of one the caller never commits.
            raise ValueError("PostgresPublisher needs a connection in autocommit mode")
        self.duck = duck
        self.pg = pg

    def publish(self, schema: str, table: str, *, append_by: str | None = EXTRACTED_AT) -> PublishedTable:
        """Make the engine's ``schema.table`` hold exactly the DuckDB table's rows.

        Args:
            schema: schema of the table in DuckDB, and of its copy in Postgres.
            table: table (or view) name.
            append_by: a column no older row is ever newer than (the extraction time of a raw table):
                only rows past the published maximum are sent. None: always send the whole table.

        Returns:
            What was done and why.
        """
        columns = _duckdb_columns(self.duck, schema, table)
        if not columns:
            raise PublishError(f"{schema}.{table} does not exist in the DuckDB file, so it cannot be published")
        wanted = [(name, postgres_type(dtype)) for name, dtype in columns]
        existing = pg_columns(self.pg, schema, table)
        target = f"{_quote(schema)}.{_quote(table)}"
        reason = ""
        where = ""
        added = wanted[len(existing):] if existing and wanted[:len(existing)] == existing else []
        if existing != wanted and not added:
            reason = "new table" if not existing else "its columns changed"
        elif append_by is None or append_by not in dict(columns):
            reason = "published whole each time"
        else:
            with self.pg.cursor() as cur:
                cur.execute(f"select count(*), max({_quote(append_by)}) from {target}")
                published, newest = cur.fetchone()
            if newest is None:
                reason = "" if published == 0 else "rows without a watermark"
            else:
                held = self.duck.execute(
                    f"select count(*) from {target} where {_quote(append_by)} <= ?", [newest]
                ).fetchall()[0][0]
                if held != published:
                    reason = f"rows up to the watermark differ ({held} here, {published} published)"
                else:
                    where = f"where {_quote(append_by)} > ?"
        params = [newest] if where else []
        mode = "append" if not reason else "replace"
        with self.pg.transaction(), self.pg.cursor() as cur:
            # Landing's schema evolution appends columns: the copy gains them (older rows NULL, as in
            # DuckDB) and stays incremental. Any other change of columns recreates the table.
            for name, pg_type in added:
                cur.execute(f"alter table {target} add column {_quote(name)} {pg_type}")
            if mode == "replace" and existing and not added and existing == wanted:
                cur.execute(f"truncate {target}")
            elif mode == "replace":
                cur.execute(f"create schema if not exists {_quote(schema)}")
                try:
                    cur.execute(f"drop table if exists {target}")
                except psycopg.errors.DependentObjectsStillExist as exc:
                    raise PublishError(
                        f"{schema}.{table} must be recreated on the engine ({reason}), but other objects there "
                        f"depend on it: {exc.diag.message_detail or exc}. Drop them, or recreate them after the "
                        "night") from None
                cur.execute(f"create table {target} ({', '.join(f'{_quote(n)} {t}' for n, t in wanted)})")
            sent = self._copy(cur, schema, table, columns, where, params)
        with self.pg.cursor() as cur:
            cur.execute(f"select count(*) from {target}")
            there = cur.fetchone()[0]
        here = self.duck.execute(f"select count(*) from {target}").fetchall()[0][0]
        if there != here:
            raise PublishError(f"{schema}.{table}: the engine's copy has {there} rows after the publish, "
                               f"the DuckDB file {here}")
        if mode == "append" and sent == 0:
            mode = "unchanged"
        log.info("published %s.%s: %s, %d rows%s", schema, table, mode, sent, f" ({reason})" if reason else "")
        return PublishedTable(schema, table, mode, sent, reason)

    def _copy(self, cur, schema: str, table: str, columns: list[tuple[str, str]], where: str,
              params: list) -> int:
        names = ", ".join(_quote(n) for n, _ in columns)
        query = f"select {_select_list(columns)} from {_quote(schema)}.{_quote(table)} {where}"
        reader = self.duck.sql(query, params=params or None).to_arrow_reader(100_000)
        sent = 0
        with cur.copy(f"copy {_quote(schema)}.{_quote(table)} ({names}) from stdin (format csv)") as copy:
            for batch in reader:
                sent += batch.num_rows
                copy.write(_csv(batch))
        return sent

    def publish_all(self, tables: Iterable[tuple[str, str, str | None]]) -> list[PublishedTable]:
        """Publish several tables: ``(schema, table, append_by)`` each."""
        return [self.publish(s, t, append_by=a) for s, t, a in tables]


def _csv(batch) -> bytes:
    """One Arrow batch as CSV the way Postgres reads it: NULL unquoted empty, empty text quoted."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    arrays = []
    for column in batch.columns:
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
        arrays.append(column)
    pacsv.write_csv(
        pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), buf,
        pacsv.WriteOptions(include_header=False, quoting_style="needed"),
    )
    return buf.getvalue()


# ---- serving: the engine's staging and mart tables back into the DuckDB file ------------------------

# Postgres type (format_type) -> DuckDB type.
_BACK = {
    "text": "VARCHAR",
    "character varying": "VARCHAR",
    "jsonb": "JSON",
    "json": "JSON",
    "boolean": "BOOLEAN",
    "smallint": "SMALLINT",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "real": "FLOAT",
    "double precision": "DOUBLE",
    "numeric": "DOUBLE",
    "date": "DATE",
    "time without time zone": "TIME",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMPTZ",
    "uuid": "UUID",
    "bytea": "BLOB",
    "interval": "INTERVAL",
}


def duckdb_type(pg_type: str) -> str:
    """The DuckDB type a Postgres column is copied back as (``format_type`` spelling in)."""
    if pg_type in _BACK:
        return _BACK[pg_type]
    if m := re.fullmatch(r"numeric\((\d+),(\d+)\)", pg_type):
        return f"DECIMAL({m[1]},{m[2]})"
    if re.fullmatch(r"character varying\(\d+\)|character\(\d+\)|\"char\"", pg_type):
        return "VARCHAR"
    if pg_type.startswith(("timestamp(", "timestamp with")):
        return "TIMESTAMPTZ" if "with time zone" in pg_type else "TIMESTAMP"
    raise PublishError(f"column type {pg_type} has no DuckDB counterpart here")


@dataclass(frozen=True)
class ServedTable:
    """What one copy back did: ``mode`` is 'day' (one as-of day's rows) or 'replace' (whole)."""

    schema: str
    table: str
    mode: str
    rows: int


class PostgresServer:
    """Copies tables the engine built back into the DuckDB file (a psycopg connection in autocommit)."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, pg, scratch_dir) -> None:
        self.duck = duck
        self.pg = pg
        self.scratch_dir = scratch_dir

    def serve(self, schema: str, table: str, *, day_column: str | None = None, day=None) -> ServedTable:
        """Make the DuckDB file's ``schema.table`` equal the engine's (or, for a per-day history, its day).

        Args:
            schema: schema of the table on the engine, and of its copy in DuckDB.
            table: table or view name.
            day_column: the as-of day column of a per-day history; with ``day``, only that day's rows
                are replaced (other days are the DuckDB copy's own, built on earlier nights).
            day: the as-of day.
        """
        columns = pg_columns(self.pg, schema, table)
        if not columns:
            raise PublishError(f"{schema}.{table} does not exist on the engine, so it cannot be copied back")
        wanted = [(name, duckdb_type(t)) for name, t in columns]
        plan = plan_copy_back(self.duck, schema, table, wanted, day_column, day)
        path, exported = self._fetch(schema, table, columns, plan.where("%s"), [plan.day] if plan.by_day else [])
        spec = "{" + ", ".join(f"'{n.replace(chr(39), chr(39) * 2)}': '{t}'" for n, t in wanted) + "}"
        try:
            rows = replace_in_duckdb(
                self.duck, plan, f"select * from read_csv(?, columns = {spec}, header = false, auto_detect = false, "
                "allow_quoted_nulls = false, quote = '\"', escape = '\"')", [str(path)],
                expected=exported, error=PublishError, engine="the engine")
        finally:
            path.unlink(missing_ok=True)
        log.info("copied back %s.%s: %s, %d rows", schema, table, plan.mode, rows)
        return ServedTable(schema, table, plan.mode, rows)

    def _fetch(self, schema: str, table: str, columns, where: str, params: list) -> tuple[Path, int]:
        """Export the table's rows (``where``: a filter with %s placeholders) to a scratch CSV; its path and rows."""
        names = ", ".join(_quote(n) for n, _ in columns)
        Path(self.scratch_dir).mkdir(parents=True, exist_ok=True)
        path = Path(self.scratch_dir) / f"{schema}.{table}.csv"
        with self.pg.cursor() as cur, path.open("wb") as out:
            query = f"select {names} from {_quote(schema)}.{_quote(table)} {where}"
            with cur.copy(f"copy ({query}) to stdout (format csv)", params or None) as copy:
                for data in copy:
                    out.write(data)
            return path, cur.rowcount
