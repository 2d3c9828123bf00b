"""SQL database source: tables or queries of SQLite and PostgreSQL, full refresh or incremental by cursor.

Incremental reads select ``cursor > saved`` ordered by the cursor, stream rows with a server-side
cursor (PostgreSQL) or ``fetchmany`` (SQLite), and emit a STATE checkpoint every
``checkpoint_interval`` records, but only between two different cursor values: every row of the
saved cursor value has been read when the state says so, so a resumed sync neither skips nor
repeats one. Column types come from the database (declared types for SQLite, type OIDs for
PostgreSQL) and become the stream's JSON schema; a value that does not fit (SQLite stores anything
anywhere) lands as NULL with the error in ``_airbyte_meta``.

Options (``systems.<name>.options``)::

    driver: sqlite | postgres
    path: /data/shop.db                    # sqlite
    host: 127.0.0.1                        # postgres
    port: 5432
    database: shop
    user: reader
    password: {env: SHOP_DB_PASSWORD}      # secret: from the environment only
    sslmode: prefer
    fetch_size: 10000                      # rows per fetch
    checkpoint_interval: 50000             # records between STATE messages (incremental)
    streams:
      orders: {table: public.orders}       # or {query: "select ... from ..."}
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import date, datetime
from typing import Any

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
    Status,
    SyncMode,
    connector_spec,
    record_message,
    state_message,
    stream_options_spec,
)

SPEC = connector_spec(
    "SQL database",
    "https://docs.airbyte.com/integrations/sources/postgres",
    ["driver", "streams"],
    {
        "driver": {"type": "string", "enum": ["sqlite", "postgres"]},
        "path": {"type": "string", "minLength": 1, "description": "SQLite database file."},
        "host": {"type": "string", "default": "127.0.0.1"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 5432},
        "database": {"type": "string"},
        "user": {"type": "string"},
        "password": {"type": "string", "airbyte_secret": True, "description": "database password"},
        "sslmode": {"type": "string", "enum": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]},
        "connect_timeout_seconds": {"type": "integer", "minimum": 1, "default": 10},
        "fetch_size": {"type": "integer", "minimum": 1, "default": 10000},
        "checkpoint_interval": {"type": "integer", "minimum": 1, "default": 50000},
        "streams": stream_options_spec(
            {
                "table": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$"},
                "query": {"type": "string", "minLength": 1},
                "primary_key": {"type": "array", "items": {"type": "string"}},
                "cursor_field": {"type": ["string", "null"]},
            },
        ),
    },
    sync_modes=ALL_DESTINATION_SYNC_MODES,
    extra={
    "allOf": [
        {"if": {"properties": {"driver": {"const": "sqlite"}}}, "then": {"required": ["path"]}},
        {"if": {"properties": {"driver": {"const": "postgres"}}}, "then": {"required": ["database", "user"]}},
    ],
    },
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")

# PostgreSQL type OIDs -> JSON schema.
_PG_TYPES: dict[int, dict[str, Any]] = {
    16: {"type": ["null", "boolean"]},
    20: {"type": ["null", "integer"]},
    21: {"type": ["null", "integer"]},
    23: {"type": ["null", "integer"]},
    700: {"type": ["null", "number"]},
    701: {"type": ["null", "number"]},
    1700: {"type": ["null", "number"]},
    1082: {"type": ["null", "string"], "format": "date"},
    1083: {"type": ["null", "string"], "format": "time"},
    1114: {"type": ["null", "string"], "format": "date-time", "airbyte_type": "timestamp_without_timezone"},
    1184: {"type": ["null", "string"], "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
    114: {"type": ["null", "object", "array"]},
    3802: {"type": ["null", "object", "array"]},
}


def _sqlite_type(declared: str) -> dict[str, Any]:
    """SQLite type affinity rules (https://sqlite.org/datatype3.html) to a JSON schema type."""
    t = (declared or "").upper()
    if "INT" in t:
        return {"type": ["null", "integer"]}
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        if "TIMESTAMP" in t or "DATETIME" in t:
            return {"type": ["null", "string"], "format": "date-time"}
        return {"type": ["null", "string"]}
    if t in ("DATE",):
        return {"type": ["null", "string"], "format": "date"}
    if "TIMESTAMP" in t or "DATETIME" in t:
        return {"type": ["null", "string"], "format": "date-time"}
    if "BOOL" in t:
        return {"type": ["null", "boolean"]}
    if any(k in t for k in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return {"type": ["null", "number"]}
    return {"type": ["null", "string", "number", "integer"]}  # BLOB / no type: anything


def _qualified(name: str) -> str:
    parts = name.split(".")
    if not all(_IDENT.match(p) for p in parts):
        raise ConfigError(f"invalid table name {name!r}")
    return ".".join('"' + p + '"' for p in parts)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SourceSqlDatabase:
    """Airbyte-shaped source for SQLite and PostgreSQL (see the module docstring)."""

    def spec(self) -> ConnectorSpecification:
        return SPEC

    # ---------------------------------------------------------------------------------- connecting

    @contextmanager
    def _connect(self, config: Mapping[str, Any]) -> Iterator[Any]:
        driver = config.get("driver")
        if driver == "sqlite":
            path = config.get("path")
            if not path:
                raise ConfigError("sql source: 'path' is required for driver sqlite")
            try:
                con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            except sqlite3.Error as e:
                raise ConnectorError(f"cannot open SQLite database {path!r}: {e}") from None
            with closing(con):
                yield con
        elif driver == "postgres":
            import psycopg

            try:
                con = psycopg.connect(
                    host=config.get("host", "127.0.0.1"),
                    port=int(config.get("port", 5432)),
                    dbname=config.get("database"),
                    user=config.get("user"),
                    password=config.get("password"),
                    sslmode=config.get("sslmode", "prefer"),
                    connect_timeout=int(config.get("connect_timeout_seconds", 10)),
                    application_name="order-recon-ingestion",
                )
            except psycopg.Error as e:
                raise ConnectorError(
                    f"cannot connect to PostgreSQL at {config.get('host', '127.0.0.1')}:{config.get('port', 5432)}"
                    f"/{config.get('database')} as {config.get('user')}: {str(e).strip()}"
                ) from None
            with con:
                con.read_only = True
                yield con
        else:
            raise ConfigError(f"sql source: driver must be sqlite or postgres (got {driver!r})")

    @staticmethod
    def _base_query(stream_options: Mapping[str, Any], name: str) -> str:
        if stream_options.get("query"):
            return f"({stream_options['query']})"
        return _qualified(stream_options.get("table") or name)

    # ------------------------------------------------------------------------------------ protocol

    def check(self, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        try:
            with self._connect(config) as con:
                cur = con.cursor()
                cur.execute("SELECT 1")
                cur.fetchall()
        except (ConfigError, ConnectorError) as e:
            return AirbyteConnectionStatus(Status.FAILED, str(e))
        return AirbyteConnectionStatus(Status.SUCCEEDED)

    def discover(self, config: Mapping[str, Any]) -> AirbyteCatalog:
        """One stream per configured stream, its schema from the column types."""
        streams = []
        with self._connect(config) as con:
            for name, opts in sorted((config.get("streams") or {}).items()):
                opts = opts or {}
                props = self._columns(con, config["driver"], opts, name)
                cursor = opts.get("cursor_field")
                streams.append(
                    AirbyteStream(
                        name=name,
                        json_schema={"type": "object", "properties": props},
                        supported_sync_modes=[SyncMode.FULL_REFRESH, SyncMode.INCREMENTAL],
                        source_defined_cursor=False,
                        default_cursor_field=[cursor] if cursor else [],
                        source_defined_primary_key=[[k] for k in opts.get("primary_key") or []],
                    )
                )
        return AirbyteCatalog(streams=streams)

    def _columns(self, con: Any, driver: str, opts: Mapping[str, Any], name: str) -> dict[str, Any]:
        base = self._base_query(opts, name)
        cur = con.cursor()
        try:
            if driver == "sqlite" and not opts.get("query"):
                table = opts.get("table") or name
                cur.execute(f"PRAGMA table_info({_quote(table.split('.')[-1])})")
                rows = cur.fetchall()
                if not rows:
                    raise ConnectorError(f"table {table!r} does not exist")
                return {r[1]: _sqlite_type(r[2]) for r in rows}
            cur.execute(f"SELECT * FROM {base} AS _s LIMIT 0")
            cur.fetchall()
            if driver == "sqlite":
                return {d[0]: {"type": ["null", "string", "number", "integer"]} for d in cur.description}
            return {d.name: _PG_TYPES.get(d.type_code, {"type": ["null", "string"]}) for d in cur.description}
        except (sqlite3.Error, Exception) as e:
            if isinstance(e, ConnectorError):
                raise
            raise ConnectorError(f"stream {name!r}: cannot read the columns of {base}: {str(e).strip()}") from None

    def read(
        self,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Mapping[str, Mapping[str, Any]] | None,
    ) -> Iterator[AirbyteMessage]:
        state = state or {}
        fetch = int(config.get("fetch_size", 10000))
        interval = int(config.get("checkpoint_interval", 50000))
        with self._connect(config) as con:
            for configured in catalog.streams:
                name = configured.stream.name
                opts = (config.get("streams") or {}).get(name) or {}
                yield from self._read_stream(con, config["driver"], name, opts, configured, dict(state.get(name) or {}),
                                             fetch, interval)

    def _read_stream(
        self,
        con: Any,
        driver: str,
        name: str,
        opts: Mapping[str, Any],
        configured: Any,
        state: dict[str, Any],
        fetch: int,
        interval: int,
    ) -> Iterator[AirbyteMessage]:
        base = self._base_query(opts, name)
        incremental = configured.sync_mode == SyncMode.INCREMENTAL and configured.cursor_field
        cursor_field = configured.cursor_field[0] if incremental else None
        saved = state.get("cursor_value") if incremental and state.get("cursor_field") == cursor_field else None
        params: list[Any] = []
        sql = f"SELECT * FROM {base} AS _s"
        if cursor_field:
            ph = "?" if driver == "sqlite" else "%s"
            if saved is not None:
                sql += f" WHERE {_quote(cursor_field)} > {ph}"
                params.append(saved)
            sql += f" ORDER BY {_quote(cursor_field)}"
        if driver == "postgres":
            cur = con.cursor(name=f"recon_{name}_{int(time.time())}")
            cur.itersize = fetch
        else:
            cur = con.cursor()
        try:
            cur.execute(sql, params)
        except Exception as e:  # noqa: BLE001 - any driver error, reported with the stream
            raise ConnectorError(f"stream {name!r}: query failed: {str(e).strip()}") from None
        columns: list[str] | None = None
        emitted_at = int(time.time() * 1000)
        since_checkpoint = 0
        last = saved
        try:
            while True:
                rows = cur.fetchmany(fetch)
                if columns is None:
                    columns = [d[0] for d in cur.description]
                    ci = columns.index(cursor_field) if cursor_field in columns else None
                    if cursor_field and ci is None:
                        raise ConnectorError(f"stream {name!r}: cursor field {cursor_field!r} is not a column")
                if not rows:
                    break
                for row in rows:
                    if cursor_field is not None:
                        value = row[ci]
                        if since_checkpoint >= interval and value != last and last is not None:
                            yield state_message(name, _state(cursor_field, last))
                            since_checkpoint = 0
                        if value is not None:
                            last = value
                    yield record_message(name, dict(zip(columns, row, strict=True)), emitted_at)
                    since_checkpoint += 1
        finally:
            cur.close()
        if cursor_field is not None:
            yield state_message(name, _state(cursor_field, last))
        else:
            yield state_message(name, {})


def _state(cursor_field: str, value: Any) -> dict[str, Any]:
    if isinstance(value, datetime | date):
        value = value.isoformat()
    elif value is not None and not isinstance(value, int | float | str | bool):
        value = str(value)
    return {"cursor_field": cursor_field, "cursor_value": value}
