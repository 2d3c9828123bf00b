"""The engine the dbt project runs on: the embedded DuckDB file (default) or PostgreSQL (``warehouse:``).

On ``duckdb`` nothing here is used: dbt reads and writes the one DuckDB file. On ``postgres`` the night
goes:

1. landing and the contracts write the DuckDB file, as on ``duckdb`` (the bad-input policy has one
   implementation);
2. before each dbt step, the tables that step reads as sources are published to the engine in bulk
   (``publish``: the raw tables' new rows, the bookkeeping and exception tables whole);
3. dbt builds on the engine (dbt-postgres, the same models; engine-specific SQL only behind
   ``adapter.dispatch`` in ``dbt_project/macros``);
4. the staging and mart tables the step built are copied back into the DuckDB file (``serve``: the
   as-of day's rows of a per-day history, other tables whole), so the exceptions, notifications,
   reports and the CLI read them there, fast and without the network.

Analysts query the engine; the platform's own state (landing, contracts, the exception store and its
event log, the outbox) stays in the DuckDB file, of which the engine holds a published copy.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from dagster_project.config.model import ReconConfig
from dagster_project.lib.errors import PlainError

# profiles.yml reads these: the target, and for postgres the connection (never written to a file).
TARGET_ENV = "RECON_DBT_TARGET"
PG_ENV = ("RECON_PG_HOST", "RECON_PG_PORT", "RECON_PG_USER", "RECON_PG_PASSWORD", "RECON_PG_DBNAME")


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
    parts = urlsplit(postgres_url(config))
    values = (parts.hostname or "", str(parts.port or 5432), unquote(parts.username or ""),
              unquote(parts.password or ""), parts.path.strip("/"))
    return {TARGET_ENV: "postgres", **dict(zip(PG_ENV, values, strict=True))}


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

    The first step reads the raw tables (new rows only) and the bookkeeping; the second the exception
    store (whole). A source table the DuckDB file does not hold yet (a stream never landed, no manual
    match ever made) is left out; the step's models then fail or read nothing, as on DuckDB.
    """
    from dagster_project.lib.database import connect, table_exists
    from dagster_project.warehouse.postgres import EXTRACTED_AT, PostgresPublisher

    wanted = sorted({(s["schema"], s["name"]) for s in manifest["sources"].values()
                     if (s["source_name"] == "exception_store") == after_exceptions})
    duck = connect(config.duckdb_path, read_only=True)
    pg = connect_postgres(config)
    try:
        publisher = PostgresPublisher(duck, pg)
        return [publisher.publish(schema, table, append_by=EXTRACTED_AT if schema.startswith("raw_") else None)
                for schema, table in wanted if table_exists(duck, schema, table)]
    finally:
        pg.close()
        duck.close()


# The schemas whose tables the platform reads after dbt (the exception store, reports, the CLI).
SERVED_SCHEMAS = ("staging", "marts")


def serve_results(config: ReconConfig, manifest: dict, run_results: dict, as_of: str) -> list:
    """Copy back into the DuckDB file the staging and mart models a dbt step built on the engine.

    A per-day history (an incremental model) has only the as-of day's rows replaced; any other model
    is copied whole.
    """
    from dagster_project.lib.database import connect
    from dagster_project.warehouse.postgres import PostgresServer

    built = [manifest["nodes"][r["unique_id"]] for r in run_results["results"]
             if r["unique_id"].startswith("model.") and r["status"] == "success"]
    built = [n for n in built if n["schema"] in SERVED_SCHEMAS]
    if not built:
        return []
    duck = connect(config.duckdb_path)
    pg = connect_postgres(config)
    try:
        server = PostgresServer(duck, pg, config.state_dir / "warehouse")
        out = []
        for node in built:
            daily = node["config"].get("materialized") == "incremental"
            out.append(server.serve(node["schema"], node["alias"] or node["name"],
                                    day_column="as_of_date" if daily else None, day=as_of if daily else None))
        return out
    finally:
        pg.close()
        duck.close()
