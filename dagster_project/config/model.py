"""The project configuration: one YAML file, validated on load.

The file declares the source systems (connector, streams, role, field mapping), the rule
parameters (tolerances, grace windows, FX rates), ownership and the storage paths. Errors name the
file, the key path, the line and what was expected, so a user editing a copy of the demo config
can fix it without reading code. See ``dagster_project/config/demo.yaml`` for a full example.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dagster_project.config.exceptions import NotificationsConfig, RoutingConfig, SlaConfig
from ingestion.catalogue import (
    DEFAULT_GRACE_HOURS,
    DIFF_TYPES,
    NESTED_RECORD_FIELDS,
    ROLE_FIELDS,
    ROLES,
    FieldType,
)
from ingestion.catalogue import dbt_vars as catalogue_dbt_vars
from ingestion.connectors import default_sync_mode

DEMO_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"
CONFIG_ENV_VAR = "RECON_CONFIG"

Role = Literal[ROLES]  # type: ignore[valid-type]  # the catalogue's roles, as a type pydantic checks

STATES: tuple[str, ...] = (
    "RECEIVED",
    "VALIDATED",
    "PAID",
    "INVOICED",
    "FULFILLED",
    "RECONCILED",
    "CANCELLED",
    "REFUNDED",
    "ON_HOLD",
)

# How a stream delivers its records (docs/ingestion.md#sync-modes, docs/reconciliation-rules.md#records-and-versions):
# append: each delivery (file, sync) holds new or changed versions; the latest version of a key counts;
#   absence says nothing. append_dedup: the same, and the raw table keeps only each key's latest row.
# snapshot: each delivery is the whole table; a key absent from the latest snapshot is deleted as of it.
SyncModeName = Literal["append", "append_dedup", "snapshot"]
SYNC_MODES: tuple[str, ...] = ("append", "append_dedup", "snapshot")

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when built with it: 10x faster to parse
    """SafeLoader that leaves dates as text, so pydantic validates them with a clear message."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names file, key and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FieldSpec(_Strict):
    """How one canonical field is read from a source stream.

    Exactly one of ``from`` (a source column, ``col.key`` for a JSON path inside a column) or
    ``value`` (a constant) is given. ``values`` maps the source's own vocabulary to canonical words,
    case-insensitively.
    """

    from_: str | None = Field(default=None, alias="from")
    value: str | None = None
    type: FieldType | None = None
    unit: Literal["minor"] | None = None
    sign: Literal["abs", "negate"] | None = None
    formats: list[str] = Field(default_factory=list)
    timezone: str | None = None
    values: dict[str, str] | None = None
    default: str | None = None
    transform: Literal["upper", "lower", "trim"] | None = None
    # Only for a nested list (NESTED_RECORD_FIELDS): how each element maps, paths inside the element.
    id: FieldSpec | None = None
    amount: FieldSpec | None = None
    at: FieldSpec | None = None
    status: FieldSpec | None = None

    @field_validator("id", "amount", "at", "status", mode="before")
    @classmethod
    def _element_shorthand(cls, value: Any) -> Any:
        return {"from": value} if isinstance(value, str) else value

    @field_validator("values", mode="before")
    @classmethod
    def _lower_keys(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k).strip().lower(): str(v) for k, v in value.items()}
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            _check_zone(value)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if (self.from_ is None) == (self.value is None):
            raise ValueError("give exactly one of 'from' (a source column) or 'value' (a constant)")
        return self


class StreamConfig(_Strict):
    """One stream of a source system (a folder of files for the file-drop connector)."""

    format: Literal["csv", "jsonl", "parquet"] = "csv"
    glob: str | None = None  # file_drop only (required there)
    primary_key: list[str]
    cursor_field: str | None = None
    # None: the connector's default (append for files and for streams with a cursor, else snapshot).
    sync_mode: SyncModeName | None = None
    csv_delimiter: str = ","
    fields: dict[str, FieldSpec]

    @field_validator("primary_key", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: ({"from": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _nested_lists(self) -> StreamConfig:
        for name, spec in self.fields.items():
            element_keys = [k for k in ("id", "amount", "at", "status") if getattr(spec, k) is not None]
            if name not in NESTED_RECORD_FIELDS:
                if element_keys:
                    raise ValueError(f"field '{name}': {element_keys} are only for a nested list "
                                     f"({', '.join(sorted(NESTED_RECORD_FIELDS))})")
                continue
            missing = [k for k in ("id", "amount", "at") if getattr(spec, k) is None]
            if missing or spec.from_ is None:
                raise ValueError(f"field '{name}' maps a nested list: give 'from' (the list) and "
                                 f"{['id', 'amount', 'at']} (paths inside each element); missing {missing or ['from']}")
            total = NESTED_RECORD_FIELDS[name]
            if total in self.fields:
                raise ValueError(f"fields '{name}' and '{total}' both map the same money: map one of them")
        return self


class SystemConfig(_Strict):
    """A source system: the role it plays, how to reach it and how its streams map.

    ``connector`` picks the ingestion connector (see ``ingestion/connectors.py`` and docs/ingestion.md):
    ``file_drop`` reads ``path`` + each stream's ``glob``; the others take ``options``, validated by the
    connector's own spec at load time (secrets only as ``{env: VARIABLE_NAME}``).
    """

    role: Role
    description: str = ""
    connector: Literal["file_drop", "rest_api", "sql", "airbyte_command", "airbyte_api"] = "file_drop"
    path: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    # Stale (orders ON_HOLD) when nothing new landed for this long before the end of D; null: never stale.
    freshness_hours: float | None = Field(default=24.0, gt=0)
    # A run warns (summary, run metadata, a stale_source exception) when the share of the system's landed
    # rows visible as of the day is at most this: 0 means "rows landed, none visible".
    min_visible_share: float = Field(default=0.0, ge=0, lt=1)
    streams: dict[str, StreamConfig]

    @model_validator(mode="after")
    def _connector_options(self, info: ValidationInfo) -> SystemConfig:
        if (info.context or {}).get("run_checks") is False:
            return self  # only syncs read the options; the CLI's read commands skip the spec (and jsonschema)
        if self.connector == "file_drop":
            if not self.path:
                raise ValueError("connector file_drop needs 'path' (the folder the files are dropped in)")
            no_glob = sorted(n for n, s in self.streams.items() if not s.glob)
            if no_glob:
                raise ValueError(f"connector file_drop needs 'glob' in stream(s) {no_glob}")
        from ingestion.connectors import validate_options  # the connector's own spec

        validate_options(None, self.connector, self.options, sorted(self.streams))
        return self

    @model_validator(mode="after")
    def _fields_match_role(self) -> SystemConfig:
        allowed = ROLE_FIELDS[self.role]
        for stream_name, stream in self.streams.items():
            unknown = sorted(set(stream.fields) - set(allowed))
            if unknown:
                raise ValueError(
                    f"stream '{stream_name}': unknown field(s) {unknown} for role '{self.role}'; "
                    f"expected some of {sorted(allowed)}"
                )
            missing = sorted(n for n, (_, required) in allowed.items() if required and n not in stream.fields)
            if missing:
                raise ValueError(
                    f"stream '{stream_name}': role '{self.role}' needs field(s) {missing} in 'fields'"
                )
        return self


class ScheduleConfig(_Strict):
    cron: str = "0 2 * * *"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _check_zone(value)
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str, info: ValidationInfo) -> str:
        if (info.context or {}).get("run_checks") is False:
            return value  # a caller that never runs or schedules (the CLI's read commands) skips the Dagster import
        # Dagster's own check, so that what validates here is what the schedule accepts.
        from dagster._utils.schedules import is_valid_cron_schedule

        if not is_valid_cron_schedule(value):
            raise ValueError(f"expected a cron expression of 5 fields (minute hour day month weekday) such as "
                             f"'0 2 * * *', got '{value}'")
        return value


_MEMORY_SIZE = re.compile(r"^\d+(\.\d+)?\s*(%|B|[KMGT]i?B)$", re.IGNORECASE)


class ProjectConfig(_Strict):
    name: str = "recon"
    duckdb_path: str = ".recon/warehouse.duckdb"
    # How much memory DuckDB may take for the file's work in a run (landing, contracts, dbt, exceptions,
    # report): DuckDB's own setting, a size ("6GiB", "512MB") or a share of the machine's RAM ("80%",
    # DuckDB's default). Past it DuckDB spills to disk (beside the file) instead of growing.
    duckdb_memory_limit: str = "80%"
    state_dir: str = ".recon"
    start_date: dt.date
    # The last as-of day (last Dagster partition); none: up to yesterday, as a nightly needs. A demo or
    # a bounded backfill sets it so the UI's partitions match the data.
    end_date: dt.date | None = None
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    # The GX File Data Context holding this config's contract suites; default <state_dir>/expectations
    # (see dagster_project/contracts/suites.py: expectations_dir_for).
    expectations_dir: str | None = None

    @field_validator("end_date", mode="before")
    @classmethod
    def _empty_end_date(cls, value: Any) -> Any:
        return None if value == "" else value  # `${RECON_END_DATE:-}` unset

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        value = value.strip()
        if not _MEMORY_SIZE.match(value) or (value.endswith("%") and not 0 < float(value[:-1]) <= 100):
            raise ValueError(f"expected a size such as 6GiB, 512MB or 80% (of the machine's RAM), got '{value}'")
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> ProjectConfig:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


class AmountTolerance(_Strict):
    absolute: float = Field(default=0.01, ge=0)
    relative: float = Field(default=0.0, ge=0)
    per_line: float = Field(default=0.0, ge=0)


class FxRate(_Strict):
    from_: str = Field(alias="from")
    to: str
    rate: float = Field(gt=0)

    @field_validator("from_", "to")
    @classmethod
    def _iso(cls, value: str) -> str:
        value = value.strip().upper()
        if not _CURRENCY.match(value):
            raise ValueError(f"expected a 3-letter ISO currency code, got '{value}'")
        return value


class SeverityConfig(_Strict):
    default: Literal["low", "medium", "high", "critical"] = "medium"
    by_diff_type: dict[str, Literal["low", "medium", "high", "critical"]] = Field(default_factory=dict)
    critical_amount: float = Field(default=1000.0, ge=0)

    @field_validator("by_diff_type")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        _check_diff_types(value)
        return value


class RulesConfig(_Strict):
    amount_tolerance: AmountTolerance = Field(default_factory=AmountTolerance)
    fx_tolerance: float = Field(default=0.02, ge=0)
    fx_rates: list[FxRate] = Field(default_factory=list)
    # The documented defaults also when the config has no rules section (a validator does not run on a default).
    grace_hours: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_GRACE_HOURS))
    severity: SeverityConfig = Field(default_factory=SeverityConfig)

    @field_validator("grace_hours")
    @classmethod
    def _complete_grace(cls, value: dict[str, float]) -> dict[str, float]:
        _check_diff_types(value)
        negative = sorted(k for k, v in value.items() if v < 0)
        if negative:
            raise ValueError(f"grace hours must be >= 0, got negative values for {negative}")
        return {**DEFAULT_GRACE_HOURS, **value}


class OwnersConfig(_Strict):
    by_diff_type: dict[str, str] = Field(default_factory=dict)
    orphan_record_by_role: dict[Role, str] = Field(default_factory=dict)
    by_state: dict[str, str] = Field(default_factory=dict)
    fallback: str = "data-engineering"

    @field_validator("by_diff_type")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        _check_diff_types(value)
        return value

    @field_validator("by_state")
    @classmethod
    def _known_states(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(STATES))
        if unknown:
            raise ValueError(f"unknown state(s) {unknown}; expected some of {list(STATES)}")
        return value


def _env_name(cls: type, value: str, info: ValidationInfo) -> str:
    """A setting that names an environment variable (where a secret is read from) is a valid name."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"{info.field_name} names an environment variable (letters, digits, _), got '{value}'")
    return value


class DagsterConfig(_Strict):
    """Where the Dagster instance recon runs in keeps its runs and events (the `dagster.yaml` recon writes).

    ``sqlite`` (default): files in the instance folder, for one machine. ``postgres``: dagster-postgres,
    for a deployment whose webserver, daemon and runs share one instance; the URL
    (``postgresql+psycopg2://user:password@host:5432/db``) is read from the variable ``postgres_url_env`` names,
    by every Dagster process, and never written to a file.
    """

    storage: Literal["sqlite", "postgres"] = "sqlite"
    postgres_url_env: str = "DAGSTER_PG_URL"

    _variable_name = field_validator("postgres_url_env")(_env_name)


class WarehouseConfig(_Strict):
    """The engine the dbt project runs on (``warehouse:``).

    ``duckdb`` (default): everything in the one DuckDB file. ``postgres``: the dbt project runs on a
    PostgreSQL database (dbt-postgres). ``spark``: it runs on a local Spark session in recon's own process
    (dbt-spark ``method: session``, the ``spark`` extra and Java 17), its tables Parquet files under
    ``spark_dir``. Landing, the contracts and the exception store stay in the DuckDB file on every engine
    (the platform's own state); each night the tables dbt reads are published to the engine in bulk and
    the staging and mart tables the platform reads are copied back (``dagster_project.warehouse``). The
    Postgres URL (``postgresql://user:password@host:5432/db``) is read from the variable ``url_env``
    names, and never written to a file; Spark needs no secret.
    """

    engine: Literal["duckdb", "postgres", "spark"] = "duckdb"
    url_env: str = "RECON_WAREHOUSE_URL"
    # The local Spark warehouse (Parquet tables and their Derby catalogue); default <state_dir>/spark.
    spark_dir: str | None = None

    _variable_name = field_validator("url_env")(_env_name)


# Excel's last row (1,048,576) less the header row and the line that says how many rows did not fit.
EXCEL_MAX_LIST_ROWS = 1_048_574


class ReportConfig(_Strict):
    """The daily report's files (``report:``).

    ``workbook_rows``: how many rows of each section the XLSX workbook holds, in the report's order (only
    the long lists reach it: open exceptions, orders not reconciled); a longer one ends in a line saying
    how many more there are and which CSV holds them all (the CSVs always hold every row). Excel shows at most 1,048,576 rows a
    sheet, and a workbook takes ~15 µs a cell to write: 10,000 rows keep it quick to write and to open.
    """

    workbook_rows: int = Field(default=10_000, ge=1, le=EXCEL_MAX_LIST_ROWS)


class ReconConfig(_Strict):
    """The whole validated configuration. Load it with :func:`load_config`."""

    version: Literal[1] = 1
    project: ProjectConfig
    systems: dict[str, SystemConfig]
    rules: RulesConfig = Field(default_factory=RulesConfig)
    owners: OwnersConfig = Field(default_factory=OwnersConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    dagster: DagsterConfig = Field(default_factory=DagsterConfig)
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    source_file: Path | None = Field(default=None, exclude=True)

    @field_validator("systems")
    @classmethod
    def _names(cls, value: dict[str, SystemConfig]) -> dict[str, SystemConfig]:
        if not value:
            raise ValueError("declare at least one source system")
        for name, system in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"system name '{name}' must be lower-case letters, digits and '_'")
            for stream in system.streams:
                if not re.fullmatch(r"[a-z][a-z0-9_]*", stream):
                    raise ValueError(f"stream name '{name}.{stream}' must be lower-case letters, digits and '_'")
        return value

    @model_validator(mode="after")
    def _database_name_is_not_a_schema(self) -> ReconConfig:
        # DuckDB names the catalog after the file; a catalog named like a schema makes every
        # unqualified reference to that schema ambiguous.
        stem = Path(self.project.duckdb_path).stem
        reserved = {"recon", "recon_meta", "staging", "intermediate", "marts", "main"} | {
            f"raw_{name}" for name in self.systems
        }
        if stem in reserved:
            raise ValueError(
                f"project.duckdb_path: the file name '{stem}' clashes with the schema '{stem}'; "
                "choose another file name, e.g. warehouse.duckdb"
            )
        return self

    # ---- derived values -------------------------------------------------------------------------

    @property
    def duckdb_path(self) -> Path:
        """Absolute path of the DuckDB database file."""
        return Path(self.project.duckdb_path).expanduser().resolve()

    @property
    def state_dir(self) -> Path:
        """Absolute path of the folder for Dagster's home, dbt artifacts and reports."""
        return Path(self.project.state_dir).expanduser().resolve()

    @property
    def spark_warehouse(self) -> Path:
        """Absolute path of the local Spark warehouse (``warehouse.spark_dir``, default ``<state_dir>/spark``)."""
        where = self.warehouse.spark_dir
        return Path(where).expanduser().resolve() if where else self.state_dir / "spark"

    @property
    def roles(self) -> dict[str, list[str]]:
        """Configured roles and the (sorted) systems that play each."""
        out: dict[str, list[str]] = {}
        for name in sorted(self.systems):
            out.setdefault(self.systems[name].role, []).append(name)
        return {role: out[role] for role in ROLES if role in out}

    @cached_property
    def _filled_systems(self) -> dict[str, Any]:
        systems: dict[str, Any] = {}
        for name, system in sorted(self.systems.items()):
            role_fields = ROLE_FIELDS[system.role]
            streams = {}
            for stream_name, stream in sorted(system.streams.items()):
                fields = {}
                for field_name, (canonical_type, _) in role_fields.items():
                    spec = stream.fields.get(field_name)
                    if spec is None:
                        # Not mapped: the staging model emits a typed NULL.
                        fields[field_name] = {"from": None, "value": None, "type": canonical_type,
                                              "unit": None, "sign": None, "formats": [], "timezone": None,
                                              "values": None, "default": None, "transform": None}
                        continue
                    dumped = spec.model_dump(by_alias=True)
                    dumped["type"] = spec.type or canonical_type
                    fields[field_name] = dumped
                streams[stream_name] = {
                    "primary_key": stream.primary_key,
                    "cursor_field": stream.cursor_field,
                    "sync_mode": stream.sync_mode or default_sync_mode(system.connector, stream.cursor_field),
                    "format": stream.format,
                    "fields": fields,
                }
            systems[name] = {
                "role": system.role,
                "connector": system.connector,
                "freshness_hours": system.freshness_hours,
                "min_visible_share": system.min_visible_share,
                "streams": streams,
            }
        return systems

    def dbt_vars(self, as_of_date: dt.date | str | None = None) -> dict[str, Any]:
        """The ``--vars`` dict for every dbt invocation (parse and build).

        Args:
            as_of_date: the as-of day; None for parsing only.
        """
        recon = {
            "systems": self._filled_systems,
            "roles": self.roles,
            "rules": self.rules.model_dump(mode="json", by_alias=True),
            "owners": self.owners.model_dump(mode="json"),
            "catalogue": catalogue_dbt_vars(),
        }
        out: dict[str, Any] = {"recon": recon}
        if as_of_date is not None:
            out["as_of_date"] = str(as_of_date)
        return out


def _check_zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone '{value}' (expected an IANA name such as 'Europe/Berlin')") from exc


def _check_diff_types(value: Mapping[str, Any]) -> None:
    unknown = sorted(set(value) - set(DIFF_TYPES))
    if unknown:
        raise ValueError(f"unknown diff type(s) {unknown}; expected some of {list(DIFF_TYPES)}")


# ---- loading ----------------------------------------------------------------------------------------


def _interpolate(node: Any, path: str, env: Mapping[str, str], problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), env, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", env, problems) for i, v in enumerate(node)]
    if isinstance(node, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            problems.append(f"{path}: environment variable {name} is not set and has no default")
            return match.group(0)

        return _ENV_PATTERN.sub(repl, node)
    return node


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path of the YAML document to its 1-based line number."""
    index: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = (*prefix, str(key_node.value))
                index[key] = key_node.start_mark.line + 1
                walk(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                key = (*prefix, str(i))
                index[key] = item.start_mark.line + 1
                walk(item, key)

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return index


def _format_errors(path: Path, exc: ValidationError, lines: dict[tuple[str, ...], int]) -> str:
    messages = []
    for error in exc.errors():
        loc = tuple(str(p) for p in error["loc"] if not str(p).startswith("function-after"))
        loc = tuple(p for p in loc if p not in {"str", "dict[str,str]"})
        # Pydantic reports aliases for aliased fields ('from'); strip the internal suffix anyway.
        loc = tuple("from" if p == "from_" else p for p in loc)
        line = None
        for cut in range(len(loc), 0, -1):
            line = lines.get(loc[:cut])
            if line is not None:
                break
        key = ".".join(loc) or "(top level)"
        where = f" (line {line})" if line else ""
        msg = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see dagster_project/config/demo.yaml)"
        elif error["type"] == "missing":
            msg = "required key is missing"
        elif error["type"] == "literal_error":
            msg = f"{msg}, got {error.get('input')!r}"
        messages.append(f"  {key}{where}: {msg}")
    return f"invalid config {path}:\n" + "\n".join(messages)


def resolve_config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config to use: the argument, else $RECON_CONFIG, else the packaged demo config."""
    chosen = path or os.environ.get(CONFIG_ENV_VAR) or DEMO_CONFIG_PATH
    return Path(chosen).expanduser().resolve()


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None, *,
                run_checks: bool = True) -> ReconConfig:
    """Read, interpolate and validate a config file.

    Args:
        path: the YAML file; defaults to $RECON_CONFIG or the demo config.
        env: environment for ``${VAR:-default}`` interpolation; defaults to os.environ.
        run_checks: also check what only runs use: ``schedule.cron`` with Dagster's cron parser (it
            imports Dagster, about half a second) and each system's connector and ``options`` against
            its connector's spec (jsonschema). The CLI's read commands, which never run or sync, pass False.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: naming the file, the key path, the line and what was expected.
    """
    config_path = resolve_config_path(path)
    if not config_path.is_file():
        raise ConfigError(f"config file not found: {config_path}")
    text = config_path.read_text(encoding="utf-8")
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid config {config_path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {config_path}: expected a mapping at the top level")
    problems: list[str] = []
    data = _interpolate(raw, "", os.environ if env is None else env, problems)
    if problems:
        raise ConfigError(f"invalid config {config_path}:\n" + "\n".join(f"  {p}" for p in problems))
    try:
        config = ReconConfig.model_validate(data, context={"run_checks": run_checks})
    except ValidationError as exc:
        raise ConfigError(_format_errors(config_path, exc, _line_index(text))) from None
    config.source_file = config_path
    return config
