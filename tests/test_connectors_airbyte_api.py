"""airbyte_api connector (airbyte-api client) against a loopback server that answers like Airbyte's API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion.connectors import ConnectorStream, validate_options
from ingestion.protocol import ConnectorError
from ingestion.sync import sync_stream

FIXTURES = Path(__file__).parent / "fixtures" / "airbyte_api"


class Fake:
    def __init__(self) -> None:
        self.final = "succeeded"
        self.polls_before_done = 2
        self.polls = 0
        self.cancelled: list[int] = []
        self.auth: list[str | None] = []


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RECON_TEST_AIRBYTE_TOKEN", "ab-token-123")
    f = Fake()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _job(self, status: str) -> dict[str, Any]:
            return {"jobId": 1, "status": status, "jobType": "sync", "startTime": "2026-10-02T01:00:00Z",
                    "connectionId": "conn-1", "rowsSynced": 42, "bytesSynced": 4200}

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:  # noqa: N802
            f.auth.append(self.headers.get("Authorization"))
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/v1/jobs" and body == {"connectionId": "conn-1", "jobType": "sync"}
            self._send(200, self._job("pending"))

        def do_GET(self) -> None:  # noqa: N802
            f.polls += 1
            status = f.final if f.polls > f.polls_before_done else "running"
            self._send(200, self._job(status))

        def do_DELETE(self) -> None:  # noqa: N802
            f.cancelled.append(int(self.path.rsplit("/", 1)[1]))
            self._send(200, self._job("cancelled"))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    f.port = server.server_address[1]  # type: ignore[attr-defined]
    yield f
    server.shutdown()
    server.server_close()


def stream(port: int, **over: Any) -> ConnectorStream:
    options = json.loads((FIXTURES / "config.json").read_text().replace("PORT", str(port))) | over
    validate_options("erp", "airbyte_api", options, ["invoices"])
    return ConnectorStream("erp", "invoices", "airbyte_api", options, ["id"], None)


def test_triggers_waits_and_records_freshness(fake: Fake) -> None:
    con = duckdb.connect()
    r = sync_stream(con, stream(fake.port))
    expected = json.loads((FIXTURES / "expected_records.jsonl").read_text())
    assert r.records_landed == expected["rowsSynced"] and fake.polls == 3
    assert fake.auth == ["Bearer ab-token-123"]
    files = con.execute("SELECT file_path, records_landed FROM recon_meta.landed_files").fetchall()
    assert files == [("sync://airbyte-job-1", 42)]
    # a second stream of the same system within reuse_minutes reuses the job
    r2 = sync_stream(con, stream(fake.port, reuse_minutes=5))
    assert fake.polls == 3 and r2.errors and "reused airbyte-job-1" in r2.errors[0]


def test_failed_job_is_a_clear_error_and_no_freshness(fake: Fake) -> None:
    fake.final = "failed"
    con = duckdb.connect()
    with pytest.raises(ConnectorError, match=r"system 'erp'.*job 1 of connection conn-1 ended failed"):
        sync_stream(con, stream(fake.port))
    assert con.execute("SELECT count(*) FROM recon_meta.landed_files").fetchall()[0][0] == 0
    assert con.execute("SELECT status FROM recon_meta.sync_runs").fetchall() == [("failed",)]


def test_timeout_cancels_the_job(fake: Fake) -> None:
    fake.polls_before_done = 10**9
    con = duckdb.connect()
    with pytest.raises(ConnectorError, match="did not finish within 0.2 s"):
        sync_stream(con, stream(fake.port, timeout_seconds=0.2))
    assert fake.cancelled == [1]


def test_unreachable_server_and_invalid_config() -> None:
    con = duckdb.connect()
    with pytest.raises(ConnectorError, match="system 'erp'"):
        sync_stream(con, stream(1, timeout_seconds=1), env={"RECON_TEST_AIRBYTE_TOKEN": "t0ken"})
    bad = json.loads((FIXTURES / "invalid_config.json").read_text())
    with pytest.raises(ValueError, match="connection_id"):
        validate_options("erp", "airbyte_api", bad, [])
