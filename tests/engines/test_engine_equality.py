"""The same nights on every engine: `recon run` on DuckDB, on PostgreSQL and on Spark give the same reconciliation.

Demo days (data our generator made in its snapshot delivery, so full re-sends and deletions are in it)
run through `recon run` as a user runs it: once with the embedded default, once with
`warehouse.engine: postgres` on a real server started here, and once with `warehouse.engine: spark` on
a local Spark session (dbt-spark, method: session) inside recon's process. The three runs go side by
side. For each engine, every staging and mart table (all as-of days of the per-day histories) and the
exception store with its event log must equal DuckDB's; the engine must hold the marts analysts query;
a dry run on the engine's config must plan what DuckDB's plans and leave the engine as it was. Then the
dbt unit tests of the rules run on the Postgres target too. `make test-engines` runs this (CI does as
well, after installing the `spark` extra); the Spark case skips, saying why, without PySpark,
dbt-spark or Java.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
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
START = dt.date(2026, 10, 1)
LAST = START + dt.timedelta(days=DAYS - 1)
URL_ENV = "RECON_TEST_WAREHOUSE_URL"
# Columns that say when a row was landed: the runs land the same files at different times.
# And resolved_at of fct_exception_resolutions: the wall-clock time its event was recorded.
LANDING_TIME = {"_airbyte_extracted_at", "delivery_id", "resolved_at"}
# The store's own clock and ids (wall-clock times of writes, random ids of events and messages).
STORE_CLOCK = {"opened_at", "updated_at", "recorded_at", "event_id", "lineage"}


def _spark_missing() -> str | None:
    """Why the Spark case cannot run here, or None."""
    if find_spec("pyspark") is None:
        return "PySpark is not installed (pip install '.[spark]'; `make test-engines` installs it)"
    if find_spec("dbt.adapters.spark") is None:
        return "dbt-spark is not installed (pip install '.[spark]'; `make test-engines` installs it)"
    if not shutil.which("java"):
        return "Spark needs Java 17 on PATH"
    return None


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


@dataclass
class Nights:
    """The demo nights, run through `recon run` on each engine; ``outputs`` holds each run's failure output."""

    root: Path
    configs: dict[str, Path]
    env: dict[str, str]
    server: object
    outputs: dict[str, str]
    plans: dict[str, dict] = field(default_factory=dict)

    def duckdb_file(self, engine: str) -> Path:
        return self.root / engine / "warehouse.duckdb"


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    tmp_path = tmp_path_factory.mktemp("engines")
    data = tmp_path / "demo-data"
    rules = load_config(DEMO_CONFIG_PATH).rules.model_dump(mode="json", by_alias=True)
    generate(data, orders=300, days=DAYS, seed=13, start_date=START, rules=rules, delivery="snapshot")
    with postgres_server(tmp_path) as server:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("create database recon_wh")
        configs = {
            "duckdb": _config(tmp_path, "duckdb", data, {}),
            "postgres": _config(tmp_path, "postgres", data, {"warehouse": {"engine": "postgres",
                                                                           "url_env": URL_ENV}}),
        }
        if _spark_missing() is None:
            configs["spark"] = _config(tmp_path, "spark", data, {"warehouse": {"engine": "spark"}})
        env = {**os.environ, URL_ENV: server.url("recon_wh"), "RECON_END_DATE": LAST.isoformat()}
        for name in ("RECON_CONFIG", "RECON_HOME", "DAGSTER_HOME", "RECON_AS_OF_DATE"):
            env.pop(name, None)
        # The engines' nights run side by side, each as a user runs it.
        runs = {engine: subprocess.Popen(
            [str(RECON), "--config", str(path), "run", "--date", START.isoformat(), "--to", LAST.isoformat()],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for engine, path in configs.items()}
        outputs = {}
        for engine, run in runs.items():
            out, _ = run.communicate(timeout=1500)
            if run.returncode != 0:
                outputs[engine] = out[-6000:]
        assert "duckdb" not in outputs, f"duckdb:\n{outputs.get('duckdb')}"
        yield Nights(tmp_path, configs, env, server, outputs)


def _dry_run_plan(nights: Nights, engine: str) -> dict:
    if engine in nights.plans:
        return nights.plans[engine]
    dry = subprocess.run([str(RECON), "--config", str(nights.configs[engine]), "run", "--date", LAST.isoformat(),
                          "--dry-run", "--json"], env=nights.env, cwd=nights.root, capture_output=True, text=True,
                         timeout=600)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    nights.plans[engine] = json.loads(dry.stdout[dry.stdout.index("{"):])
    return nights.plans[engine]


def _assert_equal_to_duckdb(nights: Nights, engine: str) -> int:
    """Every staging and mart table and the exception store equal DuckDB's; the number of diff rows."""
    assert engine not in nights.outputs, f"recon run on {engine} failed:\n{nights.outputs[engine]}"
    with duckdb.connect(str(nights.duckdb_file("duckdb")), read_only=True) as duck, \
            duckdb.connect(str(nights.duckdb_file(engine)), read_only=True) as other:
        assert _tables(duck, "staging") == _tables(other, "staging")
        assert _tables(duck, "marts") == _tables(other, "marts")
        compared = 0
        for schema in ("staging", "marts"):
            for table in _tables(duck, schema):
                a, b = _rows(duck, f"{schema}.{table}", LANDING_TIME), _rows(other, f"{schema}.{table}", LANDING_TIME)
                assert a == b, f"{schema}.{table} differs: {len(a)} rows on DuckDB, {len(b)} on {engine}; first " \
                               f"differing: {next(((x, y) for x, y in zip(a, b, strict=False) if x != y), None)}"
                compared += len(a)
        days = {d for (d,) in duck.execute("select distinct as_of_date from marts.fct_order_diffs").fetchall()}
        assert len(days) == DAYS and compared > 3000
        for table in ("recon.exceptions", "recon.exception_events"):
            a, b = _rows(duck, table, STORE_CLOCK), _rows(other, table, STORE_CLOCK)
            assert a and a == b, f"{table} differs"
        return duck.execute("select count(*) from marts.fct_order_diffs").fetchall()[0][0]


def test_demo_nights_on_postgres_equal_those_on_duckdb(nights: Nights) -> None:
    diffs = _assert_equal_to_duckdb(nights, "postgres")
    server = nights.server
    # The engine holds what analysts query: the marts, and the published exception store.
    with psycopg.connect(server.url("recon_wh")) as pg:
        assert pg.execute("select count(*) from marts.fct_order_diffs").fetchone()[0] == diffs
        assert pg.execute("select count(*) from recon.exceptions").fetchone()[0] > 0
        before = pg.execute("select count(*), max(as_of_date) from marts.fct_order_diffs").fetchone()

    # A dry run of the last day on the Postgres config builds on a scratch DuckDB copy, plans what the
    # DuckDB config's dry run plans, and writes nothing to the engine.
    assert _dry_run_plan(nights, "postgres") == _dry_run_plan(nights, "duckdb")
    with psycopg.connect(server.url("recon_wh")) as pg:
        assert pg.execute("select count(*), max(as_of_date) from marts.fct_order_diffs").fetchone() == before

    # The rules' dbt unit tests on the Postgres target.
    cfg = load_config(nights.configs["postgres"])
    project = nights.root / "postgres" / "dbt" / "project"
    unit = subprocess.run(
        [str(DBT), "test", "--select", "test_type:unit", "--project-dir", str(project), "--profiles-dir",
         str(project), "--target-path", str(nights.root / "unit-target"),
         "--vars", json.dumps(cfg.dbt_vars(LAST))],
        env={**nights.env, "RECON_DBT_TARGET": "postgres", "RECON_PG_HOST": "127.0.0.1",
             "RECON_PG_PORT": str(server.port), "RECON_PG_USER": server.user,
             "RECON_PG_PASSWORD": server.password, "RECON_PG_DBNAME": "recon_wh",
             "RECON_DUCKDB_PATH": str(nights.root / "unused.duckdb")},
        capture_output=True, text=True, timeout=600)
    assert unit.returncode == 0, unit.stdout[-4000:]
    assert " ERROR=0 " in unit.stdout and "PASS=" in unit.stdout


@pytest.mark.skipif(_spark_missing() is not None, reason=_spark_missing() or "")
def test_demo_nights_on_spark_equal_those_on_duckdb(nights: Nights) -> None:
    diffs = _assert_equal_to_duckdb(nights, "spark")
    # The engine holds what analysts query: the marts as Parquet tables in the warehouse (read here with
    # DuckDB: the run's Spark session ended with it, and a second JVM on the catalogue is not needed).
    tables = nights.root / "spark" / "spark" / "tables"

    def parquet_rows(folder: str) -> int:
        with duckdb.connect() as con:
            return con.execute(f"select count(*) from read_parquet('{tables / folder}/**/*.parquet')").fetchall()[0][0]

    before = parquet_rows("marts.db/fct_order_diffs")
    assert before == diffs
    assert (nights.root / "spark" / "spark" / "metastore_db").is_dir()
    # A dry run on the Spark config builds on a scratch DuckDB copy (no Spark session), plans what the
    # DuckDB config's dry run plans, and writes nothing to the warehouse.
    assert _dry_run_plan(nights, "spark") == _dry_run_plan(nights, "duckdb")
    assert parquet_rows("marts.db/fct_order_diffs") == before
