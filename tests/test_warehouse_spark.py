"""`warehouse.engine: spark`: its settings, `recon config validate`, and publishing and copying back on a real
local Spark session (dagster_project.warehouse.spark).

The config and validate tests run everywhere (`make test`); the round trip needs PySpark, dbt-spark and
Java, and is an engine test (`make test-engines`, which installs the `spark` extra). Whole nights on Spark
beside DuckDB: tests/engines/test_engine_equality.py.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from decimal import Decimal
from importlib.util import find_spec
from pathlib import Path

import duckdb
import pytest
import yaml

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.warehouse import dbt_env

SPARK_MISSING = ("PySpark is not installed (pip install '.[spark]')" if find_spec("pyspark") is None
                 else "Spark needs Java 17 on PATH" if not shutil.which("java") else None)


def _config(tmp_path: Path, warehouse: dict):
    raw = yaml.safe_load(DEMO_CONFIG_PATH.read_text())
    raw["warehouse"] = warehouse
    path = tmp_path / "recon.yaml"
    path.write_text(yaml.safe_dump(raw).replace("${RECON_HOME:-.recon}", str(tmp_path / "home")))
    return load_config(path)


def test_the_spark_warehouse_lives_in_the_state_folder_unless_configured(tmp_path: Path) -> None:
    cfg = _config(tmp_path, {"engine": "spark"})
    assert cfg.spark_warehouse == (tmp_path / "home" / "spark").resolve()
    assert dbt_env(cfg) == {"RECON_DBT_TARGET": "spark", "RECON_SPARK_WAREHOUSE": str(cfg.spark_warehouse)}
    elsewhere = _config(tmp_path, {"engine": "spark", "spark_dir": str(tmp_path / "lake")})
    assert elsewhere.spark_warehouse == (tmp_path / "lake").resolve()


def test_config_validate_names_spark_or_says_what_to_install(tmp_path: Path, recon_home: Path) -> None:
    from click.testing import CliRunner

    from dagster_project.cli import cli

    cfg = _config(tmp_path, {"engine": "spark"})
    args = ["--config", str(cfg.source_file), "config", "validate"]
    # Without Java on PATH (only the venv's bin), with JAVA_HOME unset: refused, naming Java (or, without
    # the spark extra, naming what to install first).
    bare = CliRunner().invoke(cli, args, obj={}, env={"PATH": str(Path(sys.executable).parent), "JAVA_HOME": None})
    assert bare.exit_code != 0
    if find_spec("pyspark") is None or find_spec("dbt.adapters.spark") is None:
        assert "warehouse: warehouse.engine is spark but" in bare.output
        assert "pip install '.[spark]'" in bare.output
    else:
        assert "warehouse: warehouse.engine is spark but Java is not on PATH" in bare.output
    if SPARK_MISSING is None and find_spec("dbt.adapters.spark") is not None:
        ok = CliRunner().invoke(cli, args, obj={}, env={"PATH": os.environ["PATH"]})
        assert ok.exit_code == 0, ok.output
        assert f"warehouse: spark at a local Spark session, its tables in {cfg.spark_warehouse}" in ok.output


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    if SPARK_MISSING:
        pytest.skip(SPARK_MISSING)
    from dagster_project.warehouse.spark import spark_session

    warehouse = tmp_path_factory.mktemp("spark")
    session = spark_session(warehouse)
    yield session, warehouse
    session.stop()


@pytest.mark.engines
def test_a_table_goes_to_spark_and_a_day_comes_back_with_the_contract_types(spark, tmp_path: Path) -> None:
    from dagster_project.warehouse.spark import SparkPublisher, SparkPublishError, SparkServer, spark_session

    session, warehouse = spark
    assert spark_session(warehouse) is session  # one session per process, dbt-spark's getOrCreate() gets it too
    with pytest.raises(SparkPublishError, match="one process serves one Spark warehouse"):
        spark_session(tmp_path / "other")
    duck = duckdb.connect(str(tmp_path / "w.duckdb"))
    duck.execute("set TimeZone = 'UTC'")
    duck.execute("create schema raw_acme")
    # What is easy to lose on the way: empty text beside NULL, JSON, a list, an exact decimal, a naive and
    # an aware timestamp, a quote and a newline in the text.
    duck.execute("""create table raw_acme.sales (ref varchar, note varchar, payload json, tags varchar[],
        amount decimal(18,4), seen timestamp, _airbyte_extracted_at timestamptz)""")
    duck.execute("""insert into raw_acme.sales values
        ('A-1', '', '{"a": {"b": 1}}', ['x', 'y'], 12.3400, '2026-10-01 03:04:05', '2026-10-01 02:00:00+02'),
        ('A-2', null, null, null, null, null, null),
        ('A-"3"', 'two
lines', '[1, 2]', [], -0.0001, '2026-10-02 00:00:00', '2026-10-02 02:00:00+02')""")
    publisher = SparkPublisher(duck, session, warehouse)
    assert publisher.publish("raw_acme", "sales").rows == 3
    rows = session.sql("select ref, note, get_json_object(payload, '$.a.b'), tags, amount, seen, "
                       "_airbyte_extracted_at from raw_acme.sales order by ref").collect()
    assert [tuple(r) for r in rows] == [
        ("A-\"3\"", "two\nlines", None, "[]", Decimal("-0.0001"), dt.datetime(2026, 10, 2), dt.datetime(2026, 10, 2)),
        ("A-1", "", "1", '["x","y"]', Decimal("12.3400"), dt.datetime(2026, 10, 1, 3, 4, 5),
         dt.datetime(2026, 10, 1)),
        ("A-2", None, None, None, None, None, None)]
    with pytest.raises(SparkPublishError, match="raw_acme.nothing does not exist in the DuckDB file"):
        publisher.publish("raw_acme", "nothing")

    # A per-day history built on Spark: the first copy is whole, later ones replace only their day.
    session.sql("create database if not exists marts")
    session.sql("create table marts.history using parquet as select date'2026-10-01' as as_of_date, "
                "'SO-1' as order_id, cast(1.5 as decimal(38,6)) as amount, timestamp'2026-10-01 05:00:00' as seen_at")
    server = SparkServer(duck, session, tmp_path / "scratch")
    types = {"amount": "decimal(20,4)", "order_id": "varchar"}
    first = server.serve("marts", "history", day_column="as_of_date", day=dt.date(2026, 10, 1), types=types)
    assert (first.mode, first.rows) == ("replace", 1)
    session.sql("insert into marts.history select date'2026-10-02', 'SO-9', 9, timestamp'2026-10-02 06:00:00'")
    day = server.serve("marts", "history", day_column="as_of_date", day=dt.date(2026, 10, 2), types=types)
    assert (day.mode, day.rows) == ("day", 1)
    assert duck.execute("select * from marts.history order by all").fetchall() == [
        (dt.date(2026, 10, 1), "SO-1", Decimal("1.5000"), dt.datetime(2026, 10, 1, 5)),
        (dt.date(2026, 10, 2), "SO-9", Decimal("9.0000"), dt.datetime(2026, 10, 2, 6))]
    assert duck.execute("select data_type from information_schema.columns where table_name = 'history' "
                        "order by ordinal_position").fetchall() == [
        ("DATE",), ("VARCHAR",), ("DECIMAL(20,4)",), ("TIMESTAMP",)]
    with pytest.raises(SparkPublishError, match="marts.missing could not be copied back from Spark: .*"):
        server.serve("marts", "missing")
    assert not list((tmp_path / "scratch").iterdir())  # no scratch file left behind
    duck.close()
