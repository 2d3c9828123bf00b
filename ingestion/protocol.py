"""A small, dependency-free subset of the Airbyte protocol, plus one in-database extension.

The shapes follow the Airbyte protocol (https://docs.airbyte.com/understanding-airbyte/airbyte-protocol):
a source declares a ``ConnectorSpecification``, answers ``check`` with an ``AirbyteConnectionStatus``,
``discover`` with an ``AirbyteCatalog`` and ``read`` with a stream of ``AirbyteMessage`` (RECORD, STATE,
LOG, TRACE). Dicts produced by ``to_dict`` and read by ``from_dict`` use the protocol's JSON field names,
so catalogs and states can be saved as fixtures or exchanged with real Airbyte connectors later.

Row-at-a-time sources (REST API, SQL databases, external Airbyte connectors run by command) emit
RECORD messages; the destination buffers them and lands them in bulk (one Arrow column of JSON text per
buffer, typed with set-based SQL), never row by row. ``parse_message`` reads one line of an Airbyte
connector's stdout; ``message_to_dict`` writes one.

Extension (``Type.BATCH``): sources that can read their input with DuckDB (files: CSV, JSONL, Parquet)
do not emit one RECORD message per row. They stage a whole batch inside the destination's DuckDB
connection (a temporary table) and emit one ``RecordBatch`` describing it; the destination then
lands it with set-based SQL. Row-at-a-time sources (REST, later) keep emitting RECORD messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

# Columns a file-based Airbyte source adds to every record.
FILE_URL_COLUMN = "_ab_source_file_url"
FILE_MODIFIED_COLUMN = "_ab_source_file_last_modified"


def quote_ident(name: str) -> str:
    """Quote a SQL identifier (DuckDB and standard SQL): identifiers are never pasted in raw."""
    return '"' + name.replace('"', '""') + '"'


def max_cursor(a: Any, b: Any) -> Any:
    """The greater of two cursor values, either of them possibly None (compared as text if they do not compare)."""
    if a is None:
        return b
    if b is None:
        return a
    try:
        return b if b > a else a
    except TypeError:
        return b if str(b) > str(a) else a


class ConnectorError(Exception):
    """A connector could not do its job; the message names the system, stream and what went wrong."""


class ConfigError(ConnectorError, ValueError):
    """A connector's configuration is invalid or points at something that does not exist."""


class Type(StrEnum):
    RECORD = "RECORD"
    STATE = "STATE"
    LOG = "LOG"
    SPEC = "SPEC"
    CONNECTION_STATUS = "CONNECTION_STATUS"
    CATALOG = "CATALOG"
    TRACE = "TRACE"
    BATCH = "BATCH"  # extension: a batch staged inside the destination's database
    INVALID = "INVALID"  # extension: input that could not become a record (quarantined)


class SyncMode(StrEnum):
    FULL_REFRESH = "full_refresh"
    INCREMENTAL = "incremental"


class DestinationSyncMode(StrEnum):
    APPEND = "append"
    OVERWRITE = "overwrite"
    APPEND_DEDUP = "append_dedup"


class Status(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass
class ConnectorSpecification:
    """What a connector accepts as configuration (a JSON schema; secrets marked ``airbyte_secret``)."""

    connection_specification: dict[str, Any]
    documentation_url: str | None = None
    supports_incremental: bool = True
    supported_destination_sync_modes: list[DestinationSyncMode] = field(
        default_factory=lambda: [DestinationSyncMode.APPEND]
    )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "connectionSpecification": self.connection_specification,
            "supportsIncremental": self.supports_incremental,
            "supported_destination_sync_modes": [str(m) for m in self.supported_destination_sync_modes],
        }
        if self.documentation_url:
            out["documentationUrl"] = self.documentation_url
        return out


def stream_options_spec(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """The schema of a connector's ``streams`` option: each stream's name to its options (a closed object)."""
    return {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            **({"required": required} if required else {}),
            "additionalProperties": False,
            "properties": properties,
        },
    }


# Every destination sync mode: a row connector's streams can be appended, deduplicated or overwritten.
ALL_DESTINATION_SYNC_MODES = (
    DestinationSyncMode.OVERWRITE,
    DestinationSyncMode.APPEND,
    DestinationSyncMode.APPEND_DEDUP,
)


def connector_spec(
    title: str,
    documentation_url: str,
    required: list[str],
    properties: dict[str, Any],
    *,
    sync_modes: tuple[DestinationSyncMode, ...] | None = None,
    extra: dict[str, Any] | None = None,
) -> ConnectorSpecification:
    """A connector's specification: its config is a closed JSON object (draft-07) of these properties.

    ``sync_modes``: the destination sync modes it supports (default: the protocol's default, append);
    ``extra``: more keywords of the config's schema, after its properties (``allOf`` and the like).
    """
    return ConnectorSpecification(
        documentation_url=documentation_url,
        **({"supported_destination_sync_modes": list(sync_modes)} if sync_modes else {}),
        connection_specification={
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": title,
            "type": "object",
            "required": required,
            "additionalProperties": False,
            "properties": properties,
            **(extra or {}),
        },
    )


@dataclass
class AirbyteConnectionStatus:
    status: Status
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": str(self.status), **({"message": self.message} if self.message else {})}


@dataclass
class AirbyteStream:
    """One stream as a source discovers it."""

    name: str
    json_schema: dict[str, Any]
    supported_sync_modes: list[SyncMode] = field(
        default_factory=lambda: [SyncMode.FULL_REFRESH, SyncMode.INCREMENTAL]
    )
    source_defined_cursor: bool = False
    default_cursor_field: list[str] = field(default_factory=list)
    source_defined_primary_key: list[list[str]] = field(default_factory=list)
    namespace: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "json_schema": self.json_schema,
            "supported_sync_modes": [str(m) for m in self.supported_sync_modes],
            "source_defined_cursor": self.source_defined_cursor,
            "default_cursor_field": self.default_cursor_field,
            "source_defined_primary_key": self.source_defined_primary_key,
        }
        if self.namespace is not None:
            out["namespace"] = self.namespace
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AirbyteStream:
        return cls(
            name=d["name"],
            json_schema=d.get("json_schema", {}),
            supported_sync_modes=[SyncMode(m) for m in d.get("supported_sync_modes", ["full_refresh"])],
            source_defined_cursor=bool(d.get("source_defined_cursor", False)),
            default_cursor_field=list(d.get("default_cursor_field", [])),
            source_defined_primary_key=[list(k) for k in d.get("source_defined_primary_key", [])],
            namespace=d.get("namespace"),
        )


@dataclass
class AirbyteCatalog:
    streams: list[AirbyteStream]

    def to_dict(self) -> dict[str, Any]:
        return {"streams": [s.to_dict() for s in self.streams]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AirbyteCatalog:
        return cls(streams=[AirbyteStream.from_dict(s) for s in d.get("streams", [])])


@dataclass
class ConfiguredAirbyteStream:
    """A stream as the platform chose to sync it (mode, cursor, key, generation)."""

    stream: AirbyteStream
    sync_mode: SyncMode = SyncMode.INCREMENTAL
    destination_sync_mode: DestinationSyncMode = DestinationSyncMode.APPEND
    cursor_field: list[str] = field(default_factory=list)
    primary_key: list[list[str]] = field(default_factory=list)
    generation_id: int = 0
    sync_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stream": self.stream.to_dict(),
            "sync_mode": str(self.sync_mode),
            "destination_sync_mode": str(self.destination_sync_mode),
            "cursor_field": self.cursor_field,
            "primary_key": self.primary_key,
            "generation_id": self.generation_id,
        }
        if self.sync_id is not None:
            out["sync_id"] = self.sync_id
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfiguredAirbyteStream:
        return cls(
            stream=AirbyteStream.from_dict(d["stream"]),
            sync_mode=SyncMode(d.get("sync_mode", "incremental")),
            destination_sync_mode=DestinationSyncMode(d.get("destination_sync_mode", "append")),
            cursor_field=list(d.get("cursor_field", [])),
            primary_key=[list(k) for k in d.get("primary_key", [])],
            generation_id=int(d.get("generation_id", 0)),
            sync_id=d.get("sync_id"),
        )


@dataclass
class ConfiguredAirbyteCatalog:
    streams: list[ConfiguredAirbyteStream]

    def to_dict(self) -> dict[str, Any]:
        return {"streams": [s.to_dict() for s in self.streams]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfiguredAirbyteCatalog:
        return cls(streams=[ConfiguredAirbyteStream.from_dict(s) for s in d.get("streams", [])])

    def get(self, name: str) -> ConfiguredAirbyteStream | None:
        return next((s for s in self.streams if s.stream.name == name), None)


@dataclass
class AirbyteRecordMessage:
    stream: str
    data: dict[str, Any]
    emitted_at: int  # epoch milliseconds, as in the protocol
    namespace: str | None = None


@dataclass
class AirbyteStateMessage:
    """Per-stream state (protocol state type STREAM)."""

    stream: str
    stream_state: dict[str, Any]
    namespace: str | None = None

    def to_dict(self) -> dict[str, Any]:
        descriptor: dict[str, Any] = {"name": self.stream}
        if self.namespace is not None:
            descriptor["namespace"] = self.namespace
        return {
            "type": "STREAM",
            "stream": {"stream_descriptor": descriptor, "stream_state": self.stream_state},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AirbyteStateMessage:
        stream = d["stream"]
        descriptor = stream["stream_descriptor"]
        return cls(
            stream=descriptor["name"],
            stream_state=dict(stream.get("stream_state") or {}),
            namespace=descriptor.get("namespace"),
        )


@dataclass
class AirbyteLogMessage:
    level: str  # FATAL, ERROR, WARN, INFO, DEBUG, TRACE
    message: str


@dataclass
class AirbyteTraceMessage:
    """A TRACE message; this project uses ``type == "ERROR"`` (a connector's failure report)."""

    type: str  # ERROR, ESTIMATE, STREAM_STATUS, ANALYTICS
    message: str | None = None
    internal_message: str | None = None
    failure_type: str | None = None  # system_error, config_error, transient_error
    stream: str | None = None


@dataclass
class InvalidRecord:
    """Input a row source could not turn into a record (malformed line, not an object, ...).

    Extension: the destination quarantines it with its reason, so records read = landed + quarantined.
    """

    stream: str | None
    raw: str
    reason: str


@dataclass
class StagedBatch:
    """A batch a source has already read into a temporary table of the destination's connection.

    ``table`` holds the source's columns (names exactly as the source wrote them, types already
    decided); ``quarantine_table``, when set, holds ``line_number BIGINT, raw_record VARCHAR,
    reason VARCHAR`` for the input that could not become a record.
    """

    table: str
    columns: list[tuple[str, str]]  # (name, DuckDB type), in source order
    records: int  # rows in ``table``
    quarantine_table: str | None = None
    quarantined: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)  # for ``_airbyte_meta.changes``
    cursor_max: Any = None
    # Optional VARCHAR column of ``table`` (not in ``columns``) holding each row's own
    # ``_airbyte_meta.changes`` as a JSON array text, or NULL (record batches: type errors per value).
    row_changes_column: str | None = None
    records_with_errors: int = 0
    # Optional BIGINT column of ``table`` (not in ``columns``): each row's line in its file, for the
    # quarantine of values that do not fit the stream's types (default: the row's position + 1).
    line_column: str | None = None

    @property
    def records_read(self) -> int:
        return self.records + self.quarantined


@dataclass
class RecordBatch:
    """One unit of input (for the file-drop source: one file) and what became of it.

    Exactly one of ``staged`` and ``error`` is set. ``error`` means the input could not be read at
    all (corrupt file, changed while reading); the destination quarantines it as a whole.
    """

    stream: str
    namespace: str | None
    source_url: str
    source_modified_at: datetime | None
    source_size: int
    staged: StagedBatch | None = None
    error: str | None = None
    # File batches add a ``recon_meta.landed_files`` row each; record batches do not (the sync adds
    # one ``sync://<sync_id>`` row when it succeeds).
    track_file: bool = True


@dataclass
class AirbyteMessage:
    type: Type
    record: AirbyteRecordMessage | None = None
    state: AirbyteStateMessage | None = None
    log: AirbyteLogMessage | None = None
    batch: RecordBatch | None = None
    trace: AirbyteTraceMessage | None = None
    invalid: InvalidRecord | None = None


def record_message(stream: str, data: dict[str, Any], emitted_at: int, namespace: str | None = None) -> AirbyteMessage:
    return AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(stream, data, emitted_at, namespace))


def state_message(stream: str, state: dict[str, Any], namespace: str | None = None) -> AirbyteMessage:
    return AirbyteMessage(type=Type.STATE, state=AirbyteStateMessage(stream, state, namespace))


def log_message(level: str, message: str) -> AirbyteMessage:
    return AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=level, message=message))


def parse_message(line: str | bytes, default_stream: str | None = None) -> AirbyteMessage:
    """One line of a connector's stdout as a message; anything that is not one becomes ``INVALID``.

    A line that is not JSON, not an object, or a RECORD without an object ``data`` is returned as a
    message with ``invalid`` set (the destination quarantines it); a line of another message type this
    project does not use (SPEC, CATALOG, CONNECTION_STATUS, CONTROL) becomes a DEBUG log line.
    """
    try:
        d = _loads(line)
    except ValueError as e:
        return _invalid(default_stream, line, f"malformed message line: {e}")
    if not isinstance(d, dict):
        return _invalid(default_stream, line, "message line is not a JSON object")
    kind = d.get("type")
    if kind == "RECORD":
        r = d.get("record")
        if not isinstance(r, dict) or not isinstance(r.get("data"), dict):
            stream = r.get("stream") if isinstance(r, dict) else None
            return _invalid(stream or default_stream, line, "RECORD message without an object 'data'")
        return AirbyteMessage(
            type=Type.RECORD,
            record=AirbyteRecordMessage(
                stream=r.get("stream") or default_stream or "",
                data=r["data"],
                emitted_at=int(r.get("emitted_at") or 0),
                namespace=r.get("namespace"),
            ),
        )
    if kind == "STATE":
        st = d.get("state") or {}
        if st.get("type") == "STREAM" or "stream" in st:
            try:
                return AirbyteMessage(type=Type.STATE, state=AirbyteStateMessage.from_dict(st))
            except (KeyError, TypeError):
                pass
        if "data" in st:  # legacy state: one blob for the whole source
            return AirbyteMessage(
                type=Type.STATE, state=AirbyteStateMessage(default_stream or "", dict(st["data"] or {}))
            )
        return log_message("WARN", f"ignored a STATE message of an unsupported shape: {str(st)[:200]}")
    if kind == "LOG":
        log = d.get("log") or {}
        return log_message(str(log.get("level", "INFO")), str(log.get("message", "")))
    if kind == "TRACE":
        t = d.get("trace") or {}
        err = t.get("error") or {}
        status = t.get("stream_status") or {}
        return AirbyteMessage(
            type=Type.TRACE,
            trace=AirbyteTraceMessage(
                type=str(t.get("type", "")),
                message=err.get("message"),
                internal_message=err.get("internal_message"),
                failure_type=err.get("failure_type"),
                stream=((status.get("stream_descriptor") or {}).get("name")),
            ),
        )
    return log_message("DEBUG", f"{kind} message")


def message_to_dict(m: AirbyteMessage) -> dict[str, Any]:
    """A message in the protocol's JSON shape (RECORD, STATE, LOG, TRACE)."""
    if m.type == Type.RECORD and m.record is not None:
        rec: dict[str, Any] = {"stream": m.record.stream, "data": m.record.data, "emitted_at": m.record.emitted_at}
        if m.record.namespace is not None:
            rec["namespace"] = m.record.namespace
        return {"type": "RECORD", "record": rec}
    if m.type == Type.STATE and m.state is not None:
        return {"type": "STATE", "state": m.state.to_dict()}
    if m.type == Type.LOG and m.log is not None:
        return {"type": "LOG", "log": {"level": m.log.level, "message": m.log.message}}
    if m.type == Type.TRACE and m.trace is not None:
        return {
            "type": "TRACE",
            "trace": {
                "type": m.trace.type,
                "emitted_at": 0,
                "error": {"message": m.trace.message, "failure_type": m.trace.failure_type},
            },
        }
    raise ValueError(f"cannot serialise a {m.type} message")


def _invalid(stream: str | None, line: str | bytes, reason: str) -> AirbyteMessage:
    raw = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    return AirbyteMessage(type=Type.INVALID, invalid=InvalidRecord(stream, raw.rstrip("\n"), reason))


try:  # orjson parses connector output several times faster; the stdlib is the fallback
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover
    import json

    _loads = json.loads


class Source(Protocol):
    """The Airbyte source interface, as this project's sources implement it."""

    def spec(self) -> ConnectorSpecification: ...

    def check(self, config: dict[str, Any]) -> AirbyteConnectionStatus: ...

    def discover(self, config: dict[str, Any]) -> AirbyteCatalog: ...


class RowSource(Source, Protocol):
    """A source that emits RECORD/STATE/LOG/TRACE messages (the Airbyte ``read`` command)."""

    def read(
        self, config: dict[str, Any], catalog: ConfiguredAirbyteCatalog, state: dict[str, dict[str, Any]] | None
    ) -> Iterator[AirbyteMessage]: ...
