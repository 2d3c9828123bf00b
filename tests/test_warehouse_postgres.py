"""Publishing landed tables to a PostgreSQL warehouse and copying built tables back (dagster_project.warehouse).

Real DuckDB files and a real PostgreSQL server started by the test. The end-to-end equality of whole
nights on both engines is tests/engines/test_engine_equality.py (`make test-engines`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest
import yaml
from pg_server import postgres_server

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.warehouse import WarehouseError, connect_postgres, dbt_env, postgres_url
from dagster_project.warehouse.postgres import PostgresPublisher, PostgresServer, PublishError


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with postgres_server(tmp_path_factory.mktemp("pg")) as running:
        yield running


@pytest.fixture
def pg(server):
    name = f"wh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f"create database {name}")
    con = psycopg.connect(server.url(name), autocommit=True)
    con.execute("set timezone = 'UTC'")
    yield con
    con.close()


@pytest.fixture
def duck(tmp_path: Path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("set TimeZone = 'UTC'")
    con.execute("create schema raw_acme")
    # A raw table as landing writes one, with the shapes that are easy to lose on the way: empty text
    # beside NULL, JSON, a list, a time zone, an exact decimal, a quote and a newline in the text.
    con.execute("""create table raw_acme.sales (
        ref varchar, note varchar, payload json, tags varchar[], amount decimal(18,4), ok boolean,
        _airbyte_raw_id varchar, _airbyte_extracted_at timestamptz)""")
    con.execute("""insert into raw_acme.sales values
        ('A-1', '', '{"a": {"b": 1}}', ['x', 'y'], 12.3400, true, '1-0', '2026-10-01 02:00:00+02'),
        ('A-2', null, null, null, null, null, '1-1', '2026-10-01 02:00:00+02'),
        ('A-"3"', 'two
lines, and "quotes"', '[1, 2]', [], -0.0001, false, '1-2', '2026-10-01 02:00:00+02')""")
    yield con
    con.close()


def _rows(pg, query: str) -> list[tuple]:
    with pg.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()


def test_a_raw_table_is_published_whole_first_then_only_its_new_rows(duck, pg) -> None:
    publisher = PostgresPublisher(duck, pg)
    first = publisher.publish("raw_acme", "sales")
    assert (first.mode, first.rows, first.reason) == ("replace", 3, "new table")
    got = _rows(pg, "select ref, note, payload #>> '{a,b}', tags, amount, ok, _airbyte_extracted_at "
                    "from raw_acme.sales order by _airbyte_raw_id")
    assert got[0] == ("A-1", "", "1", ["x", "y"], Decimal("12.3400"), True,
                      dt.datetime(2026, 10, 1, 0, 0, tzinfo=dt.UTC))
    assert got[1] == ("A-2", None, None, None, None, None, dt.datetime(2026, 10, 1, 0, 0, tzinfo=dt.UTC))
    assert got[2][:5] == ('A-"3"', 'two\nlines, and "quotes"', None, [], Decimal("-0.0001"))
    assert _rows(pg, "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = "
                     "'raw_acme.sales'::regclass and attname in ('payload', 'tags') order by attnum") == [
        ("jsonb",), ("jsonb",)]

    assert publisher.publish("raw_acme", "sales").mode == "unchanged"
    duck.execute("insert into raw_acme.sales (ref, _airbyte_raw_id, _airbyte_extracted_at) "
                 "values ('B-1', '2-0', '2026-10-02 01:00:00+00')")
    second = publisher.publish("raw_acme", "sales")
    assert (second.mode, second.rows) == ("append", 1)
    assert _rows(pg, "select count(*) from raw_acme.sales") == [(4,)]


def test_a_retyped_or_shrunk_raw_table_is_published_whole_again(duck, pg) -> None:
    publisher = PostgresPublisher(duck, pg)
    publisher.publish("raw_acme", "sales")
    duck.execute("alter table raw_acme.sales add column region varchar")  # schema evolution on landing
    duck.execute("insert into raw_acme.sales (ref, region, _airbyte_raw_id, _airbyte_extracted_at) "
                 "values ('C-1', 'north', '2-0', '2026-10-02 01:00:00+00')")
    evolved = publisher.publish("raw_acme", "sales")  # the column is added there too; still only new rows
    assert (evolved.mode, evolved.rows) == ("append", 1)
    assert _rows(pg, "select ref, region from raw_acme.sales order by ref") == [
        ('A-"3"', None), ("A-1", None), ("A-2", None), ("C-1", "north")]
    # An analyst's view on a raw table is not dropped behind their back when the table must be recreated.
    pg.execute("create view public.sales_view as select ref from raw_acme.sales")
    duck.execute("alter table raw_acme.sales alter column amount type double")  # retyped
    with pytest.raises(PublishError, match=r"raw_acme\.sales must be recreated .*its columns changed.*sales_view"):
        publisher.publish("raw_acme", "sales")
    pg.execute("drop view public.sales_view")
    retyped = publisher.publish("raw_acme", "sales")
    assert (retyped.mode, retyped.reason, retyped.rows) == ("replace", "its columns changed", 4)
    duck.execute("delete from raw_acme.sales where ref = 'A-2'")  # a full-refresh stream's dedup
    shrunk = publisher.publish("raw_acme", "sales")
    assert shrunk.mode == "replace" and "differ" in shrunk.reason
    assert _rows(pg, "select ref from raw_acme.sales order by ref") == [('A-"3"',), ("A-1",), ("C-1",)]
    # A table without the extraction time (bookkeeping) is sent whole every time.
    duck.execute("create schema recon; create table recon.notes as select 1 as n")
    assert publisher.publish("recon", "notes").mode == "replace"
    assert publisher.publish("recon", "notes").reason == "published whole each time"


def test_publishing_a_table_the_file_lacks_or_with_a_transaction_open_says_so(duck, pg, server) -> None:
    with pytest.raises(PublishError, match=r"raw_acme\.nope does not exist in the DuckDB file"):
        PostgresPublisher(duck, pg).publish("raw_acme", "nope")
    with psycopg.connect(server.url()) as not_autocommit, pytest.raises(ValueError, match="autocommit"):
        PostgresPublisher(duck, not_autocommit)


def test_a_per_day_history_is_copied_back_one_day_at_a_time_other_tables_whole(duck, pg, tmp_path) -> None:
    pg.execute("create schema marts")
    pg.execute("create table marts.history (as_of_date date, order_id text, amount numeric(20,4), "
               "rate double precision, seen timestamp, flag boolean, extra jsonb)")
    pg.execute("insert into marts.history values ('2026-10-01', 'SO-1', 1.5, 0.25, '2026-10-01 10:00', true, "
               "'{\"k\": \"v\"}'), ('2026-10-02', 'SO-1', 2.5, null, null, false, null), "
               "('2026-10-02', '', null, 1e-9, null, null, null)")
    server = PostgresServer(duck, pg, tmp_path / "scratch")
    whole = server.serve("marts", "history", day_column="as_of_date", day=dt.date(2026, 10, 2))
    assert (whole.mode, whole.rows) == ("replace", 3)  # the copy did not exist: whole
    assert duck.execute("select * from marts.history order by as_of_date, order_id").fetchall() == [
        (dt.date(2026, 10, 1), "SO-1", Decimal("1.5000"), 0.25, dt.datetime(2026, 10, 1, 10), True, '{"k": "v"}'),
        (dt.date(2026, 10, 2), "", None, 1e-9, None, None, None),
        (dt.date(2026, 10, 2), "SO-1", Decimal("2.5000"), None, None, False, None),
    ]
    # The engine rebuilds day 2 (a rerun) and, unknown to the copy, changes day 1: only day 2 travels.
    pg.execute("delete from marts.history where as_of_date = '2026-10-02'")
    pg.execute("insert into marts.history values ('2026-10-02', 'SO-9', 9, 9, null, true, null)")
    pg.execute("update marts.history set amount = 100 where as_of_date = '2026-10-01'")
    day = server.serve("marts", "history", day_column="as_of_date", day=dt.date(2026, 10, 2))
    assert (day.mode, day.rows) == ("day", 1)
    assert duck.execute("select as_of_date, order_id, amount from marts.history order by all").fetchall() == [
        (dt.date(2026, 10, 1), "SO-1", Decimal("1.5000")), (dt.date(2026, 10, 2), "SO-9", Decimal("9.0000"))]
    # A view on the engine (fct_orders) becomes a table here; a DuckDB view of that name is replaced.
    pg.execute("create view marts.latest as select order_id, amount from marts.history where as_of_date = "
               "'2026-10-02'")
    duck.execute("create view marts.latest as select 1 as stale")
    assert server.serve("marts", "latest").mode == "replace"
    assert duck.execute("select * from marts.latest").fetchall() == [("SO-9", Decimal("9.0000"))]
    assert not list((tmp_path / "scratch").iterdir())  # no scratch file left behind


def _config(tmp_path: Path, warehouse: dict):
    raw = yaml.safe_load(DEMO_CONFIG_PATH.read_text())
    raw["warehouse"] = warehouse
    path = tmp_path / "recon.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_the_engine_url_comes_from_the_environment_and_bad_ones_are_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server) -> None:
    cfg = _config(tmp_path, {"engine": "postgres", "url_env": "ACME_WH"})
    monkeypatch.delenv("ACME_WH", raising=False)
    with pytest.raises(WarehouseError, match=r"\$ACME_WH is not set"):
        postgres_url(cfg)
    monkeypatch.setenv("ACME_WH", "mysql://u:p@h/db")
    with pytest.raises(WarehouseError, match="postgresql://user:password@host:5432/db"):
        dbt_env(cfg)
    monkeypatch.setenv("ACME_WH", f"postgresql://recon:wrong@127.0.0.1:{server.port}/postgres")
    with pytest.raises(WarehouseError, match=rf"cannot connect to the warehouse at 127.0.0.1:{server.port}/postgres"):
        connect_postgres(cfg)
    monkeypatch.setenv("ACME_WH", "postgresql://an%40alyst:p%2Fw@db.internal:6543/recon")
    assert dbt_env(cfg) == {"RECON_DBT_TARGET": "postgres", "RECON_PG_HOST": "db.internal",
                            "RECON_PG_PORT": "6543", "RECON_PG_USER": "an@alyst", "RECON_PG_PASSWORD": "p/w",
                            "RECON_PG_DBNAME": "recon"}
    assert dbt_env(_config(tmp_path, {})) == {"RECON_DBT_TARGET": "duckdb"}
    with pytest.raises(Exception, match="engine"):
        _config(tmp_path, {"engine": "oracle"})


def test_a_warehouse_that_sorts_text_by_locale_is_refused_with_how_to_create_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server) -> None:
    with psycopg.connect(server.url(), autocommit=True) as admin:
        if not admin.execute("select count(*) from pg_collation where collprovider = 'i'").fetchone()[0]:
            pytest.skip("this server has no ICU collations")
        admin.execute("create database wh_locale template template0 locale_provider icu icu_locale 'en-US' "
                      "lc_collate 'C' lc_ctype 'C'")
    cfg = _config(tmp_path, {"engine": "postgres", "url_env": "ACME_WH"})
    monkeypatch.setenv("ACME_WH", server.url("wh_locale"))
    with pytest.raises(WarehouseError, match=r"sorts text by a locale .*LC_COLLATE 'C'"):
        connect_postgres(cfg)
    monkeypatch.setenv("ACME_WH", server.url("postgres"))
    connect_postgres(cfg).close()


def test_config_validate_checks_the_engine_and_names_it(tmp_path: Path, server, recon_home: Path) -> None:
    from click.testing import CliRunner

    from dagster_project.cli import cli

    cfg = _config(tmp_path, {"engine": "postgres", "url_env": "ACME_WH"})
    args = ["--config", str(cfg.source_file), "config", "validate"]
    ok = CliRunner().invoke(cli, args, obj={}, env={"ACME_WH": server.url("postgres")})
    assert ok.exit_code == 0, ok.output
    assert f"warehouse: postgres at 127.0.0.1:{server.port}/postgres ($ACME_WH)" in ok.output
    assert "s3cret" not in ok.output
    down = CliRunner().invoke(cli, args, obj={},
                              env={"ACME_WH": f"postgresql://recon:x@127.0.0.1:{server.port}/nope"})
    assert down.exit_code != 0
    assert f"warehouse: cannot connect to the warehouse at 127.0.0.1:{server.port}/nope ($ACME_WH)" in down.output
