"""DuckDB destination in the Airbyte "v2" raw layout, plus the ingestion bookkeeping tables.

Owns:
- ``raw_<system>.<stream>``: the source's columns (names as the source wrote them), then
  ``_airbyte_raw_id`` VARCHAR (``<sync_id>-<batch>-<row>``), ``_airbyte_extracted_at`` TIMESTAMPTZ (sync time),
  ``_airbyte_meta`` JSON (``{"sync_id": N, "changes": [...]}``), ``_airbyte_generation_id`` BIGINT,
  ``_ab_source_file_url`` VARCHAR and ``_ab_source_file_last_modified`` TIMESTAMPTZ (the file's mtime,
  UTC: the row's ``available_at``).
- ``recon_meta.landed_files``, ``recon_meta.stream_state``, ``recon_meta.sync_runs``,
  ``recon_meta.quarantine`` (see ``META_DDL``).

Schema evolution: a column new to the table is added (older rows read NULL); a column absent from a
batch lands NULL; a column whose type changed is widened to a type that holds both (integers to the
wider integer, integer/float to DOUBLE, anything with JSON to JSON, otherwise VARCHAR), never
dropped, and the change is written to the batch's ``_airbyte_meta.changes``.

Mapped columns (``SyncContext.mapped_columns``: the columns the stream's field mapping reads, with
the type the mapping declares, if any) are held to the stream's types instead, so that one bad file
never retypes the stream:
- a new table takes the declared type of a mapped column whose first file has text in it;
- a mapped column whose values would widen it to text (or, for a declared integer type, to anything
  but a wider integer) keeps its type (declared, else the table's established one). Each value is
  cast explicitly (an integer only from a whole number); a row whose value does not cast is
  quarantined (file, line, column, value, reason) and the rest lands;
- a file in which *every* value of such a column fails the cast (the column was retyped), or that
  lacks a mapped column the stream has (removed or renamed), is rejected as a whole: none of its
  rows lands, and one quarantine row says why (``records`` = the rows it stands for).
Either way ``records read = landed + quarantined`` (``quarantine.records`` sums to the latter).

The caller owns the transaction (``ingestion.sync`` wraps one sync in one); nothing here commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from ingestion.protocol import (
    FILE_MODIFIED_COLUMN,
    FILE_URL_COLUMN,
    AirbyteMessage,
    ConfiguredAirbyteStream,
    ConnectorError,
    DestinationSyncMode,
    RecordBatch,
    Type,
    max_cursor,
    quote_ident,
)
from ingestion.record_batches import DEFAULT_BATCH_RECORDS, RecordStager

META_SCHEMA = "recon_meta"

AIRBYTE_COLUMNS: list[tuple[str, str]] = [
    ("_airbyte_raw_id", "VARCHAR"),
    ("_airbyte_extracted_at", "TIMESTAMP WITH TIME ZONE"),
    ("_airbyte_meta", "JSON"),
    ("_airbyte_generation_id", "BIGINT"),
    (FILE_URL_COLUMN, "VARCHAR"),
    (FILE_MODIFIED_COLUMN, "TIMESTAMP WITH TIME ZONE"),
]
_RESERVED = {name.lower() for name, _ in AIRBYTE_COLUMNS}

META_DDL: list[str] = [
    f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}",
    f"CREATE SEQUENCE IF NOT EXISTS {META_SCHEMA}.sync_id_seq START 1",
    f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.landed_files (
        system VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        file_path VARCHAR NOT NULL,
        file_modified_at TIMESTAMPTZ NOT NULL,
        file_size BIGINT NOT NULL,
        records_landed BIGINT NOT NULL,
        records_quarantined BIGINT NOT NULL,
        sync_id BIGINT NOT NULL,
        landed_at TIMESTAMPTZ NOT NULL
    )""",
    f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.stream_state (
        system VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        state JSON NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    )""",
    f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.sync_runs (
        sync_id BIGINT NOT NULL,
        system VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ,
        status VARCHAR NOT NULL,
        files_seen BIGINT,
        files_skipped BIGINT,
        files_landed BIGINT,
        files_failed BIGINT,
        records_read BIGINT,
        records_landed BIGINT,
        records_quarantined BIGINT,
        bytes BIGINT,
        schema_changes JSON,
        error VARCHAR
    )""",
    f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.quarantine (
        system VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        file_path VARCHAR,
        line_number BIGINT,
        raw_record VARCHAR,
        reason VARCHAR NOT NULL,
        sync_id BIGINT NOT NULL,
        quarantined_at TIMESTAMPTZ NOT NULL,
        file_modified_at TIMESTAMPTZ
    )""",
    # Added later: the column a row was quarantined for, its value, and how many input rows the
    # quarantine row stands for (1 for a line; a rejected file's row count for a file-level row).
    f"ALTER TABLE {META_SCHEMA}.quarantine ADD COLUMN IF NOT EXISTS column_name VARCHAR",
    f"ALTER TABLE {META_SCHEMA}.quarantine ADD COLUMN IF NOT EXISTS failing_value VARCHAR",
    f"ALTER TABLE {META_SCHEMA}.quarantine ADD COLUMN IF NOT EXISTS records BIGINT",
]

_INTS = ["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"]
_UNSIGNED_AS = {"UTINYINT": "SMALLINT", "USMALLINT": "INTEGER", "UINTEGER": "BIGINT", "UBIGINT": "HUGEINT"}


def supertype(current: str, incoming: str) -> str:
    """The column type that stores values of both ``current`` and ``incoming`` without losing text.

    Integers widen to the wider signed integer; integers and floats meet at DOUBLE; DATE and
    TIMESTAMP at TIMESTAMP; anything with JSON at JSON (scalars stored as JSON values); the rest at
    VARCHAR (each value's text).
    """
    a, b = current.upper(), incoming.upper()
    if a == b:
        return current
    ia, ib = _UNSIGNED_AS.get(a, a), _UNSIGNED_AS.get(b, b)
    if ia in _INTS and ib in _INTS:
        wider = max(_INTS.index(ia), _INTS.index(ib))
        return current if a == _INTS[wider] else _INTS[wider]
    numeric = set(_INTS) | set(_UNSIGNED_AS) | {"FLOAT", "DOUBLE"}
    if a in numeric and b in numeric:
        return "DOUBLE"
    if {a, b} == {"DATE", "TIMESTAMP"}:
        return "TIMESTAMP"
    if "JSON" in (a, b):
        return "JSON"
    return "VARCHAR"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _convert(expr: str, incoming: str, target: str) -> str:
    if target.upper() == "JSON" and incoming.upper() != "JSON":
        return f"to_json({expr})"
    return f"CAST({expr} AS {target})"


def _held(target: str, incoming: str, declared: str | None) -> bool:
    """Whether a mapped column of type ``target`` keeps its type for a batch of ``incoming`` values
    (each cast, the misfits quarantined) instead of widening: always when widening would turn it into
    text; and for a declared integer type (a minor-unit amount), for anything but integers (a
    fraction of a cent, 1e30)."""
    if declared and declared.upper() in _INTS:
        return _UNSIGNED_AS.get(incoming.upper(), incoming.upper()) not in _INTS
    return target.upper() not in ("VARCHAR", "JSON") and supertype(target, incoming).upper() == "VARCHAR"


def _strict_cast(expr: str, target: str) -> str:
    """``expr`` cast to ``target``, NULL when it does not fit; blank text is NULL, and an integer
    type takes whole numbers only (``12`` or ``12.0``; DuckDB would round ``'12.5'`` to 13)."""
    text = f"nullif(trim(CAST({expr} AS VARCHAR)), '')"
    if target.upper() in _INTS or target.upper() in _UNSIGNED_AS:
        whole = f"regexp_extract({text}, '^([+-]?[0-9]+)(\\.0*)?$', 1)"
        return f"try_cast(nullif({whole}, '') AS {target})"
    return f"try_cast({text} AS {target})"


@dataclass
class SyncContext:
    """What every row of one sync shares."""

    system: str
    stream: str
    sync_id: int
    extracted_at: datetime
    generation_id: int = 0
    batches: int = 0  # batches landed so far (part of each row's ``_airbyte_raw_id``)
    # Columns the stream's mapping reads -> declared type or None (see the module docstring).
    mapped_columns: dict[str, str | None] = field(default_factory=dict)
    # Lower-cased columns the stream has: the table's and those of this sync's batches.
    known_columns: set[str] = field(default_factory=set)

    def next_raw_id_prefix(self) -> str:
        """``<sync_id>-<batch>-``: with the row's position in its batch, a raw id unique in the table."""
        self.batches += 1
        return f"{self.sync_id}-{self.batches}-"


@dataclass
class WriteStats:
    files_landed: int = 0
    files_failed: int = 0
    records_landed: int = 0
    records_quarantined: int = 0
    bytes: int = 0
    schema_changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    state: dict[str, Any] | None = None
    records_with_errors: int = 0
    cursor_max: Any = None


def _run(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | dict[str, Any] | None = None
) -> list[tuple]:
    # DuckDB 2.0: a result must be consumed before the connection runs its next statement.
    return con.execute(sql, params or []).fetchall()


class DuckDBDestination:
    """Lands staged batches into ``raw_<system>.<stream>`` and keeps the ingestion bookkeeping."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    # ------------------------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Create the ``recon_meta`` schema, its tables and the sync id sequence if missing."""
        for ddl in META_DDL:
            _run(self.con, ddl)

    @staticmethod
    def schema_name(system: str) -> str:
        return f"raw_{system}"

    def table_name(self, system: str, stream: str) -> str:
        """``raw_<system>.<stream>``, quoted."""
        return f"{quote_ident(self.schema_name(system))}.{quote_ident(stream)}"

    # ------------------------------------------------------------------------------------ state

    def read_state(self, system: str, stream: str) -> dict[str, Any]:
        """The stream's saved state; rebuilt from ``landed_files`` if the state row is missing."""
        rows = _run(
            self.con,
            f"SELECT state FROM {META_SCHEMA}.stream_state WHERE system = ? AND stream = ? "
            f"ORDER BY updated_at DESC LIMIT 1",
            [system, stream],
        )
        if rows:
            return json.loads(rows[0][0])
        landed = _run(
            self.con,
            f"SELECT file_path, file_size, file_modified_at FROM {META_SCHEMA}.landed_files "
            f"WHERE system = ? AND stream = ? ORDER BY sync_id",
            [system, stream],
        )
        if not landed:
            return {}
        return {
            "history": {
                path: {"size": size, "modified_at": modified.isoformat(), "status": "landed"}
                for path, size, modified in landed
            }
        }

    def write_state(self, system: str, stream: str, state: dict[str, Any], updated_at: datetime) -> None:
        """Store the stream's state; an unchanged state is left as it is (a sync with nothing new
        changes no table but the run log)."""
        text = json.dumps(state, sort_keys=True, default=str)
        current = _run(
            self.con,
            f"SELECT CAST(state AS VARCHAR) FROM {META_SCHEMA}.stream_state WHERE system = ? AND stream = ?",
            [system, stream],
        )
        if current and json.dumps(json.loads(current[0][0]), sort_keys=True, default=str) == text:
            return
        _run(
            self.con,
            f"DELETE FROM {META_SCHEMA}.stream_state WHERE system = ? AND stream = ?",
            [system, stream],
        )
        _run(
            self.con,
            f"INSERT INTO {META_SCHEMA}.stream_state VALUES (?, ?, ?::JSON, ?)",
            [system, stream, text, updated_at],
        )

    # ------------------------------------------------------------------------------------- runs

    def start_run(self, system: str, stream: str, started_at: datetime) -> int:
        """Record a run as ``running`` (committed at once, so a crash leaves a trace) and return its id."""
        return int(
            _run(
                self.con,
                f"INSERT INTO {META_SCHEMA}.sync_runs (sync_id, system, stream, started_at, status) "
                f"VALUES (nextval('{META_SCHEMA}.sync_id_seq'), ?, ?, ?, 'running') RETURNING sync_id",
                [system, stream, started_at],
            )[0][0]
        )

    def finish_run(
        self,
        sync_id: int,
        *,
        status: str,
        finished_at: datetime,
        files_seen: int,
        files_skipped: int,
        stats: WriteStats,
        records_read: int,
        error: str | None = None,
    ) -> None:
        _run(
            self.con,
            f"UPDATE {META_SCHEMA}.sync_runs SET finished_at = ?, status = ?, files_seen = ?, "
            f"files_skipped = ?, files_landed = ?, files_failed = ?, records_read = ?, records_landed = ?, "
            f"records_quarantined = ?, bytes = ?, schema_changes = ?::JSON, error = ? WHERE sync_id = ?",
            [
                finished_at,
                status,
                files_seen,
                files_skipped,
                stats.files_landed,
                stats.files_failed,
                records_read,
                stats.records_landed,
                stats.records_quarantined,
                stats.bytes,
                json.dumps(stats.schema_changes),
                error,
                sync_id,
            ],
        )

    def fail_run(self, sync_id: int, finished_at: datetime, error: str) -> None:
        """Mark a run failed (after its transaction was rolled back: nothing of it was landed)."""
        _run(
            self.con,
            f"UPDATE {META_SCHEMA}.sync_runs SET finished_at = ?, status = 'failed', error = ? WHERE sync_id = ?",
            [finished_at, error, sync_id],
        )

    # ----------------------------------------------------------------------------------- writes

    def write(self, ctx: SyncContext, messages: Iterable[AirbyteMessage]) -> WriteStats:
        """Land every BATCH message and persist the last STATE message (inside the caller's transaction)."""
        stats = WriteStats()
        messages = list(messages)
        ctx.known_columns = {n.lower() for n, _ in self.table_columns(ctx.system, ctx.stream)} | {
            self._target_name(n).lower()
            for m in messages
            if m.batch is not None and m.batch.staged is not None
            for n, _ in m.batch.staged.columns
        }
        for m in messages:
            if m.type == Type.BATCH and m.batch is not None:
                self._land(ctx, m.batch, stats)
            elif m.type == Type.STATE and m.state is not None:
                stats.state = m.state.stream_state
            elif m.type == Type.LOG and m.log is not None and m.log.level in ("WARN", "ERROR", "FATAL"):
                stats.errors.append(m.log.message)
            elif m.type in (Type.RECORD, Type.INVALID):
                raise TypeError("RECORD messages are landed by write_records (they need the stream's schema)")
        if stats.state is not None:
            self.write_state(ctx.system, ctx.stream, stats.state, ctx.extracted_at)
        return stats

    def write_records(
        self,
        ctx: SyncContext,
        configured: ConfiguredAirbyteStream,
        messages: Iterable[AirbyteMessage],
        checkpoint: Callable[[dict[str, Any], WriteStats], None] | None = None,
        *,
        batch_records: int = DEFAULT_BATCH_RECORDS,
        redact: Callable[[str], str] = str,
    ) -> WriteStats:
        """Land a row source's RECORD messages in bulk batches (inside the caller's transaction).

        Records are buffered and landed every ``batch_records`` (see ``ingestion.record_batches``);
        ``INVALID`` messages are quarantined with their reason. At each STATE message the buffer is
        landed, deduplicated (append_dedup), and ``checkpoint(state, stats)`` is called: the caller
        saves the state and commits data and state together there. Without ``checkpoint`` the last
        state is only kept in ``stats.state``. A TRACE error raises ``ConnectorError`` after landing
        nothing more (the caller rolls back what was not checkpointed).
        """
        stats = WriteStats()
        stager = RecordStager(
            self.con,
            configured.stream.json_schema,
            primary_key=configured.primary_key,
            cursor_field=configured.cursor_field[0] if configured.cursor_field else None,
            batch_records=batch_records,
        )
        dedup = configured.destination_sync_mode == DestinationSyncMode.APPEND_DEDUP
        pk = [p[0] for p in configured.primary_key if p]
        cursor = configured.cursor_field[0] if configured.cursor_field else None

        def flush() -> None:
            got = stager.stage()
            if got is None:
                return
            staged, size = got
            batch = RecordBatch(
                stream=ctx.stream,
                namespace=ctx.system,
                source_url=f"sync://{ctx.sync_id}",
                source_modified_at=ctx.extracted_at,
                source_size=size,
                staged=staged,
                track_file=False,
            )
            try:
                self._land(ctx, batch, stats)
            finally:
                for t in (staged.table, staged.quarantine_table):
                    if t:
                        _run(self.con, f"DROP TABLE IF EXISTS temp.{quote_ident(t)}")
            stats.bytes += size
            if staged.cursor_max is not None:
                stats.cursor_max = max_cursor(stats.cursor_max, staged.cursor_max)

        for m in messages:
            if m.type == Type.RECORD and m.record is not None:
                stager.add(m.record.data)
                if stager.full:
                    flush()
            elif m.type == Type.INVALID and m.invalid is not None:
                stager.add_invalid(m.invalid.raw, m.invalid.reason)
            elif m.type == Type.STATE and m.state is not None:
                flush()
                if dedup:
                    self.dedup(ctx, pk, cursor)
                stats.state = m.state.stream_state
                if checkpoint is not None:
                    checkpoint(m.state.stream_state, stats)
            elif m.type == Type.LOG and m.log is not None and m.log.level in ("WARN", "ERROR", "FATAL"):
                stats.errors.append(redact(m.log.message))
            elif m.type == Type.TRACE and m.trace is not None and m.trace.type == "ERROR":
                raise ConnectorError(
                    f"system {ctx.system!r}, stream {ctx.stream!r}: the connector reported "
                    f"{m.trace.failure_type or 'an error'}: {redact(m.trace.message or m.trace.internal_message or '')}"
                )
        flush()
        if dedup:
            self.dedup(ctx, pk, cursor)
        return stats

    def ensure_table(self, ctx: SyncContext, columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Create ``raw_<system>.<stream>`` if missing; return its columns as (name, type)."""
        schema = quote_ident(self.schema_name(ctx.system))
        _run(self.con, f"CREATE SCHEMA IF NOT EXISTS {schema}")
        cols = [(self._target_name(n), t) for n, t in columns] + AIRBYTE_COLUMNS
        body = ", ".join(f"{quote_ident(n)} {t}" for n, t in cols)
        _run(self.con, f"CREATE TABLE IF NOT EXISTS {self.table_name(ctx.system, ctx.stream)} ({body})")
        return self.table_columns(ctx.system, ctx.stream)

    @staticmethod
    def _target_name(name: str) -> str:
        # A source column named like one of ours keeps its data under a suffixed name.
        return f"{name}_source" if name.lower() in _RESERVED else name

    def _evolve(
        self, ctx: SyncContext, batch: RecordBatch, existing: list[tuple[str, str]], stats: WriteStats
    ) -> tuple[list[str], list[dict[str, Any]], list[tuple[str, str, str]]]:
        """Add new columns, widen changed ones; return the SELECT expressions, the row changes and
        the mapped columns held to their type (source column, table column, type: see the module
        docstring)."""
        assert batch.staged is not None
        table = self.table_name(ctx.system, ctx.stream)
        current = {n.lower(): (n, t) for n, t in existing}
        mapped = {k.lower(): t for k, t in ctx.mapped_columns.items()}
        selects: list[str] = []
        changes: list[dict[str, Any]] = []
        casts: list[tuple[str, str, str]] = []
        for name, incoming in batch.staged.columns:
            target = self._target_name(name)
            src = quote_ident(name)
            if target != name:
                changes.append(
                    {"field": name, "change": "RENAMED", "reason": f"DESTINATION_RESERVED_NAME: {target}"}
                )
            if target.lower() not in current:
                _run(self.con, f"ALTER TABLE {table} ADD COLUMN {quote_ident(target)} {incoming}")
                current[target.lower()] = (target, incoming)
                stats.schema_changes.append(f"{batch.source_url}: added column {target} {incoming}")
                selects.append(f"{src} AS {quote_ident(target)}")
                continue
            col_name, col_type = current[target.lower()]
            if col_type.upper() == incoming.upper():
                selects.append(f"{src} AS {quote_ident(col_name)}")
                continue
            if target.lower() in mapped and _held(col_type, incoming, mapped[target.lower()]):
                casts.append((name, col_name, col_type))
                changes.append(
                    {
                        "field": col_name,
                        "change": "CAST",
                        "reason": f"SOURCE_TYPE_CHANGED: {incoming} cast to the stream's {col_type}",
                    }
                )
                selects.append(f"{_strict_cast(src, col_type)} AS {quote_ident(col_name)}")
                continue
            wide = supertype(col_type, incoming)
            if wide.upper() != col_type.upper():
                _run(
                    self.con, f"ALTER TABLE {table} ALTER COLUMN {quote_ident(col_name)} SET DATA TYPE {wide}"
                )
                current[target.lower()] = (col_name, wide)
                stats.schema_changes.append(
                    f"{batch.source_url}: column {col_name} {col_type} widened to {wide} (file has {incoming})"
                )
            changes.append(
                {
                    "field": col_name,
                    "change": "CAST",
                    "reason": f"SOURCE_TYPE_CHANGED: {incoming} landed in a {wide} column",
                }
            )
            selects.append(f"{_convert(src, incoming, wide)} AS {quote_ident(col_name)}")
        return selects, changes, casts

    def _land(self, ctx: SyncContext, batch: RecordBatch, stats: WriteStats) -> None:
        if batch.staged is None:
            stats.files_failed += 1
            stats.errors.append(f"{batch.source_url}: {batch.error}")
            self._quarantine_file(ctx, batch)
            return
        staged = batch.staged
        mapped = {k.lower(): (k, t) for k, t in ctx.mapped_columns.items()}
        if mapped and staged.records:
            have = {self._target_name(n).lower() for n, _ in staged.columns}
            missing = [k for low, (k, _) in mapped.items() if low not in have and low in ctx.known_columns]
            if missing:
                names = ", ".join(missing)
                self._reject_file(
                    ctx, batch, stats, ", ".join(missing),
                    f"missing column {names}: the stream's mapping reads {'it' if len(missing) == 1 else 'them'} "
                    f"and the file does not have {'it' if len(missing) == 1 else 'them'} (removed or renamed?; "
                    f"the file has {', '.join(n for n, _ in staged.columns)}); none of its {staged.records} "
                    f"row(s) landed",
                )
                return
        # A new table takes a mapped column's declared type rather than the text of its first file.
        create = []
        for n, t in staged.columns:
            declared = mapped.get(self._target_name(n).lower(), (n, None))[1]
            create.append((n, declared if declared and _held(declared, t, declared) else t))
        existing = self.ensure_table(ctx, create)
        selects, changes, casts = self._evolve(ctx, batch, existing, stats)
        cast_fields = {c for _, c, _ in casts}
        staged_changes = [
            c for c in staged.changes
            if not (c.get("field") in cast_fields and str(c.get("reason", "")).startswith("SOURCE_MIXED_TYPES"))
        ]
        bad_rows = self._stage_cast_failures(ctx, batch, casts) if casts and staged.records else None
        if bad_rows is not None:
            retyped = self._retyped(bad_rows)
            if retyped is not None:
                _run(self.con, f"DROP TABLE IF EXISTS temp.{quote_ident(bad_rows)}")
                column, target, sample = retyped
                self._reject_file(
                    ctx, batch, stats, column,
                    f"retyped column {column}: no value of it casts to the stream's {target} (e.g. {sample!r}); "
                    f"none of the file's {staged.records} row(s) landed",
                )
                return
        try:
            self._land_rows(ctx, batch, stats, selects, staged_changes + changes, bad_rows)
        finally:
            if bad_rows is not None:
                _run(self.con, f"DROP TABLE IF EXISTS temp.{quote_ident(bad_rows)}")

    def _land_rows(
        self,
        ctx: SyncContext,
        batch: RecordBatch,
        stats: WriteStats,
        selects: list[str],
        batch_changes: list[dict[str, Any]],
        bad_rows: str | None,
    ) -> None:
        staged = batch.staged
        assert staged is not None
        bad = 0 if bad_rows is None else int(
            _run(self.con, f"SELECT count(DISTINCT rowid) FROM temp.{quote_ident(bad_rows)}")[0][0]
        )
        skip = f" WHERE rowid NOT IN (SELECT rowid FROM temp.{quote_ident(bad_rows)})" if bad else ""
        meta = json.dumps({"sync_id": ctx.sync_id, "changes": batch_changes})
        meta_expr = "$meta::JSON"
        if staged.row_changes_column:
            # Per-row changes (a JSON array text or NULL) appended to the batch's own changes.
            col = quote_ident(staged.row_changes_column)
            batch_changes = json.dumps(batch_changes)
            head = json.dumps({"sync_id": ctx.sync_id})[:-1] + ', "changes": '
            joined = (
                col if batch_changes == "[]" else f"{_sql_literal(batch_changes[:-1])} || ', ' || ltrim({col}, '[')"
            )
            meta_expr = (
                f"CASE WHEN {col} IS NULL THEN $meta ELSE "
                f"({_sql_literal(head)} || {joined} || '}}') END::JSON"
            )
        if staged.records:
            # The raw id is "<sync_id>-<batch>-<row>" (text): unique in the table, and far cheaper to
            # generate and store than a random UUID's 36 characters. ``staged.table`` may also be a
            # view reading the file itself (file_drop's direct Parquet path; its ``rowid`` is the
            # file's row number): the count check below catches a file that changed under it.
            inserted = _run(
                self.con,
                f"INSERT INTO {self.table_name(ctx.system, ctx.stream)} BY NAME SELECT "
                + "".join(f"{s}, " for s in selects)
                + "$raw_id_prefix || rowid::VARCHAR AS _airbyte_raw_id, "
                f"$extracted_at::TIMESTAMPTZ AS _airbyte_extracted_at, {meta_expr} AS _airbyte_meta, "
                f"$generation::BIGINT AS _airbyte_generation_id, $url AS {FILE_URL_COLUMN}, "
                f"$modified::TIMESTAMPTZ AS {FILE_MODIFIED_COLUMN} "
                f"FROM temp.{quote_ident(staged.table)}{skip}",
                {
                    "raw_id_prefix": ctx.next_raw_id_prefix(),
                    "extracted_at": ctx.extracted_at,
                    "meta": meta,
                    "generation": ctx.generation_id,
                    "url": batch.source_url,
                    "modified": batch.source_modified_at,
                },
            )[0][0]
            if int(inserted) != staged.records - bad:
                raise ConnectorError(
                    f"system {ctx.system!r}, stream {ctx.stream!r}: {batch.source_url}: expected "
                    f"{staged.records - bad} rows, landed {inserted}"
                )
        self._insert_quarantine(ctx, batch)
        if bad:
            _run(
                self.con,
                f"INSERT INTO {META_SCHEMA}.quarantine BY NAME SELECT ? AS system, ? AS stream, ? AS file_path, "
                f"line_number, raw_record, reason, ? AS sync_id, ? AS quarantined_at, ? AS file_modified_at, "
                f"column_name, failing_value, records FROM temp.{quote_ident(bad_rows)} ORDER BY line_number",
                [ctx.system, ctx.stream, batch.source_url, ctx.sync_id, ctx.extracted_at, batch.source_modified_at],
            )
        landed, quarantined = staged.records - bad, staged.quarantined + bad
        if batch.track_file:
            self.record_landed(
                ctx, batch.source_url, batch.source_modified_at, batch.source_size, landed, quarantined
            )
            stats.files_landed += 1
        stats.records_with_errors += staged.records_with_errors
        stats.records_landed += landed
        stats.records_quarantined += quarantined
        stats.bytes += batch.source_size

    def _insert_quarantine(self, ctx: SyncContext, batch: RecordBatch) -> None:
        """Copy the input the source could not read as records (malformed lines, ...) to the quarantine."""
        staged = batch.staged
        if staged is None or not staged.quarantine_table or not staged.quarantined:
            return
        _run(
            self.con,
            f"INSERT INTO {META_SCHEMA}.quarantine BY NAME SELECT ? AS system, ? AS stream, ? AS file_path, "
            f"line_number, raw_record, reason, ? AS sync_id, ? AS quarantined_at, ? AS file_modified_at, "
            f"1 AS records FROM temp.{quote_ident(staged.quarantine_table)} ORDER BY line_number",
            [ctx.system, ctx.stream, batch.source_url, ctx.sync_id, ctx.extracted_at, batch.source_modified_at],
        )

    def _stage_cast_failures(
        self, ctx: SyncContext, batch: RecordBatch, casts: list[tuple[str, str, str]]
    ) -> str:
        """A temp table of the staged rows whose value of a held column does not cast (one row per
        row and column): ``rowid``, ``line_number``, ``column_name``, ``failing_value``, ``raw_record``,
        ``reason``, plus ``_nonnull`` (the column's non-blank values in the file)."""
        staged = batch.staged
        assert staged is not None
        table = f"_cast_failures_{uuid.uuid4().hex[:12]}"
        src = f"temp.{quote_ident(staged.table)}"
        line = f"CAST({quote_ident(staged.line_column)} AS BIGINT)" if staged.line_column else "rowid + 1"
        parts = []
        for source, column, target in casts:
            col = quote_ident(source)
            where = f"{col} IS NOT NULL AND trim(CAST({col} AS VARCHAR)) <> ''"
            reason = (
                f"column {column}: value does not cast to {target}, the type of "
                f"{self.schema_name(ctx.system)}.{ctx.stream}.{column}"
                + (" (declared by the stream's mapping)" if ctx.mapped_columns.get(column) else "")
            )
            parts.append(
                f"SELECT rowid, {line} AS line_number, {_sql_literal(column)} AS column_name, "
                f"CAST({col} AS VARCHAR) AS failing_value, {_sql_literal(target)} AS target, "
                f"{_sql_literal(reason)} || ': ' || CAST({col} AS VARCHAR) AS reason, "
                f"(SELECT count(*) FROM {src} WHERE {where}) AS _nonnull "
                f"FROM {src} WHERE {where} AND {_strict_cast(col, target)} IS NULL"
            )
        _run(self.con, f"DROP TABLE IF EXISTS temp.{quote_ident(table)}")
        _run(
            self.con,
            f"CREATE TEMP TABLE {quote_ident(table)} AS SELECT *, failing_value AS raw_record, "
            f"CASE WHEN row_number() OVER (PARTITION BY rowid ORDER BY column_name) = 1 THEN 1 ELSE 0 END "
            f"AS records FROM (" + " UNION ALL ".join(parts) + ")",
        )
        return table

    def _retyped(self, bad_rows: str) -> tuple[str, str, str] | None:
        """(column, type, a sample value) of a held column none of whose values cast, or None."""
        got = _run(
            self.con,
            f"SELECT column_name, any_value(target), min(failing_value) FROM temp.{quote_ident(bad_rows)} "
            f"GROUP BY column_name HAVING count(*) = any_value(_nonnull) ORDER BY column_name LIMIT 1",
        )
        return (got[0][0], got[0][1], got[0][2]) if got else None

    def _reject_file(self, ctx: SyncContext, batch: RecordBatch, stats: WriteStats, column: str, reason: str) -> None:
        """Land none of a file's rows: one quarantine row for them (``records``), the file's own
        unreadable lines as usual, a ``landed_files`` row with 0 landed, and the reason in the errors."""
        staged = batch.staged
        assert staged is not None
        self._insert_quarantine(ctx, batch)
        _run(
            self.con,
            f"INSERT INTO {META_SCHEMA}.quarantine BY NAME SELECT ? AS system, ? AS stream, ? AS file_path, "
            f"? AS reason, ? AS sync_id, ? AS quarantined_at, ? AS file_modified_at, ? AS column_name, "
            f"? AS records",
            [ctx.system, ctx.stream, batch.source_url, reason, ctx.sync_id, ctx.extracted_at,
             batch.source_modified_at, column, staged.records],
        )
        quarantined = staged.records + staged.quarantined
        if batch.track_file:
            self.record_landed(ctx, batch.source_url, batch.source_modified_at, batch.source_size, 0, quarantined)
        stats.files_failed += 1
        stats.errors.append(f"{batch.source_url}: {reason}")
        stats.records_quarantined += quarantined
        stats.bytes += batch.source_size

    def record_landed(
        self,
        ctx: SyncContext,
        url: str,
        modified_at: datetime | None,
        size: int,
        records: int,
        quarantined: int,
    ) -> None:
        """Add a ``recon_meta.landed_files`` row: a file landed, or (``sync://<id>``) a record sync
        succeeded; ``file_modified_at`` is what the freshness rules read."""
        _run(
            self.con,
            f"INSERT INTO {META_SCHEMA}.landed_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [ctx.system, ctx.stream, url, modified_at, size, records, quarantined, ctx.sync_id, ctx.extracted_at],
        )

    def table_columns(self, system: str, stream: str) -> list[tuple[str, str]]:
        """``raw_<system>.<stream>``'s columns as (name, type); empty if the table does not exist."""
        return [
            (r[0], r[1])
            for r in _run(
                self.con,
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE schema_name = ? AND table_name = ? AND NOT internal ORDER BY column_index",
                [self.schema_name(system), stream],
            )
        ]

    def table_exists(self, system: str, stream: str) -> bool:
        return bool(
            _run(
                self.con,
                "SELECT 1 FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                [self.schema_name(system), stream],
            )
        )

    def max_generation(self, system: str, stream: str) -> int:
        """The newest ``_airbyte_generation_id`` landed for the stream (-1 if none)."""
        if not self.table_exists(system, stream):
            return -1
        got = _run(self.con, f"SELECT max(_airbyte_generation_id) FROM {self.table_name(system, stream)}")
        return -1 if got[0][0] is None else int(got[0][0])

    def dedup(self, ctx: SyncContext, primary_key: list[str], cursor_field: str | None) -> int:
        """Append + dedup: keep one row per primary key, the one with the greatest cursor (then the
        latest extracted, then the last landed). Only keys this sync touched are looked at, so the
        cost follows the sync's size, not the table's."""
        if not primary_key or not self.table_exists(ctx.system, ctx.stream):
            return 0
        table = self.table_name(ctx.system, ctx.stream)
        columns = {c.lower(): c for c, _ in self.ensure_table(ctx, [])}
        pk = [quote_ident(columns[k.lower()]) for k in primary_key if k.lower() in columns]
        if len(pk) != len(primary_key):
            return 0
        order = []
        if cursor_field and cursor_field.lower() in columns:
            order.append(f"{quote_ident(columns[cursor_field.lower()])} DESC NULLS LAST")
        order += ["_airbyte_extracted_at DESC", "rowid DESC"]
        keys = ", ".join(pk)
        return int(
            _run(
                self.con,
                f"DELETE FROM {table} WHERE _airbyte_raw_id IN (SELECT _airbyte_raw_id FROM ("
                f"SELECT _airbyte_raw_id, row_number() OVER (PARTITION BY {keys} ORDER BY {', '.join(order)}) AS _rn "
                f"FROM {table} SEMI JOIN (SELECT DISTINCT {keys} FROM {table} WHERE _airbyte_extracted_at = ?) "
                f"AS _touched USING ({keys})) WHERE _rn > 1)",
                [ctx.extracted_at],
            )[0][0]
        )

    def _quarantine_file(self, ctx: SyncContext, batch: RecordBatch) -> None:
        _run(
            self.con,
            f"INSERT INTO {META_SCHEMA}.quarantine (system, stream, file_path, line_number, raw_record, reason, "
            f"sync_id, quarantined_at, file_modified_at) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?, ?)",
            [
                ctx.system,
                ctx.stream,
                batch.source_url,
                batch.error or "unreadable file",
                ctx.sync_id,
                ctx.extracted_at,
                batch.source_modified_at,
            ],
        )
