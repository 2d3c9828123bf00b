"""REST API source: JSON pages, seven pagination types, retries honouring Retry-After, a rate limit.

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
        pagination: {type: last_record, cursor_param: starting_after, has_more_path: has_more}
                    # {type: cursor, cursor_path: next_cursor, cursor_param: starting_after}
                    # {type: link_header}  |  {type: next_url, next_url_path: links.next}
                    # {type: offset, offset_param: offset, limit_param: limit, page_size: 100}
                    # {type: page, page_param: page, start: 1}  |  {type: none}
        incremental_param: updated_since   # send the saved cursor value as this query parameter
        json_schema: {type: object, properties: {id: {type: string}, amount: {type: integer}}}

Pagination: ``ingestion/sources/rest_paging.py``; HTTP, retries and the rate limit:
``ingestion/sources/rest_http.py``. When retries run out the error names the system, stream, URL
(without its query) and status. Incremental: the state keeps the greatest cursor value seen; records
at or below the saved value are not emitted again (and the value is sent as ``incremental_param`` on
the first page; a next URL carries its own query). The state is emitted once, after the last page:
the whole read commits as one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import requests

from ingestion.protocol import (
    ALL_DESTINATION_SYNC_MODES,
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteStream,
    ConfigError,
    ConfiguredAirbyteCatalog,
    ConnectorError,
    ConnectorSpecification,
    InvalidRecord,
    Status,
    SyncMode,
    Type,
    connector_spec,
    log_message,
    record_message,
    state_message,
    stream_options_spec,
)
from ingestion.sources.rest_http import Clock, HttpClient, Now, RateLimiter, Sleep, utc_now
from ingestion.sources.rest_paging import Paginator, dig, pagination_schema

_SECRET = {"type": "string", "airbyte_secret": True}

SPEC = connector_spec(
    "REST API",
    "https://docs.airbyte.com/connector-development/config-based/understanding-the-yaml-file/pagination",
    ["base_url", "streams"],
    {
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
        "streams": stream_options_spec(
            {
                "path": {"type": "string"},
                "params": {"type": "object"},
                "records_path": {"type": "string", "default": ""},
                "pagination": pagination_schema(),
                "incremental_param": {"type": "string"},
                "json_schema": {"type": "object"},
                "primary_key": {"type": "array", "items": {"type": "string"}},
                "cursor_field": {"type": ["string", "null"]},
            },
            required=["path"],
        ),
    },
    sync_modes=ALL_DESTINATION_SYNC_MODES,
)


def _greater(a: Any, b: Any) -> bool:
    """Is ``a`` after ``b``? (numbers as numbers, ISO 8601 times with offsets as instants, else text)."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a > b
    if isinstance(a, str) and isinstance(b, str):
        try:
            ta, tb = datetime.fromisoformat(a), datetime.fromisoformat(b)
        except ValueError:
            pass
        else:
            if ta.tzinfo is not None and tb.tzinfo is not None:
                return ta > tb  # a shop's offset changes with daylight saving; text order would not
    return str(a) > str(b)


class SourceRestApi:
    """Airbyte-shaped source for JSON REST APIs (see the module docstring).

    Args:
        session: the requests session (default: a new one).
        sleep: called with every wait, of the rate limit and of the retries (default ``time.sleep``).
        monotonic: the rate limiter's clock (default ``time.monotonic``).
        now: the wall clock (aware UTC) for ``Retry-After`` dates.
    """

    def __init__(self, session: requests.Session | None = None, sleep: Sleep = time.sleep,
                 monotonic: Clock = time.monotonic, now: Now = utc_now) -> None:
        self.http = HttpClient(session or requests.Session(), sleep=sleep, monotonic=monotonic, now=now)

    @property
    def requests_made(self) -> int:
        """Requests sent so far (retries included)."""
        return self.http.requests_made

    @property
    def retries_made(self) -> int:
        """Retries so far."""
        return self.http.retries_made

    def spec(self) -> ConnectorSpecification:
        """The connector's spec (the options' JSON schema)."""
        return SPEC

    def check(self, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """GET the first page of the first stream.

        Returns:
            SUCCEEDED, or FAILED with the error.
        """
        try:
            limiter = self.http.limiter(config.get("rate_limit_per_second"))
            for name, opts in (config.get("streams") or {}).items():
                self.http.get(config, self._url(config, opts), dict(opts.get("params") or {}), f"stream {name!r}", limiter)
                break
        except (ConnectorError, KeyError) as e:
            return AirbyteConnectionStatus(Status.FAILED, str(e))
        return AirbyteConnectionStatus(Status.SUCCEEDED)

    @staticmethod
    def _url(config: Mapping[str, Any], opts: Mapping[str, Any]) -> str:
        return config["base_url"].rstrip("/") + "/" + str(opts["path"]).lstrip("/")

    def discover(self, config: Mapping[str, Any]) -> AirbyteCatalog:
        """The configured streams; their schema is the declared ``json_schema`` (columns of undeclared
        keys are typed from the data when landed).

        Returns:
            The catalog.
        """
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
        """RECORD messages of every configured stream, then one STATE per stream.

        Args:
            config: the options, secrets resolved.
            catalog: the streams to read and their sync modes.
            state: per stream, the state of the last sync.

        Returns:
            The messages, page by page.
        """
        state = state or {}
        limiter = self.http.limiter(config.get("rate_limit_per_second"))
        for configured in catalog.streams:
            name = configured.stream.name
            opts = (config.get("streams") or {}).get(name) or {}
            yield from self._read_stream(config, name, opts, configured, dict(state.get(name) or {}), limiter)

    def _read_stream(self, config: Mapping[str, Any], name: str, opts: Mapping[str, Any], configured: Any,
                     state: dict[str, Any], limiter: RateLimiter) -> Iterator[AirbyteMessage]:
        where = f"stream {name!r}"
        params = dict(opts.get("params") or {})
        incremental = configured.sync_mode == SyncMode.INCREMENTAL and configured.cursor_field
        cursor_field = configured.cursor_field[0] if incremental else None
        saved = state.get("cursor_value") if incremental and state.get("cursor_field") == cursor_field else None
        if saved is not None and opts.get("incremental_param"):
            params[opts["incremental_param"]] = saved
        paginator = Paginator(opts.get("pagination") or {"type": "none"}, config["base_url"], where)
        request = paginator.first(self._url(config, opts), params)
        newest = saved
        emitted_at = int(time.time() * 1000)
        pages = 0
        while request is not None:
            page, response = self.http.get(config, request.url, request.params, where, limiter)
            pages += 1
            records = dig(page, opts["records_path"]) if opts.get("records_path") else page
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
            request = paginator.next(request, page, response, records)
        yield log_message("INFO", f"{where}: {pages} page(s), {self.requests_made} request(s), {self.retries_made} retr(ies)")
        yield state_message(name, {"cursor_field": cursor_field, "cursor_value": newest} if cursor_field else {})


def _invalid(stream: str, value: Any) -> InvalidRecord:
    return InvalidRecord(stream, json.dumps(value, default=str), f"record is a JSON {type(value).__name__}, not an object")
