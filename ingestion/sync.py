"""Run one stream's sync: source -> DuckDB destination, data and state committed together.

``sync_stream(con, stream)`` dispatches on the stream's connector: a ``FileDropStream`` lands new files
(one transaction); a ``ConnectorStream`` of a row connector (``rest_api``, ``sql``, ``airbyte_command``)
lands RECORD messages in bulk batches and commits at every STATE checkpoint (data + state in one
transaction; a full refresh overwrite commits once, at the end); an ``airbyte_api`` stream triggers the
Airbyte connection and waits for it. ``sync_system`` syncs every stream of a configured system.
""" 

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from ingestion.connectors import SYNC_MODES, ConnectorStream, redactor, source_for, stream_for
from ingestion.destination_duckdb import META_SCHEMA, DuckDBDestination, SyncContext, WriteStats, supertype
from ingestion.protocol import (
    AirbyteMessage,
    ConfigError,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    ConnectorError,
    DestinationSyncMode,
    SyncMode,
    Type,
)
from ingestion.sources.airbyte_api import AirbyteClient
from ingestion.sources.file_drop import (
    DroppedFile,
    FileDropStream,
    SourceFileDrop,
    configured_catalog,
    drop_staged,
    is_direct,
    list_files,
    stage_file,
    stat_file,
)


@dataclass
class SyncResult:
    """What one sync of one stream did.

    ``records_read == records_landed + records_quarantined`` always holds. ``errors`` lists files
    that could not be read at all (quarantined as a whole, not counted in records) and files skipped
    because they changed while being read; the sync itself still committed.
    ``newest_file_modified_at`` is the newest modification time of any file landed for the stream so
    far (this sync or an earlier one), i.e. how fresh the stream is.
    """

    system: str
    stream: str
    table: str
    sync_id: int
    status: str
    files_seen: int
    files_skipped: int
    files_landed: int
    files_failed: int
    records_read: int
    records_landed: int
    records_quarantined: int
    bytes: int
    seconds: float
    newest_file_modified_at: datetime | None
    schema_changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connector: str = "file_drop"
    records_with_errors: int = 0
    cursor: Any = None
    state: dict[str, Any] | None = None


@contextmanager
def utc_session(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run with the connection's TimeZone set to UTC, restoring the previous setting afterwards."""
    previous = con.execute("SELECT current_setting('TimeZone')").fetchall()[0][0]
    con.execute("SET TimeZone = 'UTC'").fetchall()
    try:
        yield
    finally:
        # SET takes no parameters; the value is DuckDB's own setting, quoted as a literal.
        literal = "'" + str(previous).replace("'", "''") + "'"
        con.execute(f"SET TimeZone = {literal}").fetchall()


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Begin a transaction; commit it when the block ends, roll it back if anything (even a commit) fails."""
    con.begin()
    try:
        yield
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _newest_landed(state: dict | None) -> datetime | None:
    history = (state or {}).get("history") or {}
    stamps = [v["modified_at"] for v in history.values() if v.get("status") == "landed"]
    return datetime.fromisoformat(max(stamps)) if stamps else None


def sync_stream(
    con: duckdb.DuckDBPyConnection, stream: FileDropStream | ConnectorStream, **kwargs: Any
) -> SyncResult:
    """Sync one stream with its connector (see the module docstring); returns the run's counts.

    Raises:
        ConfigError: the stream's config is wrong (names the system, stream and key).
        ConnectorError: the source failed (names the system and stream; secrets redacted). The run
            is recorded as failed and nothing after its last checkpoint is kept.
    """
    if isinstance(stream, FileDropStream):
        return sync_files(con, stream)
    if stream.connector == "airbyte_api":
        return sync_airbyte_connection(con, stream, **kwargs)
    return sync_records(con, stream, **kwargs)


def sync_system(con: duckdb.DuckDBPyConnection, system_name: str, system: Any) -> list[SyncResult]:
    """Sync every stream of one configured system (``SystemConfig`` or mapping), in name order.

    A stream that fails does not stop the others; the first error is raised after all ran.
    """
    streams = system.get("streams") if isinstance(system, dict) else system.streams
    results, first_error = [], None
    for name in sorted(streams):
        try:
            results.append(sync_stream(con, stream_for(system_name, system, name)))
        except Exception as e:  # noqa: BLE001 - reported after the other streams ran
            first_error = first_error or e
    if first_error is not None:
        raise first_error
    return results


def _dropped(batch: Any) -> DroppedFile:
    return DroppedFile(
        path=Path(batch.source_url), url=batch.source_url, size=batch.source_size,
        modified_at=batch.source_modified_at,
    )


def _restage(con: duckdb.DuckDBPyConnection, stream: FileDropStream, messages: list[AirbyteMessage], which: Any) -> None:
    """Replace direct (view) batches chosen by ``which`` with staged copies, outside any transaction.

    A file that cannot be read after all becomes a failed batch (quarantined as a whole) and its
    history entry in the STATE message is marked failed, as the source would have done.
    """
    histories = [
        (m.state.stream_state or {}).get("history") or {} for m in messages if m.type == Type.STATE and m.state
    ]
    for m in messages:
        b = m.batch
        if b is None or not is_direct(b.staged) or not which(b):
            continue
        drop_staged(con, b.staged)
        b.staged = None
        try:
            f = _dropped(b)
            b.staged = stage_file(con, stream, f)
            if stat_file(f.path) != f:
                raise OSError("changed while being read")
        except (duckdb.Error, OSError) as e:
            drop_staged(con, b.staged)
            b.staged = None
            b.error = f"unreadable {stream.format} file: {type(e).__name__}: {e}"
            for h in histories:
                if b.source_url in h:
                    h[b.source_url]["status"] = "failed"


def _needs_schema_change(destination: DuckDBDestination, stream: FileDropStream, messages: list[AirbyteMessage]):
    """The direct batches that would add or widen a column of the raw table (they take the staged path)."""
    current = {n.lower(): t for n, t in destination.table_columns(stream.system, stream.stream)}
    changing = set()
    for m in messages:
        b = m.batch
        if b is None or b.staged is None:
            continue
        cols = [(destination._target_name(n).lower(), t) for n, t in b.staged.columns]
        if is_direct(b.staged) and current and any(current.get(n, "").upper() != t.upper() for n, t in cols):
            changing.add(b.source_url)
        for n, t in cols:
            current[n] = supertype(current[n], t) if n in current else t
    return changing


def sync_files(con: duckdb.DuckDBPyConnection, stream: FileDropStream) -> SyncResult:
    """Land the stream's new and changed files into ``raw_<system>.<stream>``.

    Files are staged first (outside the transaction, so an unreadable file fails alone), then all
    batches, the ``landed_files`` rows, the quarantine rows, the stream state and the run's status
    commit in one transaction: a crash loses and duplicates nothing. A file already landed with the
    same path, size and modification time is skipped.

    Args:
        con: DuckDB connection, not inside a transaction (this function begins and commits its own).
        stream: the stream to sync.

    Returns:
        The run's counts (also in ``recon_meta.sync_runs``).

    Raises:
        ConfigError: the folder is missing, or the glob matches nothing on the stream's first sync
            (the message names the system, stream and path). The run is recorded as failed.
        duckdb.Error: landing failed; the transaction was rolled back and the run recorded as failed.
    """
    t0 = time.perf_counter()
    extracted_at = datetime.now(UTC)
    destination = DuckDBDestination(con)
    messages: list[AirbyteMessage] = []
    with utc_session(con):
        destination.setup()
        sync_id = destination.start_run(stream.system, stream.stream, extracted_at)
        ctx = SyncContext(
            system=stream.system, stream=stream.stream, sync_id=sync_id, extracted_at=extracted_at,
            mapped_columns=dict(stream.mapped_columns),
        )
        try:
            state = destination.read_state(stream.system, stream.stream)
            files_seen = len(list_files(stream))
            catalog = configured_catalog([stream])
            ctx.generation_id = catalog.streams[0].generation_id
            # Stage every new file before the transaction: a read error inside a DuckDB transaction
            # would abort all of it, outside it only fails that one file.
            # Parquet files whose footer checks out are not staged but landed straight from the reader
            # (one INSERT ... SELECT in the transaction) unless they change the table's schema.
            read = SourceFileDrop().read(stream.to_config(), catalog, {stream.stream: state}, con, direct=True)
            for message in read:
                messages.append(message)
            changing = _needs_schema_change(destination, stream, messages)
            if changing:
                _restage(con, stream, messages, lambda b: b.source_url in changing)
            batches = [m.batch for m in messages if m.type == Type.BATCH and m.batch is not None]
            for attempt in (1, 2):
                records_read = sum(b.staged.records_read for b in batches if b.staged is not None)
                con.begin()
                try:
                    stats: WriteStats = destination.write(ctx, messages)
                    if stream.sync_mode == "append_dedup":
                        destination.dedup(ctx, stream.primary_key, stream.cursor_field)
                    for b in batches:
                        if is_direct(b.staged) and stat_file(Path(b.source_url)) != _dropped(b):
                            raise OSError(f"{b.source_url}: changed while being landed")
                    status = "succeeded_with_errors" if stats.errors else "succeeded"
                    destination.finish_run(
                        sync_id,
                        status=status,
                        finished_at=datetime.now(UTC),
                        files_seen=files_seen,
                        files_skipped=files_seen - len(batches),
                        stats=stats,
                        records_read=records_read,
                        error="; ".join(stats.errors) or None,
                    )
                    con.commit()
                    break
                except Exception:
                    con.rollback()
                    if attempt == 2 or not any(is_direct(b.staged) for b in batches):
                        raise
                    # A direct read failed inside the transaction (which it aborted): stage those
                    # files after all, outside it, and land everything again.
                    _restage(con, stream, messages, lambda b: True)
                except BaseException:
                    con.rollback()
                    raise
        except BaseException as e:
            destination.fail_run(sync_id, datetime.now(UTC), f"{type(e).__name__}: {e}")
            raise
        finally:
            for m in messages:
                if m.batch is not None:
                    drop_staged(con, m.batch.staged)
    return SyncResult(
        system=stream.system,
        stream=stream.stream,
        table=f"{destination.schema_name(stream.system)}.{stream.stream}",
        sync_id=sync_id,
        status=status,
        files_seen=files_seen,
        files_skipped=files_seen - len(batches),
        files_landed=stats.files_landed,
        files_failed=stats.files_failed,
        records_read=records_read,
        records_landed=stats.records_landed,
        records_quarantined=stats.records_quarantined,
        bytes=stats.bytes,
        seconds=time.perf_counter() - t0,
        newest_file_modified_at=_newest_landed(stats.state or state),
        schema_changes=stats.schema_changes,
        errors=stats.errors,
    )


# ------------------------------------------------------------------------------------ row sources


def source_config(stream: ConnectorStream, resolved: dict[str, Any]) -> dict[str, Any]:
    """The connector config for one stream: the resolved options, the stream's key and cursor added."""
    config = dict(resolved)
    streams = dict(config.get("streams") or {})
    own = dict(streams.get(stream.stream) or {})
    if stream.connector != "airbyte_command":
        own.setdefault("primary_key", list(stream.primary_key))
        if stream.cursor_field:
            own.setdefault("cursor_field", stream.cursor_field)
    streams[stream.stream] = own
    config["streams"] = streams
    return config


def configure_stream(stream: ConnectorStream, discovered: Any) -> ConfiguredAirbyteStream:
    """How to sync a discovered stream, from the stream's ``sync_mode`` (the record model's delivery mode).

    - ``append``: incremental (after the saved cursor) when the stream has a cursor and the source reads
      incrementally, else a full read each sync; landed rows are appended.
    - ``append_dedup``: the same, and the raw table keeps one row per primary key (the latest).
    - ``snapshot``: a full read each sync, landed as one new generation in one transaction (a half
      snapshot is never committed: it would delete the keys it had not reached yet); older generations
      stay, so an as-of replay of an older day sees the snapshot of that day.
    The default is ``append`` when the stream has a cursor and the source reads incrementally, else
    ``snapshot``.
    """
    own = stream.stream_options
    cursor = [stream.cursor_field] if stream.cursor_field else list(discovered.default_cursor_field)
    if own.get("cursor_field"):
        cursor = [own["cursor_field"]] if isinstance(own["cursor_field"], str) else list(own["cursor_field"])
    pk = [[k] for k in stream.primary_key] or [list(k) for k in discovered.source_defined_primary_key]
    incremental_ok = SyncMode.INCREMENTAL in discovered.supported_sync_modes and bool(cursor)
    mode = stream.sync_mode or ("append" if incremental_ok else "snapshot")
    if mode not in SYNC_MODES:
        raise ConfigError(
            f"system {stream.system!r}, stream {stream.stream!r}: unknown sync_mode {mode!r} "
            f"(expected one of {', '.join(SYNC_MODES)})"
        )
    if mode == "append_dedup" and not pk:
        raise ConfigError(f"system {stream.system!r}, stream {stream.stream!r}: {mode} needs a primary_key")
    destination_mode = {
        "append": DestinationSyncMode.APPEND,
        "append_dedup": DestinationSyncMode.APPEND_DEDUP,
        "snapshot": DestinationSyncMode.OVERWRITE,
    }[mode]
    return ConfiguredAirbyteStream(
        stream=discovered,
        sync_mode=SyncMode.INCREMENTAL if mode != "snapshot" and incremental_ok else SyncMode.FULL_REFRESH,
        destination_sync_mode=destination_mode,
        cursor_field=cursor,
        primary_key=pk,
    )


def _start_run(destination: DuckDBDestination, stream: ConnectorStream, extracted_at: datetime) -> tuple[int, SyncContext]:
    """Record the sync as running (committed at once) and return its id and write context."""
    destination.setup()
    sync_id = destination.start_run(stream.system, stream.stream, extracted_at)
    return sync_id, SyncContext(system=stream.system, stream=stream.stream, sync_id=sync_id, extracted_at=extracted_at)


def sync_records(
    con: duckdb.DuckDBPyConnection,
    stream: ConnectorStream,
    *,
    source: Any = None,
    env: dict[str, str] | None = None,
    batch_records: int | None = None,
    on_checkpoint: Any = None,
) -> SyncResult:
    """Sync one stream of a row connector into ``raw_<system>.<stream>``.

    The source's RECORD messages are landed in bulk batches; at every STATE message the batch is
    landed and the data and the state commit in one transaction (a full refresh overwrite commits
    once, at the end, as a new generation; older generations stay, for as-of replays). Killed half way, the next sync
    resumes from the last committed state: nothing lost, nothing doubled. A successful sync adds a
    ``recon_meta.landed_files`` row (``sync://<sync_id>``, modified at the extraction time), the
    freshness fact the dbt models read; a failed one adds nothing, so the system goes stale.

    Args:
        con: DuckDB connection, not inside a transaction.
        stream: the configured stream.
        source: the source to use (default: the connector's own).
        env: environment for the secrets (default: ``os.environ``).
        batch_records: records per landed batch (default 100,000).
        on_checkpoint: called with (state, records landed so far) after each commit (tests, progress).
    """
    t0 = time.perf_counter()
    extracted_at = datetime.now(UTC)
    destination = DuckDBDestination(con)
    where = f"system {stream.system!r}, stream {stream.stream!r} ({stream.connector})"
    with utc_session(con):
        sync_id, ctx = _start_run(destination, stream, extracted_at)
        redact = str
        totals = WriteStats()
        try:
            resolved, secrets = stream.resolved(env)
            redact = redactor(secrets)
            config = source_config(stream, resolved)
            src = source if source is not None else source_for(stream.connector)
            catalog = src.discover(config)
            discovered = next((s for s in catalog.streams if s.name == stream.stream), None)
            if discovered is None:
                raise ConfigError(
                    f"{where}: the source has no stream {stream.stream!r} "
                    f"(it has {', '.join(s.name for s in catalog.streams) or 'none'})"
                )
            configured = configure_stream(stream, discovered)
            overwrite = configured.destination_sync_mode == DestinationSyncMode.OVERWRITE
            if configured.sync_mode == SyncMode.FULL_REFRESH:
                state: dict[str, Any] = {}
            else:
                state = destination.read_state(stream.system, stream.stream)
            if overwrite:
                ctx.generation_id = destination.max_generation(stream.system, stream.stream) + 1
            configured.generation_id = ctx.generation_id
            configured.sync_id = sync_id
            committed = {"landed": 0, "quarantined": 0}

            def checkpoint(new_state: dict[str, Any], stats: WriteStats) -> None:
                if overwrite:
                    return  # one transaction for the whole refresh
                destination.write_state(stream.system, stream.stream, new_state, extracted_at)
                con.commit()
                committed["landed"], committed["quarantined"] = stats.records_landed, stats.records_quarantined
                con.begin()
                if on_checkpoint is not None:
                    on_checkpoint(new_state, stats.records_landed)

            messages = src.read(config, ConfiguredAirbyteCatalog(streams=[configured]), {stream.stream: state})
            with _transaction(con):
                kwargs = {"batch_records": batch_records} if batch_records else {}
                totals = destination.write_records(ctx, configured, messages, checkpoint, redact=redact, **kwargs)
                if totals.state is not None:
                    destination.write_state(stream.system, stream.stream, totals.state, extracted_at)
                destination.record_landed(
                    ctx, f"sync://{sync_id}", extracted_at, totals.bytes, totals.records_landed,
                    totals.records_quarantined,
                )
                status = "succeeded_with_errors" if totals.errors else "succeeded"
                destination.finish_run(
                    sync_id,
                    status=status,
                    finished_at=datetime.now(UTC),
                    files_seen=0,
                    files_skipped=0,
                    stats=totals,
                    records_read=totals.records_landed + totals.records_quarantined,
                    error="; ".join(totals.errors)[:4000] or None,
                )
        except BaseException as e:
            message = redact(f"{type(e).__name__}: {e}")
            destination.fail_run(sync_id, datetime.now(UTC), message)
            if isinstance(e, ConfigError | ConnectorError):
                text = redact(str(e))
                raise type(e)(text if f"system {stream.system!r}" in text else f"{where}: {text}") from None
            if isinstance(e, Exception):
                raise ConnectorError(f"{where}: sync failed: {message}") from None
            raise
    state_now = totals.state if totals.state is not None else state
    return SyncResult(
        system=stream.system,
        stream=stream.stream,
        table=f"{destination.schema_name(stream.system)}.{stream.stream}",
        sync_id=sync_id,
        status=status,
        files_seen=0,
        files_skipped=0,
        files_landed=0,
        files_failed=0,
        records_read=totals.records_landed + totals.records_quarantined,
        records_landed=totals.records_landed,
        records_quarantined=totals.records_quarantined,
        bytes=totals.bytes,
        seconds=time.perf_counter() - t0,
        newest_file_modified_at=extracted_at,
        schema_changes=totals.schema_changes,
        errors=totals.errors,
        connector=stream.connector,
        records_with_errors=totals.records_with_errors,
        cursor=(state_now or {}).get("cursor_value", totals.cursor_max),
        state=state_now,
    )


# ---- a real Airbyte deployment (airbyte_api) -----------------------------------------------------


def _recent_job(con: duckdb.DuckDBPyConnection, system: str, minutes: float) -> tuple[int, str] | None:
    """A job of this system that succeeded within the last ``minutes`` (sync_id of its run, job url)."""
    if minutes <= 0:
        return None
    rows = con.execute(
        f"SELECT r.sync_id, f.file_path FROM {META_SCHEMA}.sync_runs r JOIN {META_SCHEMA}.landed_files f "
        f"USING (sync_id) WHERE r.system = ? AND r.status = 'succeeded' AND f.file_path LIKE 'sync://airbyte-job-%' "
        f"AND r.finished_at >= ? ORDER BY r.finished_at DESC LIMIT 1",
        [system, datetime.now(UTC) - timedelta(minutes=minutes)],
    ).fetchall()
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def sync_airbyte_connection(
    con: duckdb.DuckDBPyConnection,
    stream: ConnectorStream,
    *,
    env: dict[str, str] | None = None,
    client: AirbyteClient | None = None,
    sleep: Any = time.sleep,
) -> Any:
    """Run the system's Airbyte connection (or reuse a recent successful job) for one stream."""
    t0 = time.perf_counter()
    extracted_at = datetime.now(UTC)
    destination = DuckDBDestination(con)
    where = f"system {stream.system!r}, stream {stream.stream!r} (airbyte_api)"
    with utc_session(con):
        sync_id, ctx = _start_run(destination, stream, extracted_at)
        redact = str
        stats = WriteStats()
        try:
            config, secrets = stream.resolved(env)
            redact = redactor(secrets)
            if not config.get("connection_id"):
                raise ConfigError(f"{where}: options.connection_id is required")
            reused = _recent_job(con, stream.system, float(config.get("reuse_minutes", 30)))
            if reused is not None:
                url, rows, size = reused[1], 0, 0
                note = f"reused {url.removeprefix('sync://')} (synced within reuse_minutes)"
            else:
                api = client or AirbyteClient(config, sleep=sleep)
                job = api.run(
                    config["connection_id"],
                    float(config.get("timeout_seconds", 3600)),
                    float(config.get("poll_interval_seconds", 10)),
                )
                url, rows, size = f"sync://airbyte-job-{job.job_id}", int(job.rows_synced or 0), int(job.bytes_synced or 0)
                note = None
            stats.records_landed, stats.bytes = rows, size
            with _transaction(con):
                destination.record_landed(ctx, url, extracted_at, size, rows, 0)
                destination.finish_run(
                    sync_id, status="succeeded", finished_at=datetime.now(UTC), files_seen=0, files_skipped=0,
                    stats=stats, records_read=rows, error=note,
                )
        except BaseException as e:
            message = redact(f"{type(e).__name__}: {e}")
            destination.fail_run(sync_id, datetime.now(UTC), message)
            if isinstance(e, ConfigError):
                raise ConfigError(redact(str(e))) from None
            if isinstance(e, Exception):
                raise ConnectorError(f"{where}: {redact(str(e)) or type(e).__name__}") from None
            raise
    return SyncResult(
        system=stream.system, stream=stream.stream, table=f"raw_{stream.system}.{stream.stream}", sync_id=sync_id,
        status="succeeded", files_seen=0, files_skipped=0, files_landed=0, files_failed=0, records_read=rows,
        records_landed=rows, records_quarantined=0, bytes=size, seconds=time.perf_counter() - t0,
        newest_file_modified_at=extracted_at, connector="airbyte_api", errors=[note] if note else [],
    )
