"""A small, dependency-free subset of the Airbyte protocol, plus one in-database extension.

The shapes follow the Airbyte protocol (https://docs.airbyte.com/understanding-airbyte/airbyte-protocol):
a source declares a ``ConnectorSpecification``, answers ``check`` with an ``AirbyteConnectionStatus``,
``discover`` with an ``AirbyteCatalog`` and ``read`` with a stream of ``AirbyteMessage`` (RECORD, STATE,
LOG, TRACE). Dicts produced by ``to_dict`` and read by ``from_dict`` use the protocol's JSON field names,
so catalogs and states can be saved as fixtures or exchanged with real Airbyte connectors later.

Extension (``Type.BATCH``): sources that can read their input with DuckDB (files: CSV, JSONL, Parquet)
do not emit one RECORD message per row. They stage a whole batch inside the destination's DuckDB
connection (a temporary table) and emit one ``RecordBatch`` describing it; the destination then
lands it with set-based SQL. Row-at-a-time sources (REST, later) keep emitting RECORD messages.
"""

from __future__ import annotations

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


@dataclass
class AirbyteMessage:
    type: Type
    record: AirbyteRecordMessage | None = None
    state: AirbyteStateMessage | None = None
    log: AirbyteLogMessage | None = None
    batch: RecordBatch | None = None


class Source(Protocol):
    """The Airbyte source interface, as this project's sources implement it."""

    def spec(self) -> ConnectorSpecification: ...

    def check(self, config: dict[str, Any]) -> AirbyteConnectionStatus: ...

    def discover(self, config: dict[str, Any]) -> AirbyteCatalog: ...
