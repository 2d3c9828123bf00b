"""The engine the dbt project runs on: the embedded DuckDB file (default), PostgreSQL or Spark (``warehouse:``).

On ``duckdb`` nothing here is used: dbt reads and writes the one DuckDB file. On ``postgres`` and
``spark`` the night goes:

1. landing and the contracts write the DuckDB file, as on ``duckdb`` (the bad-input policy has one
   implementation);
2. before each dbt step, the tables that step reads as sources are published to the engine in bulk
   (``publish_sources``: on Postgres the raw tables' new rows and the bookkeeping and exception tables
   whole, by ``COPY``; on Spark every table whole, as Parquet);
3. dbt builds on the engine (dbt-postgres, or dbt-spark in this process's Spark session; the same
   models, engine-specific SQL only behind ``adapter.dispatch`` in ``dbt_project/macros``);
4. the staging and mart tables the step built are copied back into the DuckDB file (``serve_results``:
   the as-of day's rows of a per-day history, other tables whole), so the exceptions, notifications,
   reports and the CLI read them there, fast and without the network.

Analysts query the engine; the platform's own state (landing, contracts, the exception store and its
event log, the outbox) stays in the DuckDB file, of which the engine holds a published copy.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from urllib.parse import unquote, urlsplit

from dagster_project.config.model import ReconConfig
from dagster_project.lib.errors import PlainError

# profiles.yml reads these: the target; for postgres the connection (never written to a file), for spark
# the warehouse folder.
TARGET_ENV = "RECON_DBT_TARGET"
PG_ENV = ("RECON_PG_HOST", "RECON_PG_PORT", "RECON_PG_USER", "RECON_PG_PASSWORD", "RECON_PG_DBNAME")
SPARK_ENV = "RECON_SPARK_WAREHOUSE"


class WarehouseError(PlainError):
    """The configured engine cannot be reached or is not set up; the message says what to set."""


def postgres_url(config: ReconConfig) -> str:
    """The engine's ``postgresql://`` URL from the variable ``warehouse.url_env`` names.

    Raises:
        WarehouseError: the variable is unset or holds something else than a postgresql:// URL.
    """
    variable = config.warehouse.url_env
    url = os.environ.get(variable, "")
    if not url:
        raise WarehouseError(
            f"warehouse.engine is postgres but ${variable} is not set: set it to the database's URL "
            "(postgresql://user:password@host:5432/db)")
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.path.strip("/"):
        raise WarehouseError(
            f"${variable} must be a URL like postgresql://user:password@host:5432/db "
            f"(it starts with {parts.scheme or url[:12]!r}{' and names no database' if parts.scheme else ''})")
    return url


def dbt_env(config: ReconConfig) -> dict[str, str]:
    """The environment profiles.yml reads to run dbt on this config's engine."""
    if config.warehouse.engine == "duckdb":
        return {TARGET_ENV: "duckdb"}
    if config.warehouse.engine == "spark":
        return {TARGET_ENV: "spark", SPARK_ENV: str(config.spark_warehouse)}
    parts = urlsplit(postgres_url(config))
    values = (parts.hostname or "", str(parts.port or 5432), unquote(parts.username or ""),
              unquote(parts.password or ""), parts.path.strip("/"))
    return {TARGET_ENV: "postgres", **dict(zip(PG_ENV, values, strict=True))}


def check_spark() -> None:
    """That this machine can run the dbt project on a local Spark: PySpark, dbt-spark and Java.

    Nothing is started (a session takes seconds, and the warehouse's catalogue opens in one process at
    a time: a run may hold it).

    Raises:
        WarehouseError: naming what is missing and how to install it.
    """
    missing = [name for name, module in (("pyspark", "pyspark"), ("dbt-spark", "dbt.adapters.spark"))
               if _find_module(module) is None]
    if missing:
        raise WarehouseError(
            f"warehouse.engine is spark but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
            "installed: pip install '.[spark]' (in a clone of the project; it needs Java 17 on PATH)")
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK)):
        raise WarehouseError(
            "warehouse.engine is spark but Java is not on PATH (nor in $JAVA_HOME/bin): Spark needs Java 17, "
            "e.g. apt-get install openjdk-17-jre-headless")


def _find_module(name: str):
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:  # a parent package is missing
        return None


def where_is(config: ReconConfig) -> str:
    """Where the engine is, for a line of ``recon config validate`` (no credentials)."""
    if config.warehouse.engine == "spark":
        return f"a local Spark session, its tables in {config.spark_warehouse}"
    return f"{where_of(postgres_url(config))} (${config.warehouse.url_env})"


def check_engine(config: ReconConfig) -> None:
    """That the configured engine can be used now (Postgres: reachable, logged into, byte-wise text order).

    Raises:
        WarehouseError: saying what is wrong and what to do.
    """
    if config.warehouse.engine == "spark":
        check_spark()
    elif config.warehouse.engine == "postgres":
        connect_postgres(config).close()


def connect_postgres(config: ReconConfig):
    """A psycopg connection to the engine, in autocommit mode, its session in UTC.

    Raises:
        WarehouseError: the server cannot be reached or refuses the login (the message says which).
    """
    import psycopg

    url = postgres_url(config)
    try:
        con = psycopg.connect(url, autocommit=True, connect_timeout=30)
    except psycopg.OperationalError as exc:
        raise WarehouseError(
            f"cannot connect to the warehouse at {where_of(url)} "
            f"(${config.warehouse.url_env}): {str(exc).strip().splitlines()[-1]}") from None
    con.execute("set timezone = 'UTC'")
    # Byte order puts 'B' (0x42) before 'a' (0x61); any locale, libc or ICU, puts 'a' first.
    by_locale, collation = con.execute(
        "select 'a' < 'B', datcollate from pg_database where datname = current_database()").fetchone()
    if by_locale:
        con.close()
        raise WarehouseError(
            f"the warehouse database {where_of(url)} sorts text by a locale (datcollate {collation}, or an ICU locale); the reconciliation "
            "compares and orders text byte by byte, as DuckDB does, so that both engines give the same "
            "results: create the database with CREATE DATABASE <name> LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0")
    return con


def where_of(url: str) -> str:
    """host:port/database of a URL, without its credentials (for messages)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}/{parts.path.strip('/')}"


def publish_sources(config: ReconConfig, manifest: dict, *, after_exceptions: bool) -> list:
    """Publish to the engine the tables a dbt step reads as sources (the manifest's ``sources``).

    The first step reads the raw tables and the bookkeeping; the second the exception store. On
    Postgres a raw table sends its new rows only, the others whole; on Spark every table is sent whole
    (a Parquet file each). A source table the DuckDB file does not hold yet (a stream never landed, no
    manual match ever made) is left out; the step's models then fail or read nothing, as on DuckDB.
    """
    from dagster_project.lib.database import connect, table_exists

    wanted = sorted({(s["schema"], s["name"]) for s in manifest["sources"].values()
                     if (s["source_name"] == "exception_store") == after_exceptions})
    duck = connect(config.duckdb_path, read_only=True)
    try:
        present = [(schema, table) for schema, table in wanted if table_exists(duck, schema, table)]
        if config.warehouse.engine == "spark":
            from dagster_project.warehouse.spark import SparkPublisher

            publisher = SparkPublisher(duck, _spark(config), config.spark_warehouse)
            return [publisher.publish(schema, table) for schema, table in present]
        from dagster_project.warehouse.postgres import EXTRACTED_AT, PostgresPublisher

        pg = connect_postgres(config)
        try:
            publisher = PostgresPublisher(duck, pg)
            return [publisher.publish(schema, table, append_by=EXTRACTED_AT if schema.startswith("raw_") else None)
                    for schema, table in present]
        finally:
            pg.close()
    finally:
        duck.close()


def _spark(config: ReconConfig):
    """This process's Spark session on the config's warehouse (dbt-spark's session mode then uses it too)."""
    from dagster_project.warehouse.spark import spark_session

    check_spark()
    return spark_session(config.spark_warehouse)


# The schemas whose tables the platform reads after dbt (the exception store, reports, the CLI).
SERVED_SCHEMAS = ("staging", "marts")


def serve_results(config: ReconConfig, manifest: dict, run_results: dict, as_of: str) -> list:
    """Copy back into the DuckDB file the staging and mart models a dbt step built on the engine.

    A per-day history (an incremental model) has only the as-of day's rows replaced; any other model
    is copied whole. On Spark each column a model's contract declares is cast to its declared type (the
    contracts are DuckDB's and Postgres's; Spark spells types otherwise and does not enforce them).
    """
    from dagster_project.lib.database import connect

    built = [manifest["nodes"][r["unique_id"]] for r in run_results["results"]
             if r["unique_id"].startswith("model.") and r["status"] == "success"]
    built = [n for n in built if n["schema"] in SERVED_SCHEMAS]
    if not built:
        return []
    duck = connect(config.duckdb_path)
    try:
        if config.warehouse.engine == "spark":
            from dagster_project.warehouse.spark import SparkServer

            spark = SparkServer(duck, _spark(config), config.state_dir / "warehouse")

            def serve(node: dict, **day):
                declared = {name: c["data_type"] for name, c in node.get("columns", {}).items() if c.get("data_type")}
                return spark.serve(node["schema"], node["alias"] or node["name"], **day, types=declared)

            return _serve_each(built, as_of, serve)
        from dagster_project.warehouse.postgres import PostgresServer

        pg = connect_postgres(config)
        try:
            server = PostgresServer(duck, pg, config.state_dir / "warehouse")
            return _serve_each(built, as_of, lambda node, **day: server.serve(
                node["schema"], node["alias"] or node["name"], **day))
        finally:
            pg.close()
    finally:
        duck.close()


def _serve_each(built: list[dict], as_of: str, serve) -> list:
    out = []
    for node in built:
        daily = node["config"].get("materialized") == "incremental"
        out.append(serve(node, day_column="as_of_date" if daily else None, day=as_of if daily else None))
    return out
