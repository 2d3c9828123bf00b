"""RECORD messages to staged batches: buffered, handed to DuckDB as one Arrow column, typed in SQL.

A row source's records are never inserted one by one. The buffer keeps each record's ``data`` as JSON
text (``orjson``); when it is full it becomes one Arrow table that DuckDB reads without copying, and a
single ``CREATE TEMP TABLE ... AS SELECT`` types every column at once:

- a column's type comes from the stream's JSON schema (``json_type_to_duckdb``); keys the schema does
  not declare are kept too (typed from the JSON values seen, like the JSONL reader), so nothing vanishes;
- a value that does not fit its column's type lands as NULL and the row's ``_airbyte_meta.changes``
  says so: ``{"field": f, "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"}``;
- a record without a primary key value, and input that was not a record at all (``INVALID``
  messages: malformed lines), go to ``recon_meta.quarantine`` with the reason.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from ingestion.protocol import StagedBatch, quote_ident
from ingestion.sources.file_drop import json_pointer, jsonl_column_type

try:
    import orjson

    def _dumps(data: Any) -> str:
        return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS).decode()

except ImportError:  # pragma: no cover

    def _dumps(data: Any) -> str:
        return json.dumps(data, default=str, separators=(",", ":"))


DEFAULT_BATCH_RECORDS = 100_000
DEFAULT_BATCH_BYTES = 128 * 1024 * 1024


def json_type_to_duckdb(prop: Any) -> str:
    """The DuckDB column type for one JSON-schema property (Airbyte's type hints honoured).

    integer -> BIGINT, number -> DOUBLE, boolean -> BOOLEAN, string -> VARCHAR (DATE, TIME, TIMESTAMP or
    TIMESTAMP WITH TIME ZONE by ``format``/``airbyte_type``), object/array/anything mixed or untyped -> JSON.
    """
    if not isinstance(prop, dict):
        return "JSON"
    types = prop.get("type")
    if isinstance(types, str):
        types = [types]
    if not types:
        return "JSON"
    kinds = [t for t in types if t != "null"]
    airbyte_type = prop.get("airbyte_type")
    if len(kinds) != 1:
        return "JSON" if (set(kinds) & {"object", "array"} or not kinds) else "VARCHAR"
    kind = kinds[0]
    if kind == "integer" or airbyte_type == "integer":
        return "BIGINT"
    if kind == "number":
        return "DOUBLE"
    if kind == "boolean":
        return "BOOLEAN"
    if kind in ("object", "array"):
        return "JSON"
    if kind == "string":
        fmt = prop.get("format")
        if airbyte_type == "timestamp_without_timezone":
            return "TIMESTAMP"
        if fmt == "date-time" or airbyte_type == "timestamp_with_timezone":
            return "TIMESTAMP WITH TIME ZONE"
        if fmt == "date":
            return "DATE"
        if fmt == "time":
            return "TIME"
        return "VARCHAR"
    return "JSON"


@dataclass
class RecordStager:
    """Buffers one stream's records and stages them, typed, as temporary tables of ``con``.

    Args:
        con: the destination's connection.
        json_schema: the stream's schema (``properties`` decide the column types).
        primary_key: key paths; a record missing one is quarantined.
        cursor_field: column whose greatest value each batch reports as ``cursor_max``.
    """

    con: duckdb.DuckDBPyConnection
    json_schema: dict[str, Any]
    primary_key: list[list[str]] = field(default_factory=list)
    cursor_field: str | None = None
    batch_records: int = DEFAULT_BATCH_RECORDS
    batch_bytes: int = DEFAULT_BATCH_BYTES

    def __post_init__(self) -> None:
        self._texts: list[str | None] = []
        self._reasons: list[str | None] = []
        self._lines: list[int] = []
        self._bytes = 0
        self.line = 0  # 1-based position of the record in the sync (quarantine's line_number)
        props = self.json_schema.get("properties") if isinstance(self.json_schema, dict) else None
        self.declared: dict[str, str] = {
            str(k): json_type_to_duckdb(v) for k, v in (props or {}).items()
        }

    @property
    def pending(self) -> int:
        return len(self._texts)

    @property
    def full(self) -> bool:
        return len(self._texts) >= self.batch_records or self._bytes >= self.batch_bytes

    def add(self, data: dict[str, Any]) -> None:
        text = _dumps(data)
        self.line += 1
        self._texts.append(text)
        self._reasons.append(None)
        self._lines.append(self.line)
        self._bytes += len(text)

    def add_invalid(self, raw: str, reason: str) -> None:
        self.line += 1
        self._texts.append(raw)
        self._reasons.append(reason)
        self._lines.append(self.line)
        self._bytes += len(raw)

    def stage(self) -> tuple[StagedBatch, int] | None:
        """Stage the buffer (and empty it); returns the batch and its size in bytes, or None if empty."""
        if not self._texts:
            return None
        size = self._bytes
        arrow = pa.table(
            {
                "_ab_line": pa.array(self._lines, pa.int64()),
                "_ab_data": pa.array(self._texts, pa.string()),
                "_ab_reason": pa.array(self._reasons, pa.string()),
            }
        )
        self._texts, self._reasons, self._lines, self._bytes = [], [], [], 0
        view = f"_ab_buffer_{uuid.uuid4().hex[:12]}"
        self.con.register(view, arrow)
        try:
            return self._stage_from(view), size
        finally:
            self.con.unregister(view)

    # ------------------------------------------------------------------------------------------

    def _run(self, sql: str, params: Any = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    def _stage_from(self, view: str) -> StagedBatch:
        table = f"_records_{uuid.uuid4().hex[:12]}"
        quarantine = f"_records_quarantine_{uuid.uuid4().hex[:12]}"
        src = quote_ident(view)
        # Records: valid JSON objects (sources hand over dicts; external ones were parsed already).
        key_checks = []
        for path in self.primary_key:
            pointer = "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)
            key_checks.append((".".join(path), pointer))
        missing_key = " ".join(
            f"WHEN coalesce(json_type(_ab_data, {_lit(ptr)}), 'NULL') = 'NULL' "
            f"THEN {_lit(f'missing primary key field {name!r}')}"
            for name, ptr in key_checks
        )
        reason_expr = f"coalesce(_ab_reason, CASE {missing_key} END)" if key_checks else "_ab_reason"
        self._run(
            f"CREATE TEMP TABLE {quote_ident(quarantine)} AS SELECT _ab_line AS line_number, "
            f"_ab_data AS raw_record, reason FROM (SELECT *, {reason_expr} AS reason FROM {src}) "
            f"WHERE reason IS NOT NULL ORDER BY _ab_line"
        )
        quarantined = self._run(f"SELECT count(*) FROM temp.{quote_ident(quarantine)}")[0][0]
        good = f"(SELECT _ab_line, _ab_data FROM (SELECT *, {reason_expr} AS reason FROM {src}) WHERE reason IS NULL)"

        # Columns: the schema's, then keys the schema does not declare (typed from their values).
        columns: list[tuple[str, str, bool]] = [(k, t, True) for k, t in self.declared.items()]
        known = {k for k in self.declared}
        extra = [
            k
            for (k,) in self._run(
                f"SELECT k FROM (SELECT unnest(json_keys(_ab_data)) AS k, _ab_line FROM {good}) "
                f"GROUP BY k ORDER BY min(_ab_line), k"
            )
            if k not in known
        ]
        if extra:
            pointers = [json_pointer(k) for k in extra]
            seen: dict[int, set[str]] = {i: set() for i in range(len(extra))}
            for i, t in self._run(
                f"SELECT i, t FROM (SELECT unnest(range(len($p::VARCHAR[]))) AS i, "
                f"unnest(json_type(_ab_data, $p::VARCHAR[])) AS t FROM {good}) WHERE t IS NOT NULL GROUP BY ALL",
                {"p": pointers},
            ):
                seen[int(i)].add(str(t))
            for i, k in enumerate(extra):
                columns.append((k, jsonl_column_type(seen[i])[0], False))
        # Case-insensitive name clashes would break the table: keep the first, suffix the others.
        names, lowered = [], set()
        for name, _, _ in columns:
            new, n = name, 2
            while new.lower() in lowered:
                new, n = f"{name}_{n}", n + 1
            lowered.add(new.lower())
            names.append(new)

        pointers = [json_pointer(c[0]) for c in columns]
        selects, checks = [], []
        for i, ((key, duck_type, declared), name) in enumerate(zip(columns, names, strict=True)):
            text, kind = f"_x[{i + 1}]", f"_t[{i + 1}]"
            if duck_type == "JSON":
                expr = f"CASE WHEN {kind} IS NULL OR {kind} = 'NULL' THEN NULL ELSE json_extract(_ab_data, {_lit(pointers[i])}) END"
            elif duck_type == "VARCHAR":
                expr = text
            else:
                expr = f"try_cast({text} AS {duck_type})"
                if declared:
                    change = _lit(json.dumps({"field": key, "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"}))
                    checks.append(
                        f"CASE WHEN {kind} IS NOT NULL AND {kind} <> 'NULL' AND {quote_ident(name)} IS NULL "
                        f"THEN {change} END"
                    )
            selects.append(f"{expr} AS {quote_ident(name)}")
        changes_col = "_ab_row_changes"
        if checks:
            changes_expr = (
                f"nullif('[' || concat_ws(', ', {', '.join(checks)}) || ']', '[]')"
            )
        else:
            changes_expr = "NULL::VARCHAR"
        inner = (
            f"SELECT _ab_line, _ab_data, json_extract_string(_ab_data, $p::VARCHAR[]) AS _x, "
            f"json_type(_ab_data, $p::VARCHAR[]) AS _t FROM {good}"
        )
        body = ", ".join(selects) if selects else "NULL::VARCHAR AS _no_columns"
        self._run(
            f"CREATE TEMP TABLE {quote_ident(table)} AS SELECT * EXCLUDE (_ab_line, _ab_data, _x, _t), "
            f"{changes_expr} AS {changes_col} FROM (SELECT _ab_line, _ab_data, _x, _t, {body} FROM ({inner})) "
            f"ORDER BY _ab_line",
            {"p": pointers or ["/"]},
        )
        records, with_errors = self._run(
            f"SELECT count(*), count({changes_col}) FROM temp.{quote_ident(table)}"
        )[0]
        cursor_max = None
        if self.cursor_field and records:
            target = next((n for (k, _, _), n in zip(columns, names, strict=True) if k == self.cursor_field), None)
            if target is not None:
                cursor_max = self._run(f"SELECT max({quote_ident(target)}) FROM temp.{quote_ident(table)}")[0][0]
        described = [
            (r[0], r[1])
            for r in self._run(f"DESCRIBE temp.{quote_ident(table)}")
            if r[0] != changes_col
        ]
        changes = [
            {"field": k, "change": "RENAMED", "reason": f"SOURCE_NAME_CLASH: landed as {n}"}
            for (k, _, _), n in zip(columns, names, strict=True)
            if k != n
        ]
        return StagedBatch(
            table=table,
            columns=described,
            records=int(records),
            quarantine_table=quarantine,
            quarantined=int(quarantined),
            changes=changes,
            cursor_max=cursor_max,
            row_changes_column=changes_col,
            records_with_errors=int(with_errors),
        )


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
