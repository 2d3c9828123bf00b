"""The dbt project on a local Spark (dbt-spark, method: session) gives DuckDB's marts on demo days.

`recon run` does not run on Spark yet (no `warehouse.engine: spark`): this test takes a demo's DuckDB
file, publishes its source tables to a local Spark catalogue as Parquet (SparkPublisher), then builds
each day with `dbt build --target spark` and, on a copy of the file, with `--target duckdb`, and
compares the staging tables and the main marts (copied back with SparkServer) day by day. Skipped when
PySpark (the `spark` extra) or Java is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

pytestmark = [pytest.mark.engines, pytest.mark.slow]
pytest.importorskip("pyspark", reason="PySpark is not installed (pip install '.[spark]')")
pytest.importorskip("dbt.adapters.spark", reason="dbt-spark is not installed (pip install '.[spark]')")
if not shutil.which("java"):
    pytest.skip("Spark needs Java (17) on PATH", allow_module_level=True)

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config  # noqa: E402

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
DAYS = 2
MARTS = ("fct_order_diffs", "fct_orders", "fct_order_state_history", "fct_system_freshness")
# When the rows were landed (the delivery id carries the extraction time as text, spelt per engine).
LANDING_TIME = {"_airbyte_extracted_at", "delivery_id"}


def _spark_job(warehouse: Path, body: str) -> str:
    """Run ``body`` in a fresh Python with a Spark session ``spark`` (the Derby catalogue: one JVM at a time)."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" \
           "from dagster_project.warehouse.spark import *\n" \
           f"spark = spark_session({str(warehouse)!r})\n" + textwrap.dedent(body) + "\nspark.stop()\n"
    out = subprocess.run([str(BIN / "python"), "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout


def _dbt_build(project: Path, target: str, day: str, env: dict, target_path: Path) -> None:
    vars_json = json.dumps(load_config(DEMO_CONFIG_PATH).dbt_vars(day), default=str)
    out = subprocess.run(
        [str(BIN / "dbt"), "build", "--project-dir", str(project), "--profiles-dir", str(project),
         "--target", target, "--target-path", str(target_path), "--log-path", str(target_path),
         "--vars", vars_json, "--exclude", "test_type:unit"],
        env={**env, "RECON_DBT_TARGET": target}, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"dbt build --target {target} for {day}:\n{out.stdout[-6000:]}"


def _rows(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str, day: str,
          types: dict[str, str]) -> list[tuple]:
    where = f" where as_of_date <= date '{day}'" if "as_of_date" in types else ""
    cols = ", ".join(f'cast("{c}" as {t})' for c, t in sorted(types.items()))
    return con.execute(f"select {cols} from {catalog}.{schema}.{table}{where} order by all").fetchall()


def test_demo_days_on_spark_equal_those_on_duckdb(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "RECON_HOME": str(home)}
    for name in ("RECON_CONFIG", "DAGSTER_HOME", "RECON_AS_OF_DATE"):
        env.pop(name, None)
    demo = subprocess.run([str(BIN / "recon"), "demo", "--orders", "300", "--days", str(DAYS)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stdout[-4000:]
    duck_file = home / "warehouse.duckdb"
    with duckdb.connect(str(duck_file), read_only=True) as con:
        days = [d.isoformat() for (d,) in con.execute(
            "select distinct as_of_date from marts.fct_order_diffs order by 1").fetchall()]
    assert len(days) == DAYS
    base = tmp_path / "base.duckdb"
    shutil.copy(duck_file, base)
    warehouse = tmp_path / "spark"
    project = home / "dbt" / "project"
    env |= {"RECON_SPARK_WAREHOUSE": str(warehouse), "RECON_DUCKDB_PATH": str(base)}

    _spark_job(warehouse, f"""
        import duckdb
        duck = duckdb.connect({str(duck_file)!r}, read_only=True)
        tables = duck.execute("select table_schema, table_name from information_schema.tables "
                              "where table_schema like 'raw_%' order by 1, 2").fetchall()
        tables += [("recon_meta", "landed_files"), ("recon_meta", "contract_quarantined_ids"),
                   ("recon", "manual_matches"), ("recon", "exceptions"), ("recon", "exception_events")]
        publisher = SparkPublisher(duck, spark, {str(warehouse)!r})
        for schema, table in tables:
            publisher.publish(schema, table)
    """)

    for day in days:
        _dbt_build(project, "spark", day, env, tmp_path / "target-spark")
        _dbt_build(project, "duckdb", day, env, tmp_path / "target-duckdb")
        served = tmp_path / f"spark-{day}.duckdb"
        _spark_job(warehouse, f"""
            import duckdb
            out = duckdb.connect({str(served)!r})
            server = SparkServer(out, spark, {str(tmp_path / 'scratch')!r})
            for schema, table in [("marts", m) for m in {MARTS!r}] + [
                    ("staging", r.tableName) for r in spark.sql("show tables in staging").collect()
                    if not r.isTemporary]:
                server.serve(schema, table)
            out.close()
        """)
        con = duckdb.connect()
        con.execute(f"attach '{base}' as d (read_only)")
        con.execute(f"attach '{served}' as s (read_only)")
        staging = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'd' "
            "and table_schema = 'staging' order by 1").fetchall()]
        assert staging, "no staging tables"
        compared = 0
        for schema, table in [("staging", t) for t in staging] + [("marts", m) for m in MARTS]:
            types = {c: t for c, t in con.execute(
                "select column_name, data_type from information_schema.columns where table_catalog = 'd' "
                "and table_schema = ? and table_name = ?", [schema, table]).fetchall() if c not in LANDING_TIME}
            a = _rows(con, "d", schema, table, day, types)
            b = _rows(con, "s", schema, table, day, types)
            assert a == b, f"{day} {schema}.{table}: {len(a)} rows on DuckDB, {len(b)} on Spark; first differing: " \
                           f"{next(((x, y) for x, y in zip(a, b, strict=False) if x != y), None)}"
            compared += len(a)
        assert compared > 1000
        con.close()
