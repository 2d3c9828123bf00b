"""External Airbyte connectors run by command: a tiny script connector, and airbyte-source-faker for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

from ingestion.connectors import ConnectorStream, validate_options
from ingestion.protocol import ConnectorError
from ingestion.sync import sync_stream

FIXTURES = Path(__file__).parent / "fixtures" / "airbyte_command"
CACHE = Path(os.environ.get("RECON_TEST_CACHE", Path.home() / ".cache" / "order-recon-tests"))

SCRIPT = textwrap.dedent(
    """
    import json, sys
    args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    cmd = sys.argv[1]
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "n": {"type": "integer"}}}
    if cmd == "discover":
        print(json.dumps({"type": "CATALOG", "catalog": {"streams": [{"name": "things", "json_schema": schema,
              "supported_sync_modes": ["full_refresh", "incremental"], "source_defined_cursor": True,
              "default_cursor_field": ["id"], "source_defined_primary_key": [["id"]]}]}}))
    elif cmd == "read":
        cfg = json.load(open(args["--config"]))
        start = 0
        if "--state" in args:
            start = json.load(open(args["--state"]))[0]["stream"]["stream_state"]["last"]
        print("this line is not a message")
        print(json.dumps({"type": "LOG", "log": {"level": "WARN", "message": "token is " + cfg["token"]}}))
        for i in range(start + 1, cfg["count"] + 1):
            print(json.dumps({"type": "RECORD", "record": {"stream": "things", "emitted_at": 0,
                  "data": {"id": i, "n": "bad" if i == 3 else i}}}))
        print(json.dumps({"type": "STATE", "state": {"type": "STREAM", "stream": {
              "stream_descriptor": {"name": "things"}, "stream_state": {"last": cfg["count"]}}}}))
        if cfg.get("linger_pid_file"):  # a worker that outlives the connector, holding its stdout open
            import subprocess
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            open(cfg["linger_pid_file"], "w").write(str(child.pid))
        if cfg.get("fail"):
            print(json.dumps({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 0,
                  "error": {"message": "upstream said no", "failure_type": "system_error"}}}))
            sys.exit(1)
    """
)


def script_stream(tmp_path: Path, **config: object) -> ConnectorStream:
    path = tmp_path / "connector.py"
    path.write_text(SCRIPT)
    options = {"command": [sys.executable, str(path)],
               "config": {"count": 5, "token": {"env": "RECON_TEST_CONN_TOKEN"}, **config}}
    validate_options("crm", "airbyte_command", options, ["things"])
    return ConnectorStream("crm", "things", "airbyte_command", options, [], None)


def test_script_connector_lands_quarantines_and_redacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_TEST_CONN_TOKEN", "very-secret-token")
    con = duckdb.connect()
    r = sync_stream(con, script_stream(tmp_path))
    assert (r.records_read, r.records_landed, r.records_quarantined, r.records_with_errors) == (6, 5, 1, 1)
    assert r.errors == ["token is **********"]
    assert sync_stream(con, script_stream(tmp_path)).records_read == 1  # only the bad line again
    assert con.execute("SELECT count(*) FROM raw_crm.things").fetchall()[0][0] == 5


def test_script_connector_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_TEST_CONN_TOKEN", "very-secret-token")
    con = duckdb.connect()
    with pytest.raises(ConnectorError, match="system 'crm'.*upstream said no"):
        sync_stream(con, script_stream(tmp_path, fail=True))
    invalid = json.loads((FIXTURES / "invalid_config.json").read_text())
    with pytest.raises(ValueError, match="command"):
        validate_options("crm", "airbyte_command", invalid, [])


def test_a_child_outliving_the_connector_does_not_hang_the_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_TEST_CONN_TOKEN", "very-secret-token")
    pid_file = tmp_path / "child.pid"
    con = duckdb.connect()
    stream = script_stream(tmp_path, linger_pid_file=str(pid_file))
    results = []
    sync = threading.Thread(target=lambda: results.append(sync_stream(con, stream)), daemon=True)
    sync.start()
    sync.join(60)
    assert not sync.is_alive(), "the sync hangs on a child that outlives the connector"
    r = results[0]
    assert (r.records_read, r.records_landed) == (6, 5)  # everything the connector wrote was read
    status = Path(f"/proc/{int(pid_file.read_text())}/status")
    for _ in range(50):  # and its leftover worker was killed (it would sleep 600 s): gone, or a zombie
        if not status.exists() or "\tZ" in status.read_text():
            break
        time.sleep(0.1)
    else:
        pytest.fail("the connector's leftover child is still running")


def faker_venv() -> Path:
    """airbyte-source-faker in a virtual environment of its own.

    `make test` installs it beside the project's (.venv/connectors/source-faker); a bare `pytest` creates it
    once under the test cache instead.
    """
    made_by_make = Path(sys.prefix) / "connectors" / "source-faker"
    if (made_by_make / "bin" / "source-faker").exists():
        return made_by_make
    venv = CACHE / "source-faker-venv"
    exe = venv / "bin" / "source-faker"
    if not exe.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "airbyte-source-faker>=6,<8"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"could not install airbyte-source-faker from PyPI: {done.stderr[-500:]}")
    return venv


@pytest.mark.slow
def test_source_faker_for_real(tmp_path: Path) -> None:
    venv = faker_venv()
    options = json.loads((FIXTURES / "config.json").read_text().replace("FAKER_VENV", str(venv)))
    validate_options("crm", "airbyte_command", options, ["users"])
    stream = ConnectorStream("crm", "users", "airbyte_command", options, [], None)
    con = duckdb.connect()
    r = sync_stream(con, stream)
    expected = [json.loads(x)["id"] for x in (FIXTURES / "expected_records.jsonl").read_text().splitlines()]
    assert r.records_read == r.records_landed == len(expected) and r.records_with_errors == 0
    ids = [x[0] for x in con.execute("SELECT id FROM raw_crm.users ORDER BY id").fetchall()]
    assert ids == expected
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'raw_crm' AND table_name = 'users'").fetchall())
    assert types["id"] == "BIGINT" and types["updated_at"] == "TIMESTAMP WITH TIME ZONE" and types["address"] == "JSON"
    assert r.state and r.state.get("loop_offset") == 50
    again = sync_stream(con, stream)  # with the saved state: nothing new
    assert again.records_read == 0
    assert con.execute("SELECT count(*) FROM raw_crm.users").fetchall()[0][0] == 50
