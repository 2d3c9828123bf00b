"""File-drop source + DuckDB destination: formats, typing, incremental files, atomicity, bad input."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion import destination_duckdb
from ingestion.protocol import (
    AirbyteStateMessage,
    ConfigError,
    ConfiguredAirbyteCatalog,
    Status,
    Type,
)
from ingestion.sources.file_drop import (
    FileDropStream,
    SourceFileDrop,
    drop_staged,
    streams_from_config,
    streams_from_system_config,
)
from ingestion.sync import SyncResult, sync_stream

FIXTURES = Path(__file__).parent / "fixtures" / "file_drop"
REPO = Path(__file__).resolve().parents[1]
META = ["_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta", "_airbyte_generation_id"]
MTIME = datetime(2026, 10, 2, 1, 30, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ helpers


def write(path: Path, text: str | bytes, mtime: datetime | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def stream_of(tmp_path: Path, fmt: str, glob: str | None = None, **kw: Any) -> FileDropStream:
    return FileDropStream(
        system="sys",
        stream="things",
        path=tmp_path / "drop",
        glob=glob or f"things/*.{fmt}",
        format=fmt,  # type: ignore[arg-type]
        primary_key=["id"],
        **kw,
    )


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def source_rows(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, Any]]:
    """The table's source columns (JSON columns parsed), in landing order."""
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
    cols = [c for c in types if not c.startswith(("_airbyte_", "_ab_"))]
    out = []
    for r in rows(con, f"SELECT {', '.join(json.dumps(c) for c in cols)} FROM {table} ORDER BY rowid"):
        out.append({c: json.loads(v) if types[c] == "JSON" and v is not None else v for c, v in r.items()})
    return out


def snapshot(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM {table} ORDER BY _airbyte_raw_id").fetchall()


def assert_invariant(result: SyncResult) -> None:
    assert result.records_read == result.records_landed + result.records_quarantined


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    yield c
    c.close()


def copy_fixture_orders(tmp_path: Path) -> Path:
    target = tmp_path / "data" / "orders" / "2026-10-01.jsonl"
    target.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "orders" / "2026-10-01.jsonl", target)
    os.utime(target, (MTIME.timestamp(), MTIME.timestamp()))
    return tmp_path / "data"


def fixture_config(data: Path) -> dict[str, Any]:
    return json.loads((FIXTURES / "config.json").read_text().replace("<DATA>", str(data)))


# ------------------------------------------------------------------------------ spec / check / discover


def test_spec_is_a_json_schema_with_the_stream_options() -> None:
    spec = SourceFileDrop().spec().to_dict()
    schema = spec["connectionSpecification"]
    assert schema["required"] == ["system", "path", "streams"]
    stream_props = schema["properties"]["streams"]["items"]["properties"]
    assert stream_props["format"]["enum"] == ["csv", "jsonl", "parquet"]
    assert spec["supportsIncremental"] is True


@pytest.mark.parametrize("case", json.loads((FIXTURES / "invalid_config.json").read_text()))
def test_invalid_config_is_refused_with_the_key_named(case: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=pytest.importorskip("re").escape(case["error"])):
        streams_from_config(case["config"])
    status = SourceFileDrop().check(case["config"])
    assert status.status == Status.FAILED and case["error"] in (status.message or "")


def test_check_fails_on_a_missing_folder_and_succeeds_on_data(tmp_path: Path) -> None:
    config = fixture_config(tmp_path / "nowhere")
    status = SourceFileDrop().check(config)
    assert status.status == Status.FAILED and "does not exist" in (status.message or "")
    assert SourceFileDrop().check(fixture_config(copy_fixture_orders(tmp_path))).status == Status.SUCCEEDED


def test_discover_types_the_stream_from_its_newest_file(tmp_path: Path) -> None:
    catalog = SourceFileDrop().discover(fixture_config(copy_fixture_orders(tmp_path)))
    (stream,) = catalog.streams
    props = stream.json_schema["properties"]
    assert stream.name == "orders" and stream.namespace == "shop"
    assert stream.source_defined_primary_key == [["order_number"]]
    assert props["order_number"]["type"] == ["null", "string"]
    assert props["created_at"] == {"type": ["null", "string"]}  # text, not a date-time
    assert props["qty"]["type"] == ["null", "integer"]
    assert props["total"]["type"] == ["null", "number"]
    assert props["gift"]["type"] == ["null", "boolean"]
    assert "object" in props["customer"]["type"]
    assert props["_ab_source_file_last_modified"]["airbyte_type"] == "timestamp_with_timezone"


def test_configured_catalog_fixture_round_trips() -> None:
    raw = json.loads((FIXTURES / "configured_catalog.json").read_text())
    catalog = ConfiguredAirbyteCatalog.from_dict(raw)
    assert catalog.to_dict() == raw
    assert catalog.get("orders") is not None and catalog.streams[0].primary_key == [["order_number"]]


def test_read_with_the_saved_state_returns_nothing_new(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    data = copy_fixture_orders(tmp_path)
    size = (data / "orders" / "2026-10-01.jsonl").stat().st_size
    text = (
        (FIXTURES / "sample_state.json").read_text().replace("<DATA>", str(data)).replace("<SIZE>", str(size))
    )
    state = AirbyteStateMessage.from_dict(json.loads(text))
    catalog = ConfiguredAirbyteCatalog.from_dict(
        json.loads((FIXTURES / "configured_catalog.json").read_text())
    )
    source = SourceFileDrop()

    messages = list(source.read(fixture_config(data), catalog, {state.stream: state.stream_state}, con))
    assert [m.type for m in messages] == [Type.STATE]
    assert messages[0].state.stream_state["history"] == state.stream_state["history"]

    # Without the state the same file is read, and its records are the expected ones.
    messages = list(source.read(fixture_config(data), catalog, None, con))
    batch = next(m.batch for m in messages if m.type == Type.BATCH)
    try:
        expected = [
            json.loads(line) for line in (FIXTURES / "expected_records.jsonl").read_text().splitlines()
        ]
        assert source_rows(con, f"temp.{json.dumps(batch.staged.table)}") == expected
    finally:
        drop_staged(con, batch.staged)


# ------------------------------------------------------------------------------------------ formats


def test_jsonl_lands_typed_columns_keeps_text_and_quarantines_bad_lines(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    data = copy_fixture_orders(tmp_path)
    stream = streams_from_config(fixture_config(data))[0]
    result = sync_stream(con, stream)

    assert (result.records_read, result.records_landed, result.records_quarantined) == (4, 2, 2)
    assert_invariant(result)
    assert result.table == "raw_shop.orders"
    expected = [json.loads(line) for line in (FIXTURES / "expected_records.jsonl").read_text().splitlines()]
    assert source_rows(con, "raw_shop.orders") == expected
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw_shop.orders)").fetchall())
    assert types["created_at"] == "VARCHAR" and types["updated_at"] == "VARCHAR"
    assert (types["qty"], types["total"], types["gift"], types["customer"], types["lines"]) == (
        "BIGINT",
        "DOUBLE",
        "BOOLEAN",
        "JSON",
        "JSON",
    )
    assert list(types)[-6:] == [*META, "_ab_source_file_url", "_ab_source_file_last_modified"]
    assert types["_airbyte_extracted_at"] == "TIMESTAMP WITH TIME ZONE"

    quarantined = rows(
        con, "SELECT line_number, raw_record, reason FROM recon_meta.quarantine ORDER BY line_number"
    )
    expected_q = [
        json.loads(line) for line in (FIXTURES / "expected_quarantine.jsonl").read_text().splitlines()
    ]
    assert quarantined == expected_q

    meta = rows(
        con, "SELECT DISTINCT _airbyte_meta::VARCHAR AS m, _airbyte_generation_id AS g FROM raw_shop.orders"
    )
    assert meta == [{"m": json.dumps({"sync_id": result.sync_id, "changes": []}), "g": 0}]
    ids = con.execute("SELECT count(DISTINCT _airbyte_raw_id), count(*) FROM raw_shop.orders").fetchall()
    assert ids == [(2, 2)]


def test_jsonl_mixed_types_big_integers_and_case_clashes(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    lines = [
        {"id": 1, "v": 1, "big": 1, "mix": {"a": 1}, "Key": "a", "key": "b"},
        {"id": 2, "v": "text", "big": 18446744073709551615, "mix": "plain"},
        {"id": 3, "v": 2.5, "big": None, "mix": None},
    ]
    write(tmp_path / "drop/things/a.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    result = sync_stream(con, stream_of(tmp_path, "jsonl"))
    assert result.records_landed == 3
    got = rows(con, 'SELECT id, v, big, mix::VARCHAR AS mix, "Key", key_2 FROM raw_sys.things ORDER BY id')
    assert got == [
        {"id": 1, "v": "1", "big": "1", "mix": '{"a":1}', "Key": "a", "key_2": "b"},
        {"id": 2, "v": "text", "big": "18446744073709551615", "mix": '"plain"', "Key": None, "key_2": None},
        {"id": 3, "v": "2.5", "big": None, "mix": None, "Key": None, "key_2": None},
    ]
    changes = json.loads(con.execute("SELECT _airbyte_meta FROM raw_sys.things LIMIT 1").fetchall()[0][0])[
        "changes"
    ]
    assert {c["field"] for c in changes} == {"v", "big", "mix", "key"}


def test_jsonl_line_numbers_survive_a_line_with_bad_encoding(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    write(tmp_path / "drop/things/a.jsonl", b'{"id":1}\n{"id":"\xff\xfe"}\n\nnope\n{"id":3}\n')
    result = sync_stream(con, stream_of(tmp_path, "jsonl"))
    assert_invariant(result)
    assert (result.records_landed, result.records_quarantined) == (2, 2)
    q = con.execute("SELECT line_number, reason FROM recon_meta.quarantine ORDER BY line_number").fetchall()
    assert [n for n, _ in q] == [2, 4]
    assert "INVALID ENCODING" in q[0][1] and q[1][1] == "malformed JSON"


def test_csv_lands_as_varchar_with_source_names_and_quarantines_bad_rows(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    write(
        tmp_path / "drop/things/a.csv",
        'DocNo;Amount;ChangedOn\nD1;0012.50;2026-10-01 10:00:00\nD2;7\n"D;3";1;2026-10-02\nD4;1;x;extra\n',
    )
    result = sync_stream(con, stream_of(tmp_path, "csv", csv_delimiter=";"))
    assert_invariant(result)
    assert (result.records_read, result.records_landed, result.records_quarantined) == (4, 2, 2)
    assert source_rows(con, "raw_sys.things") == [
        {"DocNo": "D1", "Amount": "0012.50", "ChangedOn": "2026-10-01 10:00:00"},
        {"DocNo": "D;3", "Amount": "1", "ChangedOn": "2026-10-02"},
    ]
    q = rows(con, "SELECT line_number, raw_record, reason FROM recon_meta.quarantine ORDER BY line_number")
    assert [(r["line_number"], r["raw_record"]) for r in q] == [(3, "D2;7"), (5, "D4;1;x;extra")]
    assert "MISSING COLUMNS" in q[0]["reason"] and "TOO MANY COLUMNS" in q[1]["reason"]
    landed = rows(con, "SELECT records_landed, records_quarantined FROM recon_meta.landed_files")
    assert landed == [{"records_landed": 2, "records_quarantined": 2}]


def test_parquet_lands_native_types_and_nested_columns_as_json(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    table = pa.table(
        {
            "shipment_ref": ["S1", "S2"],
            "qty_lines": pa.array([1, 2], pa.int32()),
            "modified_time": pa.array(
                [datetime(2026, 10, 1, 8, tzinfo=UTC), datetime(2026, 10, 1, 9, tzinfo=UTC)],
                pa.timestamp("us", "UTC"),
            ),
            "detail": [{"carrier": "dhl", "boxes": [1, 2]}, {"carrier": "ups", "boxes": []}],
            "tags": [["a"], None],
        }
    )
    path = tmp_path / "drop/things/a.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    result = sync_stream(con, stream_of(tmp_path, "parquet"))
    assert_invariant(result)
    assert result.records_landed == 2
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw_sys.things)").fetchall())
    assert types["qty_lines"] == "INTEGER"
    assert types["modified_time"] == "TIMESTAMP WITH TIME ZONE"
    assert types["detail"] == "JSON" and types["tags"] == "JSON"
    got = source_rows(con, "raw_sys.things")
    assert got[0]["detail"] == {"carrier": "dhl", "boxes": [1, 2]} and got[1]["tags"] is None
    assert got[0]["modified_time"] == datetime(2026, 10, 1, 8, tzinfo=UTC)


# ---------------------------------------------------------------------------------- incremental files


def test_mtime_is_recorded_and_a_rerun_changes_nothing(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    write(tmp_path / "drop/things/a.csv", "id,x\n1,a\n2,b\n", mtime=MTIME)
    stream = stream_of(tmp_path, "csv")
    first = sync_stream(con, stream)
    assert (first.files_seen, first.files_landed, first.records_landed) == (1, 1, 2)
    assert first.newest_file_modified_at == MTIME
    url = str((tmp_path / "drop/things/a.csv").resolve())
    assert con.execute(
        "SELECT DISTINCT _ab_source_file_url, _ab_source_file_last_modified FROM raw_sys.things"
    ).fetchall() == [(url, MTIME)]
    landed = rows(con, "SELECT file_path, file_modified_at, file_size, sync_id FROM recon_meta.landed_files")
    assert landed == [
        {"file_path": url, "file_modified_at": MTIME, "file_size": 13, "sync_id": first.sync_id}
    ]

    before = snapshot(con, "raw_sys.things")
    second = sync_stream(con, stream)
    assert (second.files_seen, second.files_skipped, second.files_landed, second.records_read) == (1, 1, 0, 0)
    assert snapshot(con, "raw_sys.things") == before
    assert con.execute("SELECT count(*) FROM recon_meta.landed_files").fetchall() == [(1,)]
    runs = con.execute("SELECT status FROM recon_meta.sync_runs ORDER BY sync_id").fetchall()
    assert runs == [("succeeded",), ("succeeded",)]


def test_a_lost_state_row_is_rebuilt_from_landed_files(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    write(tmp_path / "drop/things/a.csv", "id\n1\n", mtime=MTIME)
    stream = stream_of(tmp_path, "csv")
    sync_stream(con, stream)
    con.execute("DELETE FROM recon_meta.stream_state").fetchall()
    assert sync_stream(con, stream).files_landed == 0


def test_a_new_file_lands_only_its_rows_and_a_changed_file_lands_again(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    stream = stream_of(tmp_path, "csv")
    write(tmp_path / "drop/things/a.csv", "id,x\n1,a\n", mtime=MTIME)
    sync_stream(con, stream)
    write(tmp_path / "drop/things/b.csv", "id,x\n2,b\n3,c\n")
    result = sync_stream(con, stream)
    assert (result.files_seen, result.files_landed, result.records_landed) == (2, 1, 2)
    assert con.execute("SELECT id FROM raw_sys.things ORDER BY id").fetchall() == [("1",), ("2",), ("3",)]

    write(tmp_path / "drop/things/a.csv", "id,x\n1,a\n1,a2\n", mtime=MTIME)  # same mtime, new size
    result = sync_stream(con, stream)
    assert (result.files_landed, result.records_landed) == (1, 2)
    assert con.execute("SELECT count(*) FROM raw_sys.things WHERE id = '1'").fetchall() == [(3,)]


def test_files_are_landed_in_sorted_order(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    for name in ["c", "a", "b"]:
        write(tmp_path / f"drop/things/{name}.csv", f"id\n{name}\n")
    sync_stream(con, stream_of(tmp_path, "csv"))
    assert con.execute("SELECT id FROM raw_sys.things ORDER BY rowid").fetchall() == [("a",), ("b",), ("c",)]


def test_a_new_column_is_added_and_a_changed_type_is_widened(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    stream = stream_of(tmp_path, "jsonl")
    write(tmp_path / "drop/things/1.jsonl", '{"id": 1, "amount": 10}\n')
    sync_stream(con, stream)
    write(tmp_path / "drop/things/2.jsonl", '{"id": 2, "amount": "12.50", "channel": "web"}\n')
    result = sync_stream(con, stream)
    assert any("added column channel" in c for c in result.schema_changes)
    assert any("amount BIGINT widened to VARCHAR" in c for c in result.schema_changes)
    assert con.execute("SELECT id, amount, channel FROM raw_sys.things ORDER BY id").fetchall() == [
        (1, "10", None),
        (2, "12.50", "web"),
    ]
    write(tmp_path / "drop/things/3.jsonl", '{"id": 3}\n')  # columns absent from a file land NULL
    sync_stream(con, stream)
    assert con.execute("SELECT amount, channel FROM raw_sys.things WHERE id = 3").fetchall() == [(None, None)]
    changes = con.execute("SELECT _airbyte_meta->'changes' FROM raw_sys.things WHERE id = 2").fetchall()[0][0]
    assert "SOURCE_TYPE_CHANGED" in changes


def test_supertype_rules() -> None:
    st = destination_duckdb.supertype
    assert st("INTEGER", "BIGINT") == "BIGINT" and st("BIGINT", "INTEGER") == "BIGINT"
    assert st("BIGINT", "DOUBLE") == "DOUBLE" and st("UBIGINT", "BIGINT") == "HUGEINT"
    assert st("JSON", "VARCHAR") == "JSON" and st("BIGINT", "JSON") == "JSON"
    assert st("TIMESTAMP WITH TIME ZONE", "VARCHAR") == "VARCHAR"


def test_empty_files_are_logged_with_zero_records(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    write(tmp_path / "drop/things/a.csv", "", mtime=MTIME)
    write(tmp_path / "drop/things/b.csv", "id,x\n", mtime=MTIME)
    result = sync_stream(con, stream_of(tmp_path, "csv"))
    assert (result.files_landed, result.records_read) == (2, 0)
    empty_parquet = tmp_path / "drop/pq/a.parquet"
    empty_parquet.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": pa.array([], pa.string())}), empty_parquet)
    result = sync_stream(con, stream_of(tmp_path, "parquet", glob="pq/*.parquet"))
    assert (result.files_landed, result.records_read) == (1, 0)
    assert con.execute(
        "SELECT count(*), sum(records_landed), sum(records_quarantined) FROM recon_meta.landed_files"
    ).fetchall() == [(3, 0, 0)]
    assert con.execute("SELECT count(*) FROM raw_sys.things").fetchall() == [(0,)]
    assert "id" in [r[0] for r in con.execute("DESCRIBE raw_sys.things").fetchall()]


# -------------------------------------------------------------------------------------------- errors


def test_a_missing_folder_errors_with_system_stream_and_path(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    with pytest.raises(ConfigError) as err:
        sync_stream(con, stream_of(tmp_path, "csv"))
    assert (
        "'sys'" in str(err.value)
        and "'things'" in str(err.value)
        and str(tmp_path / "drop") in str(err.value)
    )
    status = con.execute("SELECT status, error FROM recon_meta.sync_runs").fetchall()
    assert status[0][0] == "failed" and "does not exist" in status[0][1]


def test_a_glob_matching_nothing_errors_only_on_the_first_sync(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    (tmp_path / "drop/things").mkdir(parents=True)
    stream = stream_of(tmp_path, "csv")
    with pytest.raises(ConfigError, match=r"'sys'.*'things'.*no file matches glob 'things/\*\.csv'"):
        sync_stream(con, stream)
    write(tmp_path / "drop/things/a.csv", "id\n1\n")
    sync_stream(con, stream)
    (tmp_path / "drop/things/a.csv").unlink()
    assert sync_stream(con, stream).files_seen == 0  # matched before: fine


def test_an_unreadable_file_is_quarantined_and_the_others_land(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    good = tmp_path / "drop/things/a.parquet"
    good.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["1"]}), good)
    write(tmp_path / "drop/things/b.parquet", b"PAR1 this is not parquet")
    result = sync_stream(con, stream_of(tmp_path, "parquet"))
    assert (result.status, result.files_landed, result.files_failed, result.records_landed) == (
        "succeeded_with_errors",
        1,
        1,
        1,
    )
    assert_invariant(result)
    assert len(result.errors) == 1 and "b.parquet" in result.errors[0]
    q = con.execute("SELECT file_path, line_number, reason FROM recon_meta.quarantine").fetchall()
    assert q[0][0].endswith("b.parquet") and q[0][1] is None and "unreadable parquet file" in q[0][2]
    again = sync_stream(con, stream_of(tmp_path, "parquet"))  # not retried until the file changes
    assert (again.files_failed, again.errors) == (0, [])


def test_a_failure_after_inserting_rolls_back_the_whole_sync(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = stream_of(tmp_path, "jsonl")
    write(tmp_path / "drop/things/1.jsonl", '{"id": 1}\n')
    sync_stream(con, stream)
    before = {t: snapshot_any(con, t) for t in TABLES}
    write(tmp_path / "drop/things/2.jsonl", '{"id": 2, "new_col": "x"}\nbad line\n')
    write(tmp_path / "drop/things/3.jsonl", '{"id": 3}\n')

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated crash after the data was inserted")

    monkeypatch.setattr(destination_duckdb.DuckDBDestination, "write_state", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        sync_stream(con, stream)
    for t in TABLES:
        assert snapshot_any(con, t) == before[t], t
    assert "new_col" not in [r[0] for r in con.execute("DESCRIBE raw_sys.things").fetchall()]
    assert con.execute("SELECT status FROM recon_meta.sync_runs ORDER BY sync_id").fetchall() == [
        ("succeeded",),
        ("failed",),
    ]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]

    monkeypatch.undo()
    result = sync_stream(con, stream)
    assert (result.files_landed, result.records_landed, result.records_quarantined) == (2, 2, 1)
    assert con.execute("SELECT id FROM raw_sys.things ORDER BY id").fetchall() == [(1,), (2,), (3,)]


TABLES = ["raw_sys.things", "recon_meta.landed_files", "recon_meta.stream_state", "recon_meta.quarantine"]


def snapshot_any(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def test_session_timezone_is_utc_during_the_sync_and_restored(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'").fetchall()
    write(tmp_path / "drop/things/a.csv", "id\n1\n", mtime=MTIME)
    sync_stream(con, stream_of(tmp_path, "csv"))
    assert con.execute("SELECT current_setting('TimeZone')").fetchall() == [("America/New_York",)]
    value = con.execute("SELECT _ab_source_file_last_modified::VARCHAR FROM raw_sys.things").fetchall()[0][0]
    assert value.startswith("2026-10-01 21:30:00")  # the same instant, shown in the session's zone
    con.close()


def test_demo_config_streams_build(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((REPO / "dagster_project/config/demo.yaml").read_text())
    built = {
        (s.system, s.stream, s.format)
        for name, system in config["systems"].items()
        if system.get("connector") == "file_drop"
        for s in streams_from_system_config(name, system)
    }
    assert ("erp", "documents", "csv") in built and ("wms", "shipments", "parquet") in built
    assert len(built) == 6
