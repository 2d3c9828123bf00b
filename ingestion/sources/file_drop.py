"""File-drop source: CSV, JSONL and Parquet files dropped into a folder, one glob per stream.

Shaped like an Airbyte file-based source (spec, check, discover, read; the state is the history of
files read, keyed by path with size and modification time), but it reads with DuckDB's own readers
inside the destination's connection and emits one staged ``RecordBatch`` per file instead of one
RECORD message per row, so Parquet lands at millions of rows a second.

Typing, per format:
- CSV: every column VARCHAR (``all_varchar``); staging types them through the config mapping.
  Malformed rows (wrong column count, bad encoding, ...) come from DuckDB's reject tables.
- JSONL: each line is read as text; lines that are JSON objects become records, their top-level keys
  columns: objects/arrays JSON, strings VARCHAR, integers BIGINT, other numbers DOUBLE, booleans
  BOOLEAN. Strings are never converted to dates or timestamps. A key whose type differs from line to
  line lands as VARCHAR (scalars, as their text) or JSON (when objects/arrays are among them), and
  the change is noted in ``_airbyte_meta``. Other lines are quarantined with their line number.
- Parquet: native types; nested (struct, list, map, union) columns as JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb

from ingestion.protocol import (
    FILE_MODIFIED_COLUMN,
    FILE_URL_COLUMN,
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteLogMessage,
    AirbyteMessage,
    AirbyteStateMessage,
    AirbyteStream,
    ConfigError,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    ConnectorSpecification,
    RecordBatch,
    StagedBatch,
    Status,
    SyncMode,
    Type,
    connector_spec,
    max_cursor,
    quote_ident,
)

Format = Literal["csv", "jsonl", "parquet"]
FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet")


# JSONL lines can be long (orders with many lines); DuckDB's default maximum is 2 MB.
_MAX_LINE_BYTES = 64 * 1024 * 1024

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# A staged JSONL table's extra column (not landed): each record's line in its file.
_LINE_COLUMN = "_ab_line_number"


@dataclass
class FileDropStream:
    """One configured file-drop stream: where its files are and how to read them.

    Args:
        system: configured source system (lands in schema ``raw_<system>``).
        stream: stream name (lands in table ``raw_<system>.<stream>``).
        path: folder the system drops files into.
        glob: pattern relative to ``path`` (``**`` allowed) selecting this stream's files.
        format: ``csv``, ``jsonl`` or ``parquet``.
        primary_key: the stream's key columns (declared in the catalog; not enforced here).
        cursor_field: the column whose greatest value is kept in the state, for information.
        csv_delimiter, csv_quote, csv_escape, csv_header, encoding: CSV/JSONL reading options.
        sync_mode: how the files deliver records (``append``: each file holds new or changed versions;
            ``append_dedup``: the same, and the raw table keeps one row per key; ``snapshot``: each
            file is the whole table). Reading is the same for all three (each new or changed file is
            one delivery); the modes differ in what the reconciliation makes of the deliveries.
        mapped_columns: the columns the config's field mapping reads (and the key and cursor), each
            with the type the mapping declares for it or None (see ``ingestion.connectors.mapped_columns``).
            The destination lands them with the stream's types and rejects a file that lacks one
            (``DuckDBDestination`` docstring); not part of the connector config.
    """

    system: str
    stream: str
    path: Path
    glob: str
    format: Format
    primary_key: list[str]
    cursor_field: str | None = None
    csv_delimiter: str = ","
    csv_quote: str = '"'
    csv_escape: str = '"'
    csv_header: bool = True
    encoding: str = "utf-8"
    sync_mode: str = "append"
    mapped_columns: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.format not in FORMATS:
            raise ConfigError(
                f"system {self.system!r}, stream {self.stream!r}: format must be one of "
                f"{', '.join(FORMATS)} (got {self.format!r})"
            )
        if self.sync_mode not in ("append", "append_dedup", "snapshot"):
            raise ConfigError(
                f"system {self.system!r}, stream {self.stream!r}: sync_mode must be append, append_dedup "
                f"or snapshot (got {self.sync_mode!r})"
            )
        if self.sync_mode == "append_dedup" and not self.primary_key:
            raise ConfigError(
                f"system {self.system!r}, stream {self.stream!r}: sync_mode append_dedup needs a primary_key"
            )

    def to_config(self) -> dict[str, Any]:
        """This stream as a connector config dict (the shape ``SPEC`` describes)."""
        stream: dict[str, Any] = {
            "name": self.stream,
            "glob": self.glob,
            "format": self.format,
            "primary_key": list(self.primary_key),
            "cursor_field": self.cursor_field,
            "sync_mode": self.sync_mode,
            "csv": {
                "delimiter": self.csv_delimiter,
                "quote": self.csv_quote,
                "escape": self.csv_escape,
                "header": self.csv_header,
            },
            "encoding": self.encoding,
        }
        return {"system": self.system, "path": str(self.path), "streams": [stream]}


SPEC = connector_spec(
    "File drop",
    "https://docs.airbyte.com/integrations/sources/file",
    ["system", "path", "streams"],
    {
        "system": {"type": "string", "minLength": 1, "description": "Source system name."},
        "path": {"type": "string", "minLength": 1, "description": "Folder the files are dropped in."},
        "streams": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "glob", "format", "primary_key"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "glob": {"type": "string", "minLength": 1},
                    "format": {"type": "string", "enum": list(FORMATS)},
                    "primary_key": {"type": "array", "items": {"type": "string"}},
                    "cursor_field": {"type": ["string", "null"]},
                    "sync_mode": {"type": "string", "enum": ["append", "append_dedup", "snapshot"],
                                  "default": "append"},
                    "encoding": {"type": "string", "default": "utf-8"},
                    "csv": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "delimiter": {"type": "string", "default": ","},
                            "quote": {"type": "string", "default": '"'},
                            "escape": {"type": "string", "default": '"'},
                            "header": {"type": "boolean", "default": True},
                        },
                    },
                },
            },
        },
    },
)


def streams_from_config(config: Mapping[str, Any]) -> list[FileDropStream]:
    """Validate a connector config dict (see ``SPEC``) and build its streams.

    Raises:
        ConfigError: naming the key that is wrong.
    """
    if not isinstance(config, Mapping):
        raise ConfigError("file_drop config must be a mapping")
    extra = set(config) - {"system", "path", "streams"}
    if extra:
        raise ConfigError(f"file_drop config: unknown key(s) {', '.join(sorted(extra))}")
    system = config.get("system")
    if not isinstance(system, str) or not system:
        raise ConfigError("file_drop config: 'system' must be a non-empty string")
    path = config.get("path")
    if not isinstance(path, str) or not path:
        raise ConfigError(f"file_drop config for system {system!r}: 'path' must be a non-empty string")
    streams = config.get("streams")
    if not isinstance(streams, list) or not streams:
        raise ConfigError(f"file_drop config for system {system!r}: 'streams' must be a non-empty list")
    out = []
    for i, s in enumerate(streams):
        where = f"file_drop config for system {system!r}: streams[{i}]"
        if not isinstance(s, Mapping):
            raise ConfigError(f"{where} must be a mapping")
        allowed = {"name", "glob", "format", "primary_key", "cursor_field", "sync_mode", "csv", "encoding"}
        if set(s) - allowed:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(set(s) - allowed))}")
        for key in ("name", "glob", "format"):
            if not isinstance(s.get(key), str) or not s.get(key):
                raise ConfigError(f"{where}.{key} must be a non-empty string")
        if s["format"] not in FORMATS:
            raise ConfigError(f"{where}.format must be one of {', '.join(FORMATS)} (got {s['format']!r})")
        pk = s.get("primary_key")
        if not isinstance(pk, list) or not all(isinstance(k, str) for k in pk):
            raise ConfigError(f"{where}.primary_key must be a list of column names")
        cursor = s.get("cursor_field")
        if cursor is not None and not isinstance(cursor, str):
            raise ConfigError(f"{where}.cursor_field must be a string or null")
        csv = s.get("csv") or {}
        if not isinstance(csv, Mapping) or set(csv) - {"delimiter", "quote", "escape", "header"}:
            raise ConfigError(f"{where}.csv accepts only delimiter, quote, escape, header")
        out.append(
            FileDropStream(
                system=system,
                stream=s["name"],
                path=Path(path),
                glob=s["glob"],
                format=s["format"],
                primary_key=list(pk),
                cursor_field=cursor,
                csv_delimiter=str(csv.get("delimiter", ",")),
                csv_quote=str(csv.get("quote", '"')),
                csv_escape=str(csv.get("escape", '"')),
                csv_header=bool(csv.get("header", True)),
                encoding=str(s.get("encoding", "utf-8")),
                sync_mode=str(s.get("sync_mode") or "append"),
            )
        )
    return out


def streams_from_system_config(system: str, system_config: Mapping[str, Any]) -> list[FileDropStream]:
    """Build the streams of one ``systems.<name>`` entry of the platform YAML (``connector: file_drop``).

    Stream options other than the reading ones (``fields``, ...) are ignored here.
    """
    streams = []
    for name, s in (system_config.get("streams") or {}).items():
        csv = s.get("csv") or {}
        streams.append(
            {
                "name": name,
                "glob": s.get("glob"),
                "format": s.get("format"),
                "primary_key": list(s.get("primary_key") or []),
                "cursor_field": s.get("cursor_field"),
                "sync_mode": s.get("sync_mode") or "append",
                "csv": {k: csv[k] for k in ("delimiter", "quote", "escape", "header") if k in csv}
                | ({"delimiter": s["csv_delimiter"]} if "csv_delimiter" in s else {}),
                "encoding": s.get("encoding", "utf-8"),
            }
        )
    return streams_from_config({"system": system, "path": system_config.get("path"), "streams": streams})


# --------------------------------------------------------------------------------------------- files


@dataclass(frozen=True)
class DroppedFile:
    path: Path
    url: str  # absolute path, as landed in ``_ab_source_file_url``
    size: int
    modified_at: datetime  # UTC, microseconds

    @property
    def modified_iso(self) -> str:
        return self.modified_at.isoformat()


def stat_file(path: Path) -> DroppedFile:
    st = path.stat()
    modified = _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)
    return DroppedFile(path=path, url=str(path), size=st.st_size, modified_at=modified)


def list_files(stream: FileDropStream) -> list[DroppedFile]:
    """The stream's files, sorted by path.

    Raises:
        ConfigError: the folder does not exist or is not a folder.
    """
    root = stream.path.expanduser().resolve()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise ConfigError(f"system {stream.system!r}, stream {stream.stream!r}: path {str(root)!r} {what}")
    return [stat_file(p) for p in sorted(root.glob(stream.glob)) if p.is_file()]


# ------------------------------------------------------------------------------------------- staging


def _temp_name(kind: str) -> str:
    return f"_file_drop_{kind}_{uuid.uuid4().hex[:12]}"


def _run(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | dict[str, Any] | None = None
) -> list[tuple]:
    # DuckDB 2.0: a result must be consumed before the connection runs its next statement.
    return con.execute(sql, params or []).fetchall()


_DIRECT_PREFIX = "_file_drop_direct_"


def is_direct(staged: StagedBatch | None) -> bool:
    """Whether a batch is a view reading its file at landing time (not a staged copy)."""
    return staged is not None and staged.table.startswith(_DIRECT_PREFIX)


def drop_staged(con: duckdb.DuckDBPyConnection, staged: StagedBatch | None) -> None:
    """Drop a staged batch's temporary tables (or a direct batch's view)."""
    if staged is None:
        return
    if is_direct(staged):
        _run(con, f"DROP VIEW IF EXISTS temp.{quote_ident(staged.table)}")
        return
    for t in (staged.table, staged.quarantine_table):
        if t:
            _run(con, f"DROP TABLE IF EXISTS temp.{quote_ident(t)}")


def _dedupe_names(names: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """DuckDB column names are case-insensitive: rename later clashes (``id``, ``ID`` -> ``ID_2``)."""
    seen: set[str] = set()
    out, changes = [], []
    for name in names:
        new = name if name else "_empty"
        n = 2
        while new.lower() in seen:
            new = f"{name or '_empty'}_{n}"
            n += 1
        seen.add(new.lower())
        out.append(new)
        if new != name:
            changes.append(
                {"field": name, "change": "RENAMED", "reason": f"SOURCE_NAME_CLASH: landed as {new}"}
            )
    return out, changes


def _is_nested(duck_type: str) -> bool:
    t = duck_type.upper()
    return t.startswith(("STRUCT", "MAP", "UNION", "VARIANT")) or t.endswith("]")


def _describe(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in _run(con, f"DESCRIBE temp.{quote_ident(table)}")]


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(_run(con, f"SELECT count(*) FROM temp.{quote_ident(table)}")[0][0])


def _counted(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]], quarantine: str, **more: Any
) -> StagedBatch:
    """The batch staged in ``table``, its rejected input in ``quarantine``, with the rows of both counted."""
    return StagedBatch(
        table=table,
        columns=columns,
        records=_count(con, table),
        quarantine_table=quarantine,
        quarantined=_count(con, quarantine),
        **more,
    )


def _rejects_options(rejects: str, scan: str) -> str:
    # Our own generated names, not user input.
    return f"store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{scan}'"


def _stage_csv(con: duckdb.DuckDBPyConnection, stream: FileDropStream, f: DroppedFile) -> StagedBatch:
    table, quarantine = _temp_name("csv"), _temp_name("quarantine")
    rejects, scan = _temp_name("rejects"), _temp_name("scan")
    try:
        _run(
            con,
            f"CREATE TEMP TABLE {quote_ident(table)} AS SELECT * FROM read_csv($path, all_varchar = true, "
            f"header = $header, delim = $delim, quote = $quote, escape = $escape, encoding = $encoding, "
            f"null_padding = false, {_rejects_options(rejects, scan)})",
            {
                "path": f.url,
                "header": stream.csv_header,
                "delim": stream.csv_delimiter,
                "quote": stream.csv_quote,
                "escape": stream.csv_escape,
                "encoding": stream.encoding,
            },
        )
        _run(
            con,
            f"CREATE TEMP TABLE {quote_ident(quarantine)} AS "
            f"SELECT line AS line_number, any_value(csv_line) AS raw_record, "
            f"string_agg(error_type || ': ' || error_message, '; ' ORDER BY column_idx) AS reason "
            f"FROM temp.{quote_ident(rejects)} GROUP BY line ORDER BY line",
        )
    finally:
        _run(con, f"DROP TABLE IF EXISTS temp.{quote_ident(rejects)}")
        _run(con, f"DROP TABLE IF EXISTS temp.{quote_ident(scan)}")
    return _counted(con, table, _describe(con, table), quarantine)


def json_pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def jsonl_column_type(types: set[str]) -> tuple[str, str]:
    """(DuckDB type, how to extract) for one top-level key from the JSON types seen for it."""
    types = types - {"NULL"}
    ints = {"BIGINT", "UBIGINT"}
    if not types:
        return "VARCHAR", "string"
    if types <= ints:
        return "BIGINT", "string"
    if types <= ints | {"DOUBLE"}:
        return "DOUBLE", "string"
    if len(types) == 1:
        only = next(iter(types))
        if only == "VARCHAR":
            return "VARCHAR", "string"
        if only == "BOOLEAN":
            return "BOOLEAN", "string"
    if types <= {"OBJECT", "ARRAY"}:
        return "JSON", "string"  # json_extract_string gives the JSON text of objects and arrays
    if types & {"OBJECT", "ARRAY"}:
        return "JSON", "json"  # mixed with scalars: keep every value as JSON (strings quoted)
    return "VARCHAR", "string"  # mixed scalars: each value's text


def _stage_jsonl(con: duckdb.DuckDBPyConnection, stream: FileDropStream, f: DroppedFile) -> StagedBatch:
    lines, table, quarantine = _temp_name("lines"), _temp_name("jsonl"), _temp_name("quarantine")
    rejects, scan = _temp_name("rejects"), _temp_name("scan")
    q_lines = f"temp.{quote_ident(lines)}"
    try:
        # One VARCHAR column per line: no delimiter, no quoting. Blank lines stay (as NULL), so the
        # row number is the line number, except for lines the reader rejects (bad encoding), which
        # the reject table numbers and which are added back below.
        _run(
            con,
            f"CREATE TEMP TABLE {quote_ident(lines)} AS SELECT line, "
            f"CASE WHEN json_valid(line) THEN json_type(line) ELSE 'INVALID' END AS kind "
            f"FROM read_csv($path, columns = {{'line': 'VARCHAR'}}, header = false, delim = '', quote = '', "
            f"escape = '', auto_detect = false, encoding = $encoding, max_line_size = {_MAX_LINE_BYTES}, "
            f"buffer_size = {2 * _MAX_LINE_BYTES}, {_rejects_options(rejects, scan)})",
            {"path": f.url, "encoding": stream.encoding},
        )
        rejected = _run(
            con,
            f"SELECT line, any_value(csv_line), string_agg(error_type || ': ' || error_message, '; ') "
            f"FROM temp.{quote_ident(rejects)} GROUP BY line ORDER BY line",
        )
    finally:
        _run(con, f"DROP TABLE IF EXISTS temp.{quote_ident(rejects)}")
        _run(con, f"DROP TABLE IF EXISTS temp.{quote_ident(scan)}")
    try:
        # Kept row i (1-based) is file line i + #{k : R_k - k < i} for the sorted rejected lines R_k.
        if rejected:
            shifts = [int(r[0]) - k for k, r in enumerate(rejected, start=1)]
            line_expr = "(rowid + 1 + len(list_filter($shifts::BIGINT[], lambda s: s < rowid + 1)))"
            params: dict[str, Any] = {"shifts": shifts}
        else:
            line_expr, params = "(rowid + 1)", {}
        _run(
            con,
            f"CREATE TEMP TABLE {quote_ident(quarantine)} AS "
            f"SELECT {line_expr}::BIGINT AS line_number, line AS raw_record, "
            f"CASE WHEN kind = 'INVALID' THEN 'malformed JSON' "
            f"ELSE 'JSON ' || lower(kind) || ' is not an object' END AS reason "
            f"FROM {q_lines} WHERE kind <> 'OBJECT' AND line IS NOT NULL AND trim(line) <> ''",
            params,
        )
        if rejected:
            _run(
                con,
                f"INSERT INTO temp.{quote_ident(quarantine)} SELECT * FROM (VALUES "
                + ", ".join(["(?::BIGINT, ?::VARCHAR, ?::VARCHAR)"] * len(rejected))
                + ")",
                [v for r in rejected for v in r],
            )

        # Top-level keys in order of first appearance, then the JSON types seen for each.
        keys: list[str] = []
        seen: set[str] = set()
        for (key_list,) in _run(
            con,
            f"SELECT ks FROM (SELECT json_keys(line) AS ks, min(rowid) AS first FROM {q_lines} "
            f"WHERE kind = 'OBJECT' GROUP BY ks) ORDER BY first",
        ):
            for k in key_list:
                if k not in seen:
                    seen.add(k)
                    keys.append(k)
        pointers = [json_pointer(k) for k in keys]
        types: dict[int, set[str]] = {i: set() for i in range(len(keys))}
        if keys:
            for i, t in _run(
                con,
                f"SELECT i, t FROM (SELECT unnest(range(len($p::VARCHAR[]))) AS i, "
                f"unnest(json_type(line, $p::VARCHAR[])) AS t FROM {q_lines} WHERE kind = 'OBJECT') "
                f"WHERE t IS NOT NULL GROUP BY ALL",
                {"p": pointers},
            ):
                types[int(i)].add(str(t))
        names, changes = _dedupe_names(keys)
        selects, json_pointers = [], []
        for i, (key, name) in enumerate(zip(keys, names, strict=True)):
            duck_type, how = jsonl_column_type(types[i])
            if duck_type == "BIGINT" and "UBIGINT" in types[i]:
                too_big = _run(
                    con,
                    f"SELECT count(*) FROM {q_lines} WHERE kind = 'OBJECT' AND json_type(line, $p) = 'UBIGINT' "
                    f"AND try_cast(json_extract_string(line, $p) AS BIGINT) IS NULL",
                    {"p": pointers[i]},
                )[0][0]
                if too_big:
                    duck_type = "VARCHAR"  # keep integers beyond BIGINT exactly, as text
                    changes.append(
                        {
                            "field": key,
                            "change": "CAST",
                            "reason": "SOURCE_INTEGER_OVERFLOW: landed as VARCHAR",
                        }
                    )
            if len(types[i] - {"NULL"}) > 1 and duck_type in ("VARCHAR", "JSON"):
                seen_types = ", ".join(sorted(types[i] - {"NULL"}))
                changes.append(
                    {
                        "field": key,
                        "change": "CAST",
                        "reason": f"SOURCE_MIXED_TYPES ({seen_types}): landed as {duck_type}",
                    }
                )
            if how == "json":
                json_pointers.append(pointers[i])
                # json_extract returns a JSON null for a null value; land it as SQL NULL.
                expr = f"nullif(_y[{len(json_pointers)}]::VARCHAR, 'null')"
            else:
                expr = f"_x[{i + 1}]"
            selects.append(f"CAST({expr} AS {duck_type}) AS {quote_ident(name)}")
        inner = [f"{line_expr}::BIGINT AS _line", "json_extract_string(line, $p::VARCHAR[]) AS _x"]
        if json_pointers:
            inner.append("json_extract(line, $jp::VARCHAR[]) AS _y")
        _run(
            con,
            f"CREATE TEMP TABLE {quote_ident(table)} AS SELECT "
            + (", ".join(selects) if selects else "NULL::VARCHAR AS _no_columns")
            + f", _line AS {quote_ident(_LINE_COLUMN)}"
            + f" FROM (SELECT {', '.join(inner)} FROM {q_lines} WHERE kind = 'OBJECT' ORDER BY rowid)",
            {"p": pointers} | ({"jp": json_pointers} if json_pointers else {}) | params,
        )
    finally:
        _run(con, f"DROP TABLE IF EXISTS {q_lines}")
    columns = [] if not keys else [c for c in _describe(con, table) if c[0] != _LINE_COLUMN]
    return _counted(con, table, columns, quarantine, changes=changes, line_column=_LINE_COLUMN)


def _stage_parquet(con: duckdb.DuckDBPyConnection, stream: FileDropStream, f: DroppedFile) -> StagedBatch:
    table = _temp_name("parquet")
    described = _run(con, "DESCRIBE SELECT * FROM read_parquet($path)", {"path": f.url})
    selects = []
    for name, duck_type, *_ in described:
        col = quote_ident(name)
        selects.append(f"to_json({col}) AS {col}" if _is_nested(duck_type) else col)
    _run(
        con,
        f"CREATE TEMP TABLE {quote_ident(table)} AS SELECT {', '.join(selects)} FROM read_parquet($path)",
        {"path": f.url},
    )
    return StagedBatch(table=table, columns=_describe(con, table), records=_count(con, table))


def _direct_parquet(con: duckdb.DuckDBPyConnection, f: DroppedFile) -> StagedBatch | None:
    """A temp view landing the Parquet file straight from the reader, or None on any doubt.

    Only the footer is read here (``parquet_file_metadata``/``parquet_metadata``): the row count, and
    that every column chunk lies inside the file (a truncated file fails this). The view exposes the
    file's row number as ``rowid`` (0-based, like a staged table's), so the raw ids are the same.
    """
    try:
        meta = _run(con, "SELECT num_rows FROM parquet_file_metadata($path)", {"path": f.url})
        chunks = _run(
            con,
            "SELECT count(DISTINCT row_group_id), "
            "max(coalesce(least(dictionary_page_offset, data_page_offset), data_page_offset) "
            "+ total_compressed_size), bool_and(total_compressed_size > 0) "
            "FROM parquet_metadata($path)",
            {"path": f.url},
        )
        described = _run(con, "DESCRIBE SELECT * FROM read_parquet($path)", {"path": f.url})
    except (duckdb.Error, OSError):
        return None
    if len(meta) != 1 or not chunks:
        return None
    num_rows = int(meta[0][0])
    groups, end, sizes_ok = chunks[0]
    if num_rows == 0 or not groups or end is None or end > f.size or not sizes_ok:
        return None
    per_group = _run(
        con,
        "SELECT coalesce(sum(n), 0) FROM (SELECT any_value(row_group_num_rows) AS n "
        "FROM parquet_metadata($path) GROUP BY row_group_id)",
        {"path": f.url},
    )
    if int(per_group[0][0]) != num_rows:
        return None
    names = [r[0] for r in described]
    if not names or any(n.lower() in ("rowid", "file_row_number") for n in names):
        return None
    selects = []
    for name, duck_type, *_ in described:
        col = quote_ident(name)
        selects.append(f"to_json({col}) AS {col}" if _is_nested(duck_type) else col)
    view = _DIRECT_PREFIX + uuid.uuid4().hex[:12]
    path = "'" + f.url.replace("'", "''") + "'"  # a view takes no parameters
    try:
        _run(
            con,
            f"CREATE TEMP VIEW {quote_ident(view)} AS SELECT {', '.join(selects)}, file_row_number AS rowid "
            f"FROM read_parquet({path}, file_row_number = true)",
        )
        columns = [c for c in _describe(con, view) if c[0] != "rowid"]
    except duckdb.Error:
        _run(con, f"DROP VIEW IF EXISTS temp.{quote_ident(view)}")
        return None
    return StagedBatch(table=view, columns=columns, records=num_rows)


def _stage_empty(con: duckdb.DuckDBPyConnection) -> StagedBatch:
    table = _temp_name("empty")
    _run(con, f"CREATE TEMP TABLE {quote_ident(table)} (_no_columns VARCHAR)")
    return StagedBatch(table=table, columns=[], records=0)


_STAGERS = {"csv": _stage_csv, "jsonl": _stage_jsonl, "parquet": _stage_parquet}


def stage_file(
    con: duckdb.DuckDBPyConnection, stream: FileDropStream, f: DroppedFile, *, direct: bool = False
) -> StagedBatch:
    """Read one file into temporary tables of ``con`` (records, and quarantined input).

    A 0-byte file stages as an empty batch without columns. With ``direct``, a Parquet file whose
    footer checks out is not copied but becomes a view read at landing time (``is_direct``); any
    doubt stages it as usual.

    Raises:
        duckdb.Error: the file cannot be read at all.
    """
    staged = None
    if direct and stream.format == "parquet" and f.size > 0:
        staged = _direct_parquet(con, f)
    if staged is None:
        staged = _stage_empty(con) if f.size == 0 else _STAGERS[stream.format](con, stream, f)
    if stream.cursor_field and any(c == stream.cursor_field for c, _ in staged.columns) and staged.records:
        staged.cursor_max = _run(
            con, f"SELECT max({quote_ident(stream.cursor_field)}) FROM temp.{quote_ident(staged.table)}"
        )[0][0]
    return staged


# -------------------------------------------------------------------------------------------- schema

_JSON_TYPES: dict[str, dict[str, Any]] = {
    "VARCHAR": {"type": ["null", "string"]},
    "BOOLEAN": {"type": ["null", "boolean"]},
    "JSON": {"type": ["null", "object", "array", "string", "number", "boolean"]},
    "DATE": {"type": ["null", "string"], "format": "date"},
    "TIMESTAMP WITH TIME ZONE": {
        "type": ["null", "string"],
        "format": "date-time",
        "airbyte_type": "timestamp_with_timezone",
    },
}


def json_schema_type(duck_type: str) -> dict[str, Any]:
    """The JSON schema (with Airbyte's type hints) for a DuckDB column type."""
    t = duck_type.upper()
    if t in _JSON_TYPES:
        return dict(_JSON_TYPES[t])
    if t in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
    }:
        return {"type": ["null", "integer"]}
    if t in {"FLOAT", "DOUBLE"} or t.startswith("DECIMAL"):
        return {"type": ["null", "number"]}
    if t.startswith("TIMESTAMP"):
        return {
            "type": ["null", "string"],
            "format": "date-time",
            "airbyte_type": "timestamp_without_timezone",
        }
    if t.startswith("TIME"):
        return {"type": ["null", "string"], "format": "time", "airbyte_type": "time_without_timezone"}
    return {"type": ["null", "string"]}


def _stream_schema(columns: list[tuple[str, str]]) -> dict[str, Any]:
    props = {name: json_schema_type(t) for name, t in columns}
    props[FILE_URL_COLUMN] = {"type": "string"}
    props[FILE_MODIFIED_COLUMN] = json_schema_type("TIMESTAMP WITH TIME ZONE")
    return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": props}


# -------------------------------------------------------------------------------------------- source


def configured_catalog(streams: list[FileDropStream], generation_id: int = 0) -> ConfiguredAirbyteCatalog:
    """The configured catalog for streams (append, incremental by file), without reading any file."""
    return ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=AirbyteStream(
                    name=s.stream,
                    namespace=s.system,
                    json_schema=_stream_schema([]),
                    source_defined_cursor=True,
                    default_cursor_field=[FILE_MODIFIED_COLUMN],
                    source_defined_primary_key=[[k] for k in s.primary_key],
                ),
                sync_mode=SyncMode.INCREMENTAL,
                cursor_field=[s.cursor_field] if s.cursor_field else [FILE_MODIFIED_COLUMN],
                primary_key=[[k] for k in s.primary_key],
                generation_id=generation_id,
            )
            for s in streams
        ]
    )


def _history_matches(history: Mapping[str, Any], f: DroppedFile) -> bool:
    seen = history.get(f.url)
    return bool(seen) and seen.get("size") == f.size and seen.get("modified_at") == f.modified_iso


class SourceFileDrop:
    """Airbyte-shaped source for files dropped into a folder (see the module docstring)."""

    def spec(self) -> ConnectorSpecification:
        """The connector's configuration schema."""
        return SPEC

    def check(self, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """Validate the config, that the folder exists, and that each stream's newest file is readable."""
        try:
            streams = streams_from_config(config)
            with duckdb.connect() as con:
                for s in streams:
                    files = list_files(s)
                    if files:
                        newest = max(files, key=lambda f: (f.modified_at, f.url))
                        _probe(con, s, newest)
        except (ConfigError, duckdb.Error, OSError) as e:
            return AirbyteConnectionStatus(Status.FAILED, str(e))
        return AirbyteConnectionStatus(Status.SUCCEEDED)

    def discover(self, config: Mapping[str, Any]) -> AirbyteCatalog:
        """One stream per configured stream, typed from its newest file (only file metadata if none)."""
        out = []
        with duckdb.connect() as con:
            for s in streams_from_config(config):
                columns: list[tuple[str, str]] = []
                files = list_files(s)
                if files:
                    newest = max(files, key=lambda f: (f.modified_at, f.url))
                    staged = stage_file(con, s, newest)
                    columns = staged.columns
                    drop_staged(con, staged)
                out.append(
                    AirbyteStream(
                        name=s.stream,
                        namespace=s.system,
                        json_schema=_stream_schema(columns),
                        source_defined_cursor=True,
                        default_cursor_field=[FILE_MODIFIED_COLUMN],
                        source_defined_primary_key=[[k] for k in s.primary_key],
                    )
                )
        return AirbyteCatalog(streams=out)

    def read(
        self,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Mapping[str, Mapping[str, Any]] | None,
        con: duckdb.DuckDBPyConnection,
        *,
        direct: bool = False,
    ) -> Iterator[AirbyteMessage]:
        """Stage every new or changed file of the catalog's streams into ``con``; then emit the state.

        Unlike an Airbyte source writing RECORD messages to stdout, this reads inside the destination's
        connection (``con``) and yields one BATCH message per file, then one STATE message per stream.
        The caller drops the staged tables (``drop_staged``) once it has landed them.

        Args:
            config: connector config (see ``SPEC``).
            catalog: the streams to read.
            state: per stream name, its saved state (``{"history": {url: {...}}, ...}``).
            con: the DuckDB connection the batches are staged in; must not be inside a transaction
                (a failed read aborts DuckDB's transaction; outside one, it only fails that file).
            direct: Parquet files whose footer checks out are not copied but yielded as views
                read at landing time (see ``stage_file``); the caller must be ready to stage them
                after all if landing one fails.

        Raises:
            ConfigError: a stream's folder is missing, or its glob matches nothing and nothing
                was ever read for it.
        """
        state = state or {}
        by_name = {s.stream: s for s in streams_from_config(config)}
        for configured in catalog.streams:
            stream = by_name.get(configured.stream.name)
            if stream is None:
                raise ConfigError(
                    f"stream {configured.stream.name!r} is in the catalog but not in the config"
                )
            yield from self._read_stream(stream, dict(state.get(stream.stream) or {}), con, direct)

    def _read_stream(
        self, stream: FileDropStream, state: dict[str, Any], con: duckdb.DuckDBPyConnection, direct: bool = False
    ) -> Iterator[AirbyteMessage]:
        history: dict[str, Any] = dict(state.get("history") or {})
        files = list_files(stream)
        if not files and not history:
            raise ConfigError(
                f"system {stream.system!r}, stream {stream.stream!r}: no file matches glob "
                f"{stream.glob!r} in {str(stream.path.expanduser().resolve())!r}"
            )
        cursor_value = state.get("cursor_value")
        for f in files:
            if _history_matches(history, f):
                continue
            staged: StagedBatch | None = None
            try:
                staged = stage_file(con, stream, f, direct=direct)
                if stat_file(f.path) != f:
                    raise _FileChanged()
            except _FileChanged:
                drop_staged(con, staged)
                yield _log("WARN", f"{f.url}: changed while being read; it will be read by the next sync")
                continue
            except (duckdb.Error, OSError) as e:
                drop_staged(con, staged)
                if not f.path.exists():
                    yield _log("WARN", f"{f.url}: removed while being read; skipped")
                    continue
                history[f.url] = {"size": f.size, "modified_at": f.modified_iso, "status": "failed"}
                yield _batch(stream, f, error=f"unreadable {stream.format} file: {type(e).__name__}: {e}")
                continue
            history[f.url] = {"size": f.size, "modified_at": f.modified_iso, "status": "landed"}
            cursor_value = max_cursor(cursor_value, staged.cursor_max)
            yield _batch(stream, f, staged=staged)
        newest = max(
            ((v["modified_at"], url) for url, v in history.items() if v.get("status") == "landed"),
            default=None,
        )
        new_state = {
            "history": history,
            FILE_MODIFIED_COLUMN: f"{newest[0]}_{newest[1]}" if newest else None,
            "cursor_field": stream.cursor_field,
            "cursor_value": None if cursor_value is None else _jsonable(cursor_value),
        }
        yield AirbyteMessage(
            type=Type.STATE,
            state=AirbyteStateMessage(stream=stream.stream, namespace=stream.system, stream_state=new_state),
        )


class _FileChanged(Exception):
    pass


def _probe(con: duckdb.DuckDBPyConnection, stream: FileDropStream, f: DroppedFile) -> None:
    """Read a file's schema only (for ``check``); raises if DuckDB cannot open it."""
    if f.size == 0:
        return
    reader = {
        "csv": "read_csv($path, all_varchar = true, delim = $delim, quote = $quote, escape = $escape)",
        "jsonl": "read_csv($path, columns = {'line': 'VARCHAR'}, header = false, delim = '', quote = '', escape = '')",
        "parquet": "read_parquet($path)",
    }[stream.format]
    params: dict[str, Any] = {"path": f.url}
    if stream.format == "csv":
        params |= {"delim": stream.csv_delimiter, "quote": stream.csv_quote, "escape": stream.csv_escape}
    _run(con, f"DESCRIBE SELECT * FROM {reader}", params)


def _log(level: str, message: str) -> AirbyteMessage:
    return AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=level, message=message))


def _batch(
    stream: FileDropStream, f: DroppedFile, *, staged: StagedBatch | None = None, error: str | None = None
) -> AirbyteMessage:
    """The BATCH message of one file: its staged batch, or why it could not be read."""
    return AirbyteMessage(
        type=Type.BATCH,
        batch=RecordBatch(
            stream=stream.stream,
            namespace=stream.system,
            source_url=f.url,
            source_modified_at=f.modified_at,
            source_size=f.size,
            staged=staged,
            error=error,
        ),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


__all__ = [
    "FILE_MODIFIED_COLUMN",
    "FILE_URL_COLUMN",
    "SPEC",
    "DroppedFile",
    "FileDropStream",
    "SourceFileDrop",
    "configured_catalog",
    "drop_staged",
    "is_direct",
    "list_files",
    "quote_ident",
    "stage_file",
    "streams_from_config",
    "streams_from_system_config",
]
