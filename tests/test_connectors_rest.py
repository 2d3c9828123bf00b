"""REST API source against a real loopback HTTP server: pagination, 429 + Retry-After, 5xx, auth, state.

Waits are asserted as asked of an injected clock, never measured (tests/loopback_api.py FakeClock).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest
from loopback_api import FakeClock

from ingestion.connectors import ConnectorStream, validate_options
from ingestion.protocol import ConnectorError
from ingestion.sync import sync_stream

FIXTURES = Path(__file__).parent / "fixtures" / "rest_api"
TOKEN = "tok-" + "x" * 20
CHARGES = [json.loads(line) for line in (FIXTURES / "expected_records.jsonl").read_text().splitlines()]


class Api:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_plan: list[tuple[int, dict[str, str]]] = []  # answers to give before the real one
        self.extra: list[Any] = []


def serve(api: Api) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            api.calls.append((url.path, q))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"error": "unauthorized"})
            if api.fail_plan:
                status, headers = api.fail_plan.pop(0)
                return self._send(status, {"error": "busy"}, headers)
            since = int(q.get("updated_since", 0))
            rows = [c for c in CHARGES if c["updated"] > since] + api.extra
            start = int(q.get("starting_after", 0))
            page = rows[start : start + 4]
            nxt = start + 4 if start + 4 < len(rows) else None
            self._send(200, {"data": page, "next_cursor": nxt})

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RECON_TEST_API_TOKEN", TOKEN)
    state = Api()
    server, port = serve(state)
    state.port = port  # type: ignore[attr-defined]
    yield state
    server.shutdown()
    server.server_close()


def rest_stream(port: int, **over: Any) -> ConnectorStream:
    options = json.loads((FIXTURES / "config.json").read_text().replace("PORT", str(port)))
    options.update(over)
    validate_options("psp", "rest_api", options, ["charges"])
    return ConnectorStream("psp", "charges", "rest_api", options, ["id"], "updated")


def test_pages_retries_and_saved_state(api: Api) -> None:
    api.fail_plan = [(429, {"Retry-After": "1"}), (503, {}), (500, {})]
    con = duckdb.connect()
    clock = FakeClock()
    stream = rest_stream(api.port)
    stream.options.pop("rate_limit_per_second")  # only the retries' waits below
    r = sync_stream(con, stream, source=clock.source())
    assert clock.sleeps == [1.0, 0.02, 0.04]  # Retry-After honoured, then backoff 0.01 doubling
    assert r.records_read == r.records_landed == len(CHARGES)
    got = con.execute("SELECT id, amount, currency, updated FROM raw_psp.charges ORDER BY updated").fetchall()
    assert got == [(c["id"], c["amount"], c["currency"], c["updated"]) for c in CHARGES]
    assert r.state == json.loads((FIXTURES / "sample_state.json").read_text())
    # reading again with the saved state: nothing new, and the cursor was sent to the API
    again = sync_stream(con, rest_stream(api.port))
    assert again.records_read == 0
    assert api.calls[-1][1].get("updated_since") == str(CHARGES[-1]["updated"])


def test_bad_records_quarantined_and_rate_limit(api: Api) -> None:
    api.extra = [{"id": "ch_x", "amount": "lots", "updated": 1790000100}, [1, 2], {"amount": 5, "updated": 1790000101}]
    con = duckdb.connect()
    clock = FakeClock()
    r = sync_stream(con, rest_stream(api.port, rate_limit_per_second=20), source=clock.source())
    assert r.records_read == len(CHARGES) + 3 == r.records_landed + r.records_quarantined
    assert (r.records_quarantined, r.records_with_errors) == (2, 1)
    reasons = sorted(x[0] for x in con.execute("SELECT reason FROM recon_meta.quarantine").fetchall())
    assert reasons == ["missing primary key field 'id'", "record is a JSON list, not an object"]
    # Evenly spaced at 20/s: every request after the first waited 1/20 s on the (injected) clock.
    assert len(api.calls) == 4
    assert clock.sleeps == pytest.approx([0.05] * (len(api.calls) - 1))


def test_down_source_fails_clearly_after_retries(api: Api) -> None:
    api.fail_plan = [(502, {})] * 10
    con = duckdb.connect()
    with pytest.raises(ConnectorError, match=r"system 'psp', stream 'charges'.*after 5 attempt\(s\): HTTP 502"):
        sync_stream(con, rest_stream(api.port))
    assert con.execute("SELECT count(*) FROM recon_meta.landed_files").fetchall()[0][0] == 0


def test_token_from_env_never_logged(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_TEST_API_TOKEN", "wrong-token-value")
    con = duckdb.connect()
    with pytest.raises(ConnectorError, match="HTTP 401") as e:
        sync_stream(con, rest_stream(api.port))
    assert "wrong-token-value" not in str(e.value)
    monkeypatch.delenv("RECON_TEST_API_TOKEN")
    with pytest.raises(Exception, match="RECON_TEST_API_TOKEN"):
        sync_stream(con, rest_stream(api.port))


def test_invalid_config_names_keys() -> None:
    bad = json.loads((FIXTURES / "invalid_config.json").read_text())
    with pytest.raises(ValueError) as e:
        validate_options("psp", "rest_api", bad, ["charges"])
    text = str(e.value)
    assert "options.auth.token" in text and "sk_live_inline" not in text and "options.base_url" in text
