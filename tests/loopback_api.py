"""Test helpers: a fake clock for the REST source, and a loopback HTTP API that pages in every style.

The API is a real ``http.server`` on 127.0.0.1 in a thread. It serves one list of records, changed by
the test between syncs, at one path per paging style, and answers the failures planned for given
request numbers (429 with Retry-After, 5xx) before serving the real page.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from ingestion.sources.rest_api import SourceRestApi


class FakeClock:
    """A clock that moves only when slept on: records every wait asked for, never waits."""

    def __init__(self, start: datetime = datetime(2026, 10, 1, tzinfo=UTC)) -> None:
        self.t = 0.0
        self.start = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """Seconds since the start."""
        return self.t

    def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock by it."""
        self.sleeps.append(seconds)
        self.t += seconds

    def now(self) -> datetime:
        """The wall time of this clock."""
        return self.start + timedelta(seconds=self.t)

    def source(self) -> SourceRestApi:
        """A REST source on this clock."""
        return SourceRestApi(sleep=self.sleep, monotonic=self.monotonic, now=self.now)


Handler = Callable[["LoopbackApi", str, dict[str, str]], tuple[int, Any, dict[str, str]]]


@dataclass
class LoopbackApi:
    """State of a loopback API: its records, the requests it got, the failures to answer."""

    records: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    faults: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)  # request number (1-based) -> answer
    routes: dict[str, Handler] = field(default_factory=dict)
    token: str | None = None  # required as "Bearer <token>" in Authorization, or as is in token_header
    token_header: str = "Authorization"
    port: int = 0

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"


def serve(api: LoopbackApi) -> ThreadingHTTPServer:
    """Start the API on a free loopback port (``api.port``); the caller shuts it down."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            api.calls.append((url.path, q))
            expected = f"Bearer {api.token}" if api.token_header == "Authorization" else api.token
            if api.token and self.headers.get(api.token_header) != expected:
                return self._send(401, {"error": "unauthorized"}, {})
            fault = api.faults.get(len(api.calls))
            if fault is not None:
                return self._send(fault[0], {"error": "busy"}, fault[1])
            route = api.routes.get(url.path)
            if route is None:
                return self._send(404, {"error": "no such path"}, {})
            status, body, headers = route(api, url.path, q)
            self._send(status, body, headers)

        def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def link_header(base: str, path: str, rels: dict[str, dict[str, Any]]) -> str:
    """An RFC 8288 ``Link`` header value: ``<url>; rel="name"`` per relation, comma separated."""
    return ", ".join(f'<{base}{path}?{urlencode(q)}>; rel="{rel}"' for rel, q in rels.items())
