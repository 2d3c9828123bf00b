"""Connector registry: from a system of the project config to the connector that syncs its streams.

Connector types (``systems.<name>.connector``):

- ``file_drop``: CSV/JSONL/Parquet files in a folder (``path`` + per-stream ``glob``/``format``).
- ``rest_api``: a JSON REST API (``ingestion.sources.rest_api``).
- ``sql``: SQLite or PostgreSQL tables or queries (``ingestion.sources.sql_database``).
- ``airbyte_command``: any Airbyte source connector executable (``ingestion.sources.external``).
- ``airbyte_api``: a connection of an Airbyte deployment, triggered through its API
  (``ingestion.sources.airbyte_api``).

Every connector but ``file_drop`` takes ``systems.<name>.options``, validated at config load against
the connector's spec (a JSON schema) with errors naming the system and the key. Secrets (spec
properties marked ``airbyte_secret``) are never written in the config: they are given as
``{env: VARIABLE_NAME}`` and read from the environment when the sync runs; their values are redacted
from every message the platform logs or stores.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ingestion.protocol import ConfigError

CONNECTORS: tuple[str, ...] = ("file_drop", "rest_api", "sql", "airbyte_command", "airbyte_api")
# The record model's delivery modes, per stream (``systems.<name>.streams.<stream>.sync_mode``):
# append (new or changed versions per delivery), append_dedup (the same, raw keeps one row per key),
# snapshot (every delivery is the whole table; absent keys are deleted as of it). docs/ingestion.md.
SYNC_MODES: tuple[str, ...] = ("append", "append_dedup", "snapshot")


def default_sync_mode(connector: str, cursor_field: str | None) -> str:
    """The delivery mode of a stream that does not declare one: ``append`` for files (each new file holds
    new or changed records) and for streams read by a cursor; ``snapshot`` for streams read in full."""
    return "append" if connector == "file_drop" or cursor_field else "snapshot"
REDACTED = "**********"


@dataclass
class ConnectorStream:
    """One configured stream of a non-file connector.

    Args:
        system: source system (lands in ``raw_<system>``).
        stream: stream name (table ``raw_<system>.<stream>``).
        connector: one of ``CONNECTORS`` except ``file_drop``.
        options: the system's ``options`` as written in the config (secrets as ``{env: NAME}``).
        primary_key: key columns (from the stream's config).
        cursor_field: incremental cursor column (from the stream's config), if any.
        sync_mode: one of ``SYNC_MODES``, or None for the default (append with a cursor, else snapshot).
    """

    system: str
    stream: str
    connector: str
    options: dict[str, Any]
    primary_key: list[str] = field(default_factory=list)
    cursor_field: str | None = None
    sync_mode: str | None = None

    @property
    def stream_options(self) -> dict[str, Any]:
        return dict((self.options.get("streams") or {}).get(self.stream) or {})

    def resolved(self, env: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
        """The connector config with secrets read from the environment, and the secret values."""
        return resolve_secrets(self.options, f"system {self.system!r}", os.environ if env is None else env)


# ------------------------------------------------------------------------------------------ secrets


def env_ref_schema(description: str = "") -> dict[str, Any]:
    """The schema a secret takes in the project config: ``{env: NAME}``."""
    return {
        "type": "object",
        "required": ["env"],
        "additionalProperties": False,
        "properties": {"env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}},
        "description": description or "name of the environment variable holding the secret",
    }


def declared_schema(spec: Any) -> Any:
    """The spec as the project config must satisfy it: every ``airbyte_secret`` becomes ``{env: NAME}``."""
    if isinstance(spec, dict):
        if spec.get("airbyte_secret"):
            return env_ref_schema(spec.get("description", "")) | {"airbyte_secret": True}
        return {k: declared_schema(v) for k, v in spec.items()}
    if isinstance(spec, list):
        return [declared_schema(v) for v in spec]
    return spec


def _is_env_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"env"} and isinstance(value["env"], str)


def resolve_secrets(
    options: Any, where: str, env: Mapping[str, str]
) -> tuple[Any, list[str]]:
    """Replace every ``{env: NAME}`` by the variable's value; return the values too (for redaction).

    Raises:
        ConfigError: a variable is not set (naming it, never a value).
    """
    secrets: list[str] = []

    def walk(node: Any, path: str) -> Any:
        if _is_env_ref(node):
            name = node["env"]
            value = env.get(name)
            if not value:
                raise ConfigError(f"{where}: environment variable {name} (for {path}) is not set")
            secrets.append(value)
            return value
        if isinstance(node, Mapping):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(node)]
        return node

    return walk(copy.deepcopy(options), "options"), secrets


def redactor(secrets: list[str]):
    """A function that replaces every secret value in a text by ``**********``."""
    values = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def redact(text: str) -> str:
        for v in values:
            text = text.replace(v, REDACTED)
        return text

    return redact


# ------------------------------------------------------------------------------------------- specs


def connector_spec(connector: str) -> dict[str, Any]:
    """The connection specification (JSON schema) of a connector's ``options``."""
    if connector == "rest_api":
        from ingestion.sources.rest_api import SPEC
    elif connector == "sql":
        from ingestion.sources.sql_database import SPEC
    elif connector == "airbyte_command":
        from ingestion.sources.external import SPEC
    elif connector == "airbyte_api":
        from ingestion.sources.airbyte_api import SPEC
    else:
        raise ConfigError(f"unknown connector {connector!r}; expected one of {', '.join(CONNECTORS)}")
    return SPEC.connection_specification


def validate_options(system: str | None, connector: str, options: Mapping[str, Any], streams: list[str]) -> None:
    """Check a system's ``options`` against its connector's spec.

    Raises:
        ValueError: naming the system and the key (``options.auth.token: ...``), e.g. a secret written
            inline instead of as ``{env: NAME}``, an unknown key, or options for an undeclared stream.
    """
    import jsonschema

    if connector == "file_drop":
        if options:
            raise ValueError(_prefix(system, connector) + "takes no 'options' (use path and the streams' glob)")
        return
    schema = declared_schema(connector_spec(connector))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(dict(options)), key=lambda e: list(e.absolute_path))
    if errors:
        messages = []
        for e in errors[:5]:
            key = ".".join(["options", *(str(p) for p in e.absolute_path)])
            msg = e.message
            sub = _schema_at(schema, list(e.absolute_path))
            if isinstance(sub, dict) and sub.get("airbyte_secret") and not _is_env_ref(e.instance):
                msg = "is a secret: give the name of an environment variable as {env: VARIABLE_NAME}, never the value"
            messages.append(f"{key}: {msg}")
        raise ValueError(_prefix(system, connector) + "; ".join(messages))
    declared = set((options.get("streams") or {}).keys())
    unknown = sorted(declared - set(streams))
    if unknown:
        raise ValueError(_prefix(system, connector) + f"options.streams has {unknown}, which are not in 'streams'")


def _prefix(system: str | None, connector: str) -> str:
    return f"system '{system}' ({connector}): " if system else f"connector {connector}: "


def _schema_at(schema: Any, path: list[Any]) -> Any:
    node = schema
    for p in path:
        if not isinstance(node, dict):
            return None
        if isinstance(p, int):
            node = node.get("items")
        elif p in (node.get("properties") or {}):
            node = node["properties"][p]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


# ------------------------------------------------------------------------------------------ streams


def mapped_columns(stream: Any) -> dict[str, str | None]:
    """The source columns a configured stream's mapping reads, each with its declared type or None.

    A column is mapped when a field reads it (``from``; the part before the first ``.`` for a JSON
    path) or it is the primary key or cursor: the columns the stream's contract requires
    (``column_exists``). The declared type is ``BIGINT`` for a ``unit: minor`` amount of a typed
    format (JSONL, Parquet): the only mapped column whose contract accepts no text. Others are None
    (the landed table's established type decides).
    """
    sget = (lambda k, d=None: stream.get(k, d)) if isinstance(stream, Mapping) else (
        lambda k, d=None: getattr(stream, k, d)
    )
    typed = (sget("format", "csv") or "csv") != "csv"
    out: dict[str, str | None] = {}
    keys = sget("primary_key") or []
    for key in [keys] if isinstance(keys, str) else list(keys):
        out.setdefault(str(key).split(".")[0], None)
    for spec in (sget("fields") or {}).values():
        if isinstance(spec, str):
            spec = {"from": spec}
        get = (lambda k, s=spec: s.get(k)) if isinstance(spec, Mapping) else (lambda k, s=spec: getattr(s, k, None))
        source = get("from") if isinstance(spec, Mapping) else get("from_")
        if not source:
            continue
        column = str(source).split(".")[0]
        declared = "BIGINT" if typed and get("unit") == "minor" and "." not in str(source) else None
        if out.get(column) is None:
            out[column] = declared
    if sget("cursor_field"):
        out.setdefault(str(sget("cursor_field")).split(".")[0], None)
    return out


def stream_for(system_name: str, system: Any, stream_name: str) -> Any:
    """The connector's view of one configured stream (``FileDropStream`` or ``ConnectorStream``).

    Args:
        system_name: the system's name in the config.
        system: its ``SystemConfig`` (or a mapping of the same shape).
        stream_name: one of its streams.
    """
    get = (lambda k, d=None: system.get(k, d)) if isinstance(system, Mapping) else (
        lambda k, d=None: getattr(system, k, d)
    )
    streams = get("streams") or {}
    stream = streams[stream_name]
    sget = (lambda k, d=None: stream.get(k, d)) if isinstance(stream, Mapping) else (
        lambda k, d=None: getattr(stream, k, d)
    )
    connector = get("connector", "file_drop") or "file_drop"
    primary_key = sget("primary_key") or []
    primary_key = [primary_key] if isinstance(primary_key, str) else list(primary_key)
    if connector == "file_drop":
        from pathlib import Path

        from ingestion.sources.file_drop import FileDropStream

        path = get("path")
        if not path or not sget("glob"):
            raise ConfigError(f"system {system_name!r}: file_drop needs 'path' and each stream's 'glob'")
        return FileDropStream(
            system=system_name,
            stream=stream_name,
            path=Path(path).expanduser().resolve(),
            glob=sget("glob"),
            format=sget("format", "csv"),
            primary_key=primary_key,
            cursor_field=sget("cursor_field"),
            csv_delimiter=sget("csv_delimiter", ","),
            sync_mode=sget("sync_mode") or default_sync_mode(connector, sget("cursor_field")),
            mapped_columns=mapped_columns(stream),
        )
    if connector not in CONNECTORS:
        raise ConfigError(f"system {system_name!r}: unknown connector {connector!r}")
    return ConnectorStream(
        system=system_name,
        stream=stream_name,
        connector=connector,
        options=dict(get("options") or {}),
        primary_key=primary_key,
        cursor_field=sget("cursor_field"),
        sync_mode=sget("sync_mode") or default_sync_mode(connector, sget("cursor_field")),
    )


def source_for(connector: str) -> Any:
    """A source instance for a row connector (``rest_api``, ``sql``, ``airbyte_command``)."""
    if connector == "rest_api":
        from ingestion.sources.rest_api import SourceRestApi

        return SourceRestApi()
    if connector == "sql":
        from ingestion.sources.sql_database import SourceSqlDatabase

        return SourceSqlDatabase()
    if connector == "airbyte_command":
        from ingestion.sources.external import SourceExternal

        return SourceExternal()
    raise ConfigError(f"connector {connector!r} has no row source")
