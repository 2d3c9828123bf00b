"""Publishing DuckDB tables to a local Spark catalogue as Parquet, and copying Spark's tables back.

The Spark counterpart of :mod:`dagster_project.warehouse.postgres` for ``warehouse.engine: spark``:
dbt-spark's ``method: session``, a local PySpark inside recon's own process (install the ``spark``
extra; Java 17 on PATH). There is no Delta or Iceberg here (no Maven), so every table is plain Parquet:

- publish: DuckDB writes the table as one Parquet file (``COPY ... TO``) under
  ``<warehouse>/sources/<schema>/<table>/`` and the Spark catalogue registers that folder as an
  external table (``CREATE TABLE ... USING parquet LOCATION``). The whole table each time: Parquet files
  cannot be appended to in place, and the sources are small next to what dbt builds from them.
- serve: Spark writes a table it built (or one as-of day of a per-day history) as Parquet, and DuckDB
  reads it back (``read_parquet``) into the DuckDB file, each column cast to the type the model's
  contract declares (so the copy has the types a DuckDB build gives).

Both check the row count on both sides. The catalogue is an embedded Derby metastore in
``<warehouse>/metastore_db``, which one JVM at a time may open: so there is ONE Spark session per
process (:func:`spark_session`), made before the night's first publish and shared by the publisher,
dbt (dbt-spark's session cursor calls ``SparkSession.builder.getOrCreate()``, which returns it) and the
copy back; it ends with the process. Two processes on one warehouse at once are kept apart by recon's
run lock (one run of a config at a time).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.warehouse.copy_back import plan_copy_back, replace_in_duckdb
from ingestion.protocol import quote_ident as _quote

log = logging.getLogger(__name__)


class SparkPublishError(Exception):
    """A table could not be published to (or copied back from) Spark; the message says which and why."""


@dataclass(frozen=True)
class SparkTable:
    """What one publish ('replace': the whole table) or copy back ('replace', or 'day': one as-of day) did."""

    schema: str
    table: str
    mode: str
    rows: int


def spark_conf(warehouse: Path, cores: int = 2, driver_memory: str = "2g") -> dict[str, str]:
    """The Spark settings of a local session on ``warehouse`` (as profiles.yml's ``spark`` output)."""
    warehouse = Path(warehouse).resolve()
    return {
        "spark.master": f"local[{cores}]",
        "spark.driver.memory": driver_memory,
        "spark.sql.warehouse.dir": str(warehouse / "tables"),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={warehouse / 'metastore_db'};create=true",
        # Derby's log beside its database, not a derby.log in whatever folder recon was started from.
        "spark.driver.extraJavaOptions": f"-Dderby.stream.error.file={warehouse / 'derby.log'}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # A night's tables are small next to what Spark is made for: one shuffle partition and no
        # generated code per query (compiling it costs more than running it interpreted here).
        "spark.sql.shuffle.partitions": "1",
        "spark.sql.codegen.wholeStage": "false",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


def spark_session(warehouse: Path, cores: int = 2, driver_memory: str = "2g"):
    """This process's local Spark session on ``warehouse``, with a Hive catalogue (Derby): made on first use.

    Later calls, and dbt-spark's own ``getOrCreate()``, get the same session; it lives as long as the
    process (stopping it would leave dbt without one).

    Raises:
        SparkPublishError: this process already has a session on another warehouse.
    """
    from pyspark.sql import SparkSession

    conf = spark_conf(warehouse, cores, driver_memory)
    Path(warehouse).mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName("recon").enableHiveSupport()
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()  # the process's session if it has one (its static settings stay)
    held = str(session.conf.get("spark.sql.warehouse.dir")).removeprefix("file:")
    if Path(held).resolve() != Path(conf["spark.sql.warehouse.dir"]):
        raise SparkPublishError(
            f"this process's Spark session is on the warehouse {held}, not {conf['spark.sql.warehouse.dir']}: "
            "one process serves one Spark warehouse (its catalogue opens once per JVM)")
    return session



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


def _why(exc: BaseException) -> str:
    """The first line of a Spark (or DuckDB) error, without the JVM's stack trace."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SparkPublisher:
    """Publishes DuckDB tables to a Spark catalogue as Parquet-backed tables."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, spark, warehouse: Path) -> None:
        self.duck = duck
        self.spark = spark
        self.root = Path(warehouse).resolve() / "sources"

    def publish(self, schema: str, table: str) -> SparkTable:
        """Make Spark's ``schema.table`` hold exactly the DuckDB table's rows (the whole table).

        Raises:
            SparkPublishError: the table is not in the DuckDB file, Spark refused it, or the counts differ.
        """
        select = _select_list(self.duck, schema, table)
        folder = self.root / schema / table
        target = f"{_tick(schema)}.{_tick(table)}"
        try:
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            path = folder / "part-0.parquet"
            self.duck.execute(f"copy (select {select} from {_quote(schema)}.{_quote(table)}) "
                              f"to '{str(path).replace(chr(39), chr(39) * 2)}' (format parquet)")
            here = self.duck.execute(f"select count(*) from {_quote(schema)}.{_quote(table)}").fetchall()[0][0]
            self.spark.sql(f"create database if not exists {_tick(schema)}")
            self.spark.sql(f"drop table if exists {target}")
            self.spark.sql(f"create table {target} using parquet location '{folder.as_uri()}'")
            there = self.spark.sql(f"select count(*) from {target}").collect()[0][0]
        except Exception as exc:  # DuckDB's, the file system's, Py4J's and Spark's errors: no common base
            raise SparkPublishError(f"{schema}.{table} could not be published to Spark: {_why(exc)}") from exc
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

    def serve(self, schema: str, table: str, *, day_column: str | None = None, day=None,
              types: dict[str, str] | None = None) -> SparkTable:
        """Make the DuckDB file's ``schema.table`` equal Spark's (or, for a per-day history, its day).

        Args:
            schema: schema of the table on Spark, and of its copy in DuckDB.
            table: table or view name.
            day_column: the as-of day column of a per-day history; with ``day``, only that day's rows are
                replaced (the other days are the DuckDB copy's own, from earlier nights). A copy whose
                columns differ, or a view of that name, is replaced whole.
            day: the as-of day.
            types: DuckDB types of columns (the model's contract): each such column is cast to it;
                the others keep the type Parquet gives (Spark's TIMESTAMP comes back as naive UTC).

        Raises:
            SparkPublishError: Spark has no such table, the copy failed, or the counts differ (the
                DuckDB file is then left as it was).
        """
        folder = self.scratch / f"{schema}.{table}"
        try:
            frame = self.spark.table(f"{_tick(schema)}.{_tick(table)}")
            plan = plan_copy_back(self.duck, schema, table, [(n, None) for n in frame.columns], day_column, day)
            if plan.by_day:
                frame = frame.where(f"{_tick(day_column)} = date'{day}'")
            if folder.exists():
                shutil.rmtree(folder)
            there = frame.count()
            frame.coalesce(1).write.parquet(str(folder))
        except Exception as exc:  # Py4J and Spark's errors have no common base
            shutil.rmtree(folder, ignore_errors=True)
            raise SparkPublishError(f"{schema}.{table} could not be copied back from Spark: {_why(exc)}") from exc
        source = f"read_parquet('{folder}/*.parquet')"
        types = types or {}
        select = []
        for name, dtype, *_ in self.duck.execute(f"describe select * from {source}").fetchall():
            expr = _quote(name)
            if dtype.upper() == "TIMESTAMP WITH TIME ZONE":  # Parquet's UTC instant: naive UTC, as DuckDB builds
                expr = f"timezone('UTC', {expr})"
            if types.get(name):
                expr = f"cast({expr} as {types[name]})"
            select.append(f"{expr} as {_quote(name)}")
        try:
            here = replace_in_duckdb(self.duck, plan, f"select {', '.join(select)} from {source}",
                                     expected=there, error=SparkPublishError, engine="Spark")
        except (SparkPublishError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise SparkPublishError(f"{schema}.{table} could not be copied back from Spark: {_why(exc)}") from exc
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        log.info("copied back %s.%s from Spark: %s, %d rows", schema, table, plan.mode, here)
        return SparkTable(schema, table, plan.mode, here)
