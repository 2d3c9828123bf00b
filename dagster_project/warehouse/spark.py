"""Publishing DuckDB tables to a local Spark catalogue as Parquet, and copying Spark's tables back.

The Spark counterpart of :mod:`dagster_project.warehouse.postgres` for dbt-spark's ``method: session``
(a local PySpark; install the ``spark`` extra). There is no Delta or Iceberg here (no Maven), so every
table is plain Parquet:

- publish: DuckDB writes the table as one Parquet file (``COPY ... TO``) under
  ``<warehouse>/sources/<schema>/<table>/`` and the Spark catalogue registers that folder as an
  external table (``CREATE TABLE ... USING parquet LOCATION``). The whole table each time: Parquet files
  cannot be appended to in place, and the sources are small next to what dbt builds from them.
- serve: Spark writes a table it built (or one as-of day of a per-day history) as Parquet, and DuckDB
  reads it back (``read_parquet``) into the DuckDB file.

The catalogue is an embedded Derby metastore in ``<warehouse>/metastore_db``: one JVM at a time may
open it, so the publisher's Spark session is stopped before dbt starts its own (:func:`spark_session`
and the ``spark`` output of profiles.yml use the same settings).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)


class SparkPublishError(Exception):
    """A table could not be published to (or copied back from) Spark; the message says which and why."""


@dataclass(frozen=True)
class SparkTable:
    """What one publish or copy back did."""

    schema: str
    table: str
    mode: str
    rows: int


def spark_conf(warehouse: Path, cores: int = 2) -> dict[str, str]:
    """The Spark settings of a local session on ``warehouse`` (as profiles.yml's ``spark`` output)."""
    warehouse = Path(warehouse).resolve()
    return {
        "spark.master": f"local[{cores}]",
        "spark.sql.warehouse.dir": str(warehouse / "tables"),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={warehouse / 'metastore_db'};create=true",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.enabled": "false",
    }


def spark_session(warehouse: Path, cores: int = 2):
    """A local Spark session with a Hive catalogue (Derby) on ``warehouse``; the caller stops it."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("recon-publish").enableHiveSupport()
    for key, value in spark_conf(warehouse, cores).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tick(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _select_list(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    """DuckDB columns as Spark reads them from Parquet: JSON and nested types as JSON text."""
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position", [schema, table]).fetchall()
    if not columns:
        raise SparkPublishError(f"{schema}.{table} does not exist in the DuckDB file, so it cannot be published")
    out = []
    for name, dtype in columns:
        upper = dtype.upper()
        expr = _quote(name)
        if upper == "JSON":
            expr = f"cast({expr} as varchar)"
        elif upper.endswith("]") or upper.startswith(("STRUCT", "MAP", "UNION")):
            expr = f"cast(to_json({expr}) as varchar)"
        elif upper in ("HUGEINT", "UBIGINT"):
            expr = f"cast({expr} as decimal(38,0))"
        elif upper in ("UUID",):
            expr = f"cast({expr} as varchar)"
        elif upper.startswith("TIMESTAMP") and upper != "TIMESTAMP WITH TIME ZONE":
            # A naive timestamp is UTC here: Spark reads it (session time zone UTC) as the same instant.
            expr = f"timezone('UTC', cast({expr} as timestamp))"
        out.append(f"{expr} as {_quote(name)}")
    return ", ".join(out)


class SparkPublisher:
    """Publishes DuckDB tables to a Spark catalogue as Parquet-backed tables."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, spark, warehouse: Path) -> None:
        self.duck = duck
        self.spark = spark
        self.root = Path(warehouse).resolve() / "sources"

    def publish(self, schema: str, table: str) -> SparkTable:
        """Make Spark's ``schema.table`` hold exactly the DuckDB table's rows (the whole table)."""
        select = _select_list(self.duck, schema, table)
        folder = self.root / schema / table
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        path = folder / "part-0.parquet"
        self.duck.execute(f"copy (select {select} from {_quote(schema)}.{_quote(table)}) "
                          f"to '{str(path).replace(chr(39), chr(39) * 2)}' (format parquet)")
        target = f"{_tick(schema)}.{_tick(table)}"
        self.spark.sql(f"create database if not exists {_tick(schema)}")
        self.spark.sql(f"drop table if exists {target}")
        self.spark.sql(f"create table {target} using parquet location '{folder.as_uri()}'")
        there = self.spark.sql(f"select count(*) from {target}").collect()[0][0]
        here = self.duck.execute(f"select count(*) from {_quote(schema)}.{_quote(table)}").fetchall()[0][0]
        if there != here:
            raise SparkPublishError(f"{schema}.{table}: Spark's copy has {there} rows after the publish, "
                                    f"the DuckDB file {here}")
        log.info("published %s.%s to Spark: %d rows", schema, table, here)
        return SparkTable(schema, table, "replace", here)


class SparkServer:
    """Copies tables Spark built back into the DuckDB file, through Parquet files in ``scratch_dir``."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, spark, scratch_dir: Path) -> None:
        self.duck = duck
        self.spark = spark
        self.scratch = Path(scratch_dir).resolve()

    def serve(self, schema: str, table: str, *, day_column: str | None = None, day=None) -> SparkTable:
        """Make the DuckDB file's ``schema.table`` equal Spark's (or, for a per-day history, its day)."""
        frame = self.spark.table(f"{_tick(schema)}.{_tick(table)}")
        exists = self.duck.execute(
            "select table_type from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table]).fetchall()
        by_day = bool(day_column and day is not None and exists and exists[0][0] == "BASE TABLE")
        if by_day:
            frame = frame.where(f"{_tick(day_column)} = date'{day}'")
        folder = self.scratch / f"{schema}.{table}"
        if folder.exists():
            shutil.rmtree(folder)
        frame.coalesce(1).write.parquet(str(folder))
        target = f"{_quote(schema)}.{_quote(table)}"
        # Timestamps come back as TIMESTAMPTZ (Parquet's UTC instants); the marts' are naive UTC.
        source = f"read_parquet('{folder}/*.parquet')"
        columns = self.duck.execute(f"describe select * from {source}").fetchall()
        select = ", ".join(
            f"timezone('UTC', {_quote(n)}) as {_quote(n)}" if t.upper() == "TIMESTAMP WITH TIME ZONE"
            else _quote(n) for n, t, *_ in columns)
        try:
            self.duck.execute("begin")
            self.duck.execute(f"create schema if not exists {_quote(schema)}")
            if by_day:
                self.duck.execute(f"delete from {target} where {_quote(day_column)} = ?", [day])
                self.duck.execute(f"insert into {target} by name select {select} from {source}")
            else:
                if exists:
                    self.duck.execute(f"drop {'view' if exists[0][0] == 'VIEW' else 'table'} {target}")
                self.duck.execute(f"create table {target} as select {select} from {source}")
            self.duck.execute("commit")
        except BaseException:
            self.duck.execute("rollback")
            raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        rows = self.duck.execute(f"select count(*) from {target}").fetchall()[0][0]
        return SparkTable(schema, table, "day" if by_day else "replace", rows)
