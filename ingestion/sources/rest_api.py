"""REST API source: JSON pages, cursor/offset/page pagination, retries with backoff, a rate limit.

Options (``systems.<name>.options``)::

    base_url: https://api.example.com/v1
    auth: {type: bearer, token: {env: PSP_API_TOKEN}}   # or {type: header, header: X-Api-Key, token: ...}
                                                        # or {type: basic, username: u, password: {env: ...}}
    headers: {Accept: application/json}
    rate_limit_per_second: 10        # at most this many requests a second
    max_retries: 5                   # on 429, 5xx and connection errors
    backoff_seconds: 1.0             # first wait (doubles each retry) when no Retry-After is sent
    max_backoff_seconds: 60
    timeout_seconds: 30
    streams:
      charges:
        path: /charges
        params: {limit: 100}
        records_path: data           # where the records are in a page (dots for nesting; "" = the page)
        pagination: {type: cursor, cursor_path: next_cursor, cursor_param: starting_after}
                    # {type: offset, offset_param: offset, limit_param: limit, page_size: 100}
                    # {type: page, page_param: page, start: 1}  |  {type: none}
        incremental_param: updated_since   # send the saved cursor value as this query parameter
        json_schema: {type: object, properties: {id: {type: string}, amount: {type: integer}}}

A 429 or 5xx answer is retried after its ``Retry-After`` (seconds or an HTTP date), else after an
exponential backoff; when retries run out the error names the system, stream, URL (without its
query) and status. Incremental: the state keeps the greatest cursor value seen; records at or
below the saved value are not emitted again (and the value is sent as ``incremental_param``).
The state is emitted once, after the last page: the whole read commits as one transaction.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from ingestion.protocol import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteStream,
    ConfigError,
    ConfiguredAirbyteCatalog,
    ConnectorError,
    ConnectorSpecification,
    DestinationSyncMode,
    Status,
    SyncMode,
    Type,
    log_message,
    record_message,
    state_message,
)

_SECRET = {"type": "string", "airbyte_secret": True}

SPEC = ConnectorSpecification(
    documentation_url="https://docs.airbyte.com/connector-development/config-based/understanding-the-yaml-file/pagination",
    supported_destination_sync_modes=[
        DestinationSyncMode.OVERWRITE,
        DestinationSyncMode.APPEND,
        DestinationSyncMode.APPEND_DEDUP,
    ],
    connection_specification={
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "REST API",
        "type": "object",
        "required": ["base_url", "streams"],
        "additionalProperties": False,
        "properties": {
            "base_url": {"type": "string", "pattern": "^https?://"},
            "auth": {
                "type": "object",
                "required": ["type"],
                "additionalProperties": False,
                "properties": {
                    "type": {"type": "string", "enum": ["none", "bearer", "header", "basic"]},
                    "token": _SECRET | {"description": "API token (bearer or header auth)"},
                    "header": {"type": "string", "default": "Authorization"},
                    "username": {"type": "string"},
                    "password": _SECRET | {"description": "password (basic auth)"},
                },
            },
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "rate_limit_per_second": {"type": "number", "exclusiveMinimum": 0},
            "max_retries": {"type": "integer", "minimum": 0, "default": 5},
            "backoff_seconds": {"type": "number", "minimum": 0, "default": 1.0},
            "max_backoff_seconds": {"type": "number", "minimum": 0, "default": 60},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30},
            "streams": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["path"],
                    "additionalProperties": False,
                    "properties": {
                        "path": {"type": "string"},
                        "params": {"type": "object"},
                        "records_path": {"type": "string", "default": ""},
                        "pagination": {
                            "type": "object",
                            "required": ["type"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"type": "string", "enum": ["none", "cursor", "offset", "page"]},
                                "cursor_path": {"type": "string"},
                                "cursor_param": {"type": "string"},
                                "offset_param": {"type": "string", "default": "offset"},
                                "limit_param": {"type": "string", "default": "limit"},
                                "page_size": {"type": "integer", "minimum": 1, "default": 100},
                                "page_param": {"type": "string", "default": "page"},
                                "start": {"type": "integer", "default": 1},
                            },
                        },
                        "incremental_param": {"type": "string"},
                        "json_schema": {"type": "object"},
                        "primary_key": {"type": "array", "items": {"type": "string"}},
                        "cursor_field": {"type": ["string", "null"]},
                    },
                },
            },
        },
    },
)


class RateLimiter:
    """At most ``per_second`` calls a second (evenly spaced); thread-safe."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            time.sleep(delay)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds to wait: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _dig(page: Any, path: str) -> Any:
    node = page
    for part in [p for p in path.split(".") if p]:
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _strip_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _greater(a: Any, b: Any) -> bool:
    """Is ``a`` after ``b``? (numbers as numbers, anything else as text)."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a > b
    return str(a) > str(b)


class SourceRestApi:
    """Airbyte-shaped source for JSON REST APIs (see the module docstring)."""

    def __init__(self, session: requests.Session | None = None, sleep: Any = time.sleep) -> None:
        self.session = session or requests.Session()
        self.sleep = sleep
        self.requests_made = 0
        self.retries_made = 0

    def spec(self) -> ConnectorSpecification:
        return SPEC

    def _auth(self, config: Mapping[str, Any]) -> tuple[dict[str, str], Any]:
        auth = config.get("auth") or {"type": "none"}
        headers = dict(config.get("headers") or {})
        kind = auth.get("type", "none")
        if kind == "bearer":
            headers["Authorization"] = f"Bearer {auth['token']}"
        elif kind == "header":
            headers[auth.get("header", "Authorization")] = str(auth["token"])
        elif kind == "basic":
            return headers, (auth.get("username", ""), auth.get("password", ""))
        return headers, None

    def get(self, config: Mapping[str, Any], url: str, params: Mapping[str, Any], where: str,
            limiter: RateLimiter) -> Any:
        """GET a JSON page, retrying 429/5xx/connection errors; raises ``ConnectorError`` when out of retries."""
        headers, basic = self._auth(config)
        retries = int(config.get("max_retries", 5))
        backoff = float(config.get("backoff_seconds", 1.0))
        cap = float(config.get("max_backoff_seconds", 60))
        timeout = float(config.get("timeout_seconds", 30))
        shown = _strip_query(url)
        attempt = 0
        while True:
            limiter.wait()
            self.requests_made += 1
            problem: str
            wait: float | None = None
            try:
                response = self.session.get(url, params=params, headers=headers, auth=basic, timeout=timeout)
            except requests.RequestException as e:
                problem = f"{type(e).__name__} (connection failed or timed out)"
            else:
                status = response.status_code
                if status < 400:
                    try:
                        return response.json()
                    except ValueError:
                        raise ConnectorError(f"{where}: GET {shown} answered {status} with a body that is not JSON") from None
                if status == 429 or status >= 500:
                    problem = f"HTTP {status}"
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
                else:
                    hint = " (check the credentials in the environment variable named in the config)" if status in (401, 403) else ""
                    raise ConnectorError(f"{where}: GET {shown} failed with HTTP {status}{hint}")
            if attempt >= retries:
                raise ConnectorError(f"{where}: GET {shown} failed after {attempt + 1} attempt(s): {problem}")
            if wait is None:
                wait = min(cap, backoff * (2**attempt))
            attempt += 1
            self.retries_made += 1
            self.sleep(wait)  # Retry-After is honoured as sent; the backoff is capped

    def check(self, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        try:
            limiter = RateLimiter(config.get("rate_limit_per_second"))
            for name, opts in (config.get("streams") or {}).items():
                self.get(config, self._url(config, opts), dict(opts.get("params") or {}), f"stream {name!r}", limiter)
                break
        except (ConnectorError, KeyError) as e:
            return AirbyteConnectionStatus(Status.FAILED, str(e))
        return AirbyteConnectionStatus(Status.SUCCEEDED)

    @staticmethod
    def _url(config: Mapping[str, Any], opts: Mapping[str, Any]) -> str:
        return config["base_url"].rstrip("/") + "/" + str(opts["path"]).lstrip("/")

    def discover(self, config: Mapping[str, Any]) -> AirbyteCatalog:
        """The configured streams; their schema is the declared ``json_schema`` (columns of undeclared
        keys are typed from the data when landed)."""
        out = []
        for name, opts in sorted((config.get("streams") or {}).items()):
            if not isinstance(opts, Mapping) or not opts.get("path"):
                raise ConfigError(f"rest_api stream {name!r}: 'path' is required")
            cursor = opts.get("cursor_field")
            out.append(
                AirbyteStream(
                    name=name,
                    json_schema=dict(opts.get("json_schema") or {"type": "object", "properties": {}}),
                    supported_sync_modes=[SyncMode.FULL_REFRESH, SyncMode.INCREMENTAL],
                    default_cursor_field=[cursor] if cursor else [],
                    source_defined_primary_key=[[k] for k in opts.get("primary_key") or []],
                )
            )
        return AirbyteCatalog(streams=out)

    def read(
        self,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Mapping[str, Mapping[str, Any]] | None,
    ) -> Iterator[AirbyteMessage]:
        state = state or {}
        limiter = RateLimiter(config.get("rate_limit_per_second"))
        for configured in catalog.streams:
            name = configured.stream.name
            opts = (config.get("streams") or {}).get(name) or {}
            yield from self._read_stream(config, name, opts, configured, dict(state.get(name) or {}), limiter)

    def _read_stream(self, config: Mapping[str, Any], name: str, opts: Mapping[str, Any], configured: Any,
                     state: dict[str, Any], limiter: RateLimiter) -> Iterator[AirbyteMessage]:
        where = f"stream {name!r}"
        url = self._url(config, opts)
        params = dict(opts.get("params") or {})
        incremental = configured.sync_mode == SyncMode.INCREMENTAL and configured.cursor_field
        cursor_field = configured.cursor_field[0] if incremental else None
        saved = state.get("cursor_value") if incremental and state.get("cursor_field") == cursor_field else None
        if saved is not None and opts.get("incremental_param"):
            params[opts["incremental_param"]] = saved
        pagination = dict(opts.get("pagination") or {"type": "none"})
        kind = pagination.get("type", "none")
        page_size = int(pagination.get("page_size", 100))
        offset = 0
        page_number = int(pagination.get("start", 1))
        if kind == "offset":
            params[pagination.get("limit_param", "limit")] = page_size
        newest = saved
        emitted_at = int(time.time() * 1000)
        pages = 0
        while True:
            if kind == "offset":
                params[pagination.get("offset_param", "offset")] = offset
            elif kind == "page":
                params[pagination.get("page_param", "page")] = page_number
            page = self.get(config, url, params, where, limiter)
            pages += 1
            records = _dig(page, opts.get("records_path", "")) if opts.get("records_path") else page
            if records is None:
                records = []
            if not isinstance(records, list):
                raise ConnectorError(f"{where}: records_path {opts.get('records_path')!r} is not a list in the page")
            for r in records:
                if not isinstance(r, dict):
                    yield AirbyteMessage(type=Type.INVALID, invalid=_invalid(name, r))
                    continue
                if cursor_field is not None:
                    value = r.get(cursor_field)
                    if value is not None and saved is not None and not _greater(value, saved):
                        continue  # already landed by an earlier sync
                    if value is not None and (newest is None or _greater(value, newest)):
                        newest = value
                yield record_message(name, r, emitted_at)
            if kind == "cursor":
                nxt = _dig(page, pagination.get("cursor_path", "next_cursor"))
                if not nxt or not records:
                    break
                params[pagination.get("cursor_param", "cursor")] = nxt
            elif kind == "offset":
                if len(records) < page_size:
                    break
                offset += len(records)
            elif kind == "page":
                if not records:
                    break
                page_number += 1
            else:
                break
        yield log_message("INFO", f"{where}: {pages} page(s), {self.requests_made} request(s), {self.retries_made} retr(ies)")
        yield state_message(name, {"cursor_field": cursor_field, "cursor_value": newest} if cursor_field else {})


def _invalid(stream: str, value: Any) -> Any:
    import json

    from ingestion.protocol import InvalidRecord

    return InvalidRecord(stream, json.dumps(value, default=str), f"record is a JSON {type(value).__name__}, not an object")
