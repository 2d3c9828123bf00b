"""The same nights on every engine: `recon run` on DuckDB and on PostgreSQL give the same reconciliation.

Demo days (data our generator made in its snapshot delivery, so full re-sends and deletions are in it)
run through `recon run` as a user runs it, once with the embedded default and once with
`warehouse.engine: postgres` on a real server started here. Every staging and mart table, per as-of day
where the table keeps days, and the exception store with its event log must be equal; then the dbt
unit tests of the rules run on the Postgres target too. `make test-engines` runs this (CI does as well).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import psycopg
import pytest
import yaml
from pg_server import postgres_server

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from ingestion.demo.generator import generate

pytestmark = pytest.mark.engines
RECON = Path(sys.executable).with_name("recon")
DBT = Path(sys.executable).with_name("dbt")
DAYS = 3
URL_ENV = "RECON_TEST_WAREHOUSE_URL"
# Columns that say when a row was landed: the two runs land the same files at different times.
# And resolved_at of fct_exception_resolutions: the wall-clock time its event was recorded.
LANDING_TIME = {"_airbyte_extracted_at", "delivery_id", "resolved_at"}
# The store's own clock and ids (wall-clock times of writes, random ids of events and messages).
STORE_CLOCK = {"opened_at", "updated_at", "recorded_at", "event_id", "lineage"}


def _config(tmp_path: Path, name: str, data: Path, extra: dict) -> Path:
    raw = yaml.safe_load(DEMO_CONFIG_PATH.read_text())
    raw.update(extra)
    home = tmp_path / name
    text = yaml.safe_dump(raw).replace("${RECON_HOME:-.recon}", str(home)).replace(
        "${RECON_DEMO_DATA:-.recon/demo-data}", str(data))
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    return [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = ? order by 1", [schema]).fetchall()]


def _rows(con: duckdb.DuckDBPyConnection, table: str, skip: set[str]) -> list[tuple]:
    schema, name = table.split(".")
    columns = [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by column_name", [schema, name]).fetchall() if c not in skip]
    return con.execute(f"select {', '.join(columns)} from {table} order by all").fetchall()


def test_demo_nights_on_postgres_equal_those_on_duckdb(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    start = dt.date(2026, 10, 1)
    rules = load_config(DEMO_CONFIG_PATH).rules.model_dump(mode="json", by_alias=True)
    generate(data, orders=300, days=DAYS, seed=13, start_date=start, rules=rules, delivery="snapshot")
    last = start + dt.timedelta(days=DAYS - 1)
    with postgres_server(tmp_path) as server:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("create database recon_wh")
        configs = {
            "duckdb": _config(tmp_path, "duckdb", data, {}),
            "postgres": _config(tmp_path, "postgres", data, {"warehouse": {"engine": "postgres",
                                                                           "url_env": URL_ENV}}),
        }
        env = {**os.environ, URL_ENV: server.url("recon_wh"), "RECON_END_DATE": last.isoformat()}
        for name in ("RECON_CONFIG", "RECON_HOME", "DAGSTER_HOME", "RECON_AS_OF_DATE"):
            env.pop(name, None)
        # The two engines' nights run side by side, each as a user runs it.
        runs = {engine: subprocess.Popen(
            [str(RECON), "--config", str(path), "run", "--date", start.isoformat(), "--to", last.isoformat()],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for engine, path in configs.items()}
        for engine, run in runs.items():
            out, _ = run.communicate(timeout=600)
            assert run.returncode == 0, f"{engine}:\n{out[-4000:]}"

        duck = duckdb.connect(str(tmp_path / "duckdb" / "warehouse.duckdb"), read_only=True)
        onpg = duckdb.connect(str(tmp_path / "postgres" / "warehouse.duckdb"), read_only=True)
        assert _tables(duck, "staging") == _tables(onpg, "staging")
        assert _tables(duck, "marts") == _tables(onpg, "marts")
        compared = 0
        for schema in ("staging", "marts"):
            for table in _tables(duck, schema):
                a, b = _rows(duck, f"{schema}.{table}", LANDING_TIME), _rows(onpg, f"{schema}.{table}", LANDING_TIME)
                assert a == b, f"{schema}.{table} differs: {len(a)} rows on DuckDB, {len(b)} on Postgres; first " \
                               f"differing: {next(((x, y) for x, y in zip(a, b, strict=False) if x != y), None)}"
                compared += len(a)
        days = {d for (d,) in duck.execute("select distinct as_of_date from marts.fct_order_diffs").fetchall()}
        assert len(days) == DAYS and compared > 3000
        for table in ("recon.exceptions", "recon.exception_events"):
            a, b = _rows(duck, table, STORE_CLOCK), _rows(onpg, table, STORE_CLOCK)
            assert a and a == b, f"{table} differs"

        # The engine holds what analysts query: the marts, and the published exception store.
        with psycopg.connect(server.url("recon_wh")) as pg:
            assert pg.execute("select count(*) from marts.fct_order_diffs").fetchone()[0] == \
                duck.execute("select count(*) from marts.fct_order_diffs").fetchall()[0][0]
            assert pg.execute("select count(*) from recon.exceptions").fetchone()[0] > 0

        duck.close()  # a dry run checkpoints the file before copying it: no reader may hold it
        onpg.close()

        # A dry run of the last day on the Postgres config builds on a scratch DuckDB copy, plans what the
        # DuckDB config's dry run plans, and writes nothing to the engine.
        with psycopg.connect(server.url("recon_wh")) as pg:
            before = pg.execute("select count(*), max(as_of_date) from marts.fct_order_diffs").fetchone()
        plans = {}
        for engine, path in configs.items():
            dry = subprocess.run([str(RECON), "--config", str(path), "run", "--date", last.isoformat(), "--dry-run",
                                  "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
            assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
            plans[engine] = json.loads(dry.stdout[dry.stdout.index("{"):])
        assert plans["postgres"] == plans["duckdb"]
        with psycopg.connect(server.url("recon_wh")) as pg:
            assert pg.execute("select count(*), max(as_of_date) from marts.fct_order_diffs").fetchone() == before

        # The rules' dbt unit tests on the Postgres target.
        cfg = load_config(configs["postgres"])
        project = tmp_path / "postgres" / "dbt" / "project"
        unit = subprocess.run(
            [str(DBT), "test", "--select", "test_type:unit", "--project-dir", str(project), "--profiles-dir",
             str(project), "--target-path", str(tmp_path / "unit-target"),
             "--vars", json.dumps(cfg.dbt_vars(last))],
            env={**env, "RECON_DBT_TARGET": "postgres", "RECON_PG_HOST": "127.0.0.1",
                 "RECON_PG_PORT": str(server.port), "RECON_PG_USER": server.user,
                 "RECON_PG_PASSWORD": server.password, "RECON_PG_DBNAME": "recon_wh",
                 "RECON_DUCKDB_PATH": str(tmp_path / "unused.duckdb")},
            capture_output=True, text=True, timeout=600)
        assert unit.returncode == 0, unit.stdout[-4000:]
        assert " ERROR=0 " in unit.stdout and "PASS=" in unit.stdout
