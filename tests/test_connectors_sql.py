"""SQL source (SQLite, PostgreSQL) through the DuckDB destination: modes, type errors, state, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pg_server import free_port, postgres_server

from ingestion.connectors import ConnectorStream, validate_options
from ingestion.protocol import ConfiguredAirbyteCatalog, ConnectorError
from ingestion.sources.sql_database import SourceSqlDatabase
from ingestion.sync import sync_stream

FIXTURES = Path(__file__).parent / "fixtures" / "sql"
REPO = Path(__file__).resolve().parents[1]


def make_sqlite(path: Path, rows: list[tuple]) -> None:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, customer TEXT, amount INTEGER, "
        "currency TEXT, updated_at TEXT)"
    )
    db.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def expected_rows() -> list[tuple]:
    return [tuple(r.values()) for r in map(json.loads, (FIXTURES / "expected_records.jsonl").read_text().splitlines())]


def sqlite_stream(db: Path, sync_mode: str | None = None, **stream_opts: Any) -> ConnectorStream:
    config = json.loads((FIXTURES / "config.json").read_text())
    config["path"] = str(db)
    config["streams"]["orders"].update(stream_opts)
    return ConnectorStream("shop", "orders", "sql", config, ["id"], "updated_at", sync_mode=sync_mode)


def landed(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT id, customer, amount, currency, updated_at FROM raw_shop.orders ORDER BY id, updated_at"
    ).fetchall()


def test_sqlite_incremental_dedup_and_saved_state(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    make_sqlite(db, expected_rows())
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    stream = sqlite_stream(db, sync_mode="append_dedup")
    first = sync_stream(con, stream)
    assert first.records_read == first.records_landed + first.records_quarantined == 5
    assert landed(con) == expected_rows()
    saved = json.loads(con.execute("SELECT state FROM recon_meta.stream_state").fetchall()[0][0])
    assert saved == json.loads((FIXTURES / "sample_state.json").read_text())
    # Reading again with the saved state returns nothing new.
    again = sync_stream(con, stream)
    assert (again.records_read, again.records_landed) == (0, 0)
    # An update lands, and dedup keeps one row per key (the newest).
    make_sqlite(db, [(2, "c2", 999, "EUR", "2026-10-01T09:00:00Z")])
    third = sync_stream(con, stream)
    assert third.records_landed == 1
    rows = landed(con)
    assert len(rows) == 5 and (2, "c2", 999, "EUR", "2026-10-01T09:00:00Z") in rows
    # Each successful sync leaves a freshness fact for the dbt models.
    files = con.execute("SELECT file_path, records_landed FROM recon_meta.landed_files ORDER BY sync_id").fetchall()
    assert [f[0] for f in files] == [f"sync://{r.sync_id}" for r in (first, again, third)]


def test_sqlite_wrong_type_goes_to_meta_and_snapshot_adds_a_generation(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    make_sqlite(db, [*expected_rows()[:2], (3, "c0", "not a number", "EUR", "2026-10-01T03:00:00Z")])
    con = duckdb.connect()
    stream = sqlite_stream(db, sync_mode="snapshot")
    r = sync_stream(con, stream)
    assert (r.records_read, r.records_landed, r.records_with_errors) == (3, 3, 1)
    meta = con.execute("SELECT amount, _airbyte_meta FROM raw_shop.orders WHERE id = 3").fetchall()[0]
    assert meta[0] is None
    assert json.loads(meta[1])["changes"] == [
        {"field": "amount", "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"}
    ]
    # A snapshot is re-read in full and landed as a new generation; the older one stays (as-of replays
    # of earlier days read it; the reconciliation takes the latest snapshot as of the day).
    r2 = sync_stream(con, stream)
    assert r2.records_landed == 3
    gens = con.execute(
        "SELECT _airbyte_generation_id, count(*) FROM raw_shop.orders GROUP BY 1 ORDER BY 1").fetchall()
    assert gens == [(0, 3), (1, 3)]


def test_sqlite_missing_table_names_system(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    make_sqlite(db, [])
    con = duckdb.connect()
    with pytest.raises(ConnectorError, match=r"system 'shop', stream 'orders'.*nope"):
        sync_stream(con, sqlite_stream(db, table="nope"))
    assert con.execute("SELECT status FROM recon_meta.sync_runs").fetchall() == [("failed",)]
    assert con.execute("SELECT count(*) FROM recon_meta.landed_files").fetchall()[0][0] == 0


def test_invalid_config_is_rejected_naming_keys() -> None:
    bad = json.loads((FIXTURES / "invalid_config.json").read_text())
    with pytest.raises(ValueError) as e:
        validate_options("shop", "sql", bad, ["orders"])
    text = str(e.value)
    assert "options.password" in text and "environment variable" in text and "inline-secret" not in text


def test_configured_catalog_fixture_reads(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    make_sqlite(db, expected_rows())
    config = json.loads((FIXTURES / "config.json").read_text()) | {"path": str(db)}
    catalog = ConfiguredAirbyteCatalog.from_dict(json.loads((FIXTURES / "configured_catalog.json").read_text()))
    state = {"orders": json.loads((FIXTURES / "sample_state.json").read_text())}
    messages = list(SourceSqlDatabase().read(config, catalog, state))
    assert [m.type for m in messages] == ["STATE"]  # nothing after the sample state


# ------------------------------------------------------------------------------------- SIGKILL

_CHILD = """
import sys, duckdb
from ingestion.connectors import ConnectorStream
from ingestion.sync import sync_stream
db, target = sys.argv[1], sys.argv[2]
con = duckdb.connect(target)
stream = ConnectorStream("shop", "orders", "sql",
    {"driver": "sqlite", "path": db, "checkpoint_interval": 5000, "fetch_size": 1000, "streams": {"orders": {}}},
    ["id"], "updated_at")
def progress(state, landed):
    print("checkpoint", landed, flush=True)
sync_stream(con, stream, batch_records=5000, on_checkpoint=progress)
print("done", flush=True)
"""


def test_sigkill_half_way_then_rerun_loses_and_doubles_nothing(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    n = 200_000
    make_sqlite(db, [(i, f"c{i % 97}", i, "EUR", f"2026-10-01T00:00:{i:09d}") for i in range(1, n + 1)])
    target = tmp_path / "w.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), str(target)],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    seen = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("checkpoint"):
            seen += 1
            if seen == 3:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sync finished before it could be killed"
    con = duckdb.connect(str(target))
    partial = con.execute("SELECT count(*), count(DISTINCT id), max(id) FROM raw_shop.orders").fetchall()[0]
    state = json.loads(con.execute("SELECT state FROM recon_meta.stream_state").fetchall()[0][0])
    assert 0 < partial[0] < n and partial[0] == partial[1]
    # The committed state covers exactly the committed rows.
    assert state["cursor_value"] == f"2026-10-01T00:00:{partial[2]:09d}"
    assert con.execute("SELECT status FROM recon_meta.sync_runs").fetchall() == [("running",)]
    from ingestion.sync import sync_stream as again

    stream = ConnectorStream(
        "shop", "orders", "sql",
        {"driver": "sqlite", "path": str(db), "checkpoint_interval": 5000, "streams": {"orders": {}}},
        ["id"], "updated_at",
    )
    r = again(con, stream)
    assert r.records_read == n - partial[0]
    total = con.execute("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM raw_shop.orders").fetchall()[0]
    assert total == (n, n, 1, n)
    assert sync_stream(con, stream).records_read == 0


# ------------------------------------------------------------------------------------ PostgreSQL

@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("psycopg")
    with postgres_server(tmp_path_factory.mktemp("pg")) as server:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=server.port, user=server.user, password=server.password,
                             dbname="postgres", autocommit=True) as c:
            c.execute("CREATE TABLE payments (id text PRIMARY KEY, order_id text, amount numeric(12,2), "
                      "paid boolean, meta jsonb, updated_at timestamptz)")
            for i in range(1, 8):
                c.execute("INSERT INTO payments VALUES (%s, %s, %s, %s, %s, %s)",
                          (f"p{i}", f"o{i}", f"{i}.50", i % 2 == 0, json.dumps({"n": i}),
                           f"2026-10-01 0{i}:00:00+00"))
        yield server.port


def test_postgres_incremental_typed_and_secret_from_env(postgres: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_TEST_PG_PASSWORD", "s3cret-pw")
    options = {"driver": "postgres", "host": "127.0.0.1", "port": postgres, "database": "postgres", "user": "recon",
               "password": {"env": "RECON_TEST_PG_PASSWORD"}, "sslmode": "disable", "checkpoint_interval": 3,
               "streams": {"payments": {"table": "public.payments"}}}
    validate_options("pay", "sql", options, ["payments"])
    stream = ConnectorStream("pay", "payments", "sql", options, ["id"], "updated_at")
    con = duckdb.connect()
    r = sync_stream(con, stream)
    assert (r.records_read, r.records_landed, r.records_with_errors) == (7, 7, 0)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'raw_pay' AND table_name = 'payments'").fetchall())
    assert types["amount"] == "DOUBLE" and types["paid"] == "BOOLEAN" and types["meta"] == "JSON"
    assert types["updated_at"] == "TIMESTAMP WITH TIME ZONE"
    assert con.execute("SELECT sum(amount) FROM raw_pay.payments").fetchall()[0][0] == pytest.approx(31.5)
    assert sync_stream(con, stream).records_read == 0
    # A wrong password: a clear error naming the system, and the password never in it.
    monkeypatch.setenv("RECON_TEST_PG_PASSWORD", "wrong-password")
    with pytest.raises(ConnectorError, match="system 'pay'") as e:
        sync_stream(con, stream)
    assert "wrong-password" not in str(e.value)
    errors = con.execute("SELECT error FROM recon_meta.sync_runs WHERE status = 'failed'").fetchall()
    assert errors and all("wrong-password" not in (x[0] or "") for x in errors)


def test_postgres_down_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    options = {"driver": "postgres", "host": "127.0.0.1", "port": port, "database": "x", "user": "u",
               "connect_timeout_seconds": 2, "streams": {"t": {}}}
    con = duckdb.connect()
    t0 = time.monotonic()
    with pytest.raises(ConnectorError, match=rf"system 'pay'.*127.0.0.1:{port}"):
        sync_stream(con, ConnectorStream("pay", "t", "sql", options, ["id"], None))
    assert time.monotonic() - t0 < 10
