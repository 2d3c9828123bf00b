"""Run one stream's sync: source -> DuckDB destination, data and state in one transaction."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from ingestion.destination_duckdb import DuckDBDestination, SyncContext, WriteStats
from ingestion.protocol import AirbyteMessage, Type
from ingestion.sources.file_drop import (
    FileDropStream,
    SourceFileDrop,
    configured_catalog,
    drop_staged,
    list_files,
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


def _newest_landed(state: dict | None) -> datetime | None:
    history = (state or {}).get("history") or {}
    stamps = [v["modified_at"] for v in history.values() if v.get("status") == "landed"]
    return datetime.fromisoformat(max(stamps)) if stamps else None


def sync_stream(con: duckdb.DuckDBPyConnection, stream: FileDropStream) -> SyncResult:
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
            system=stream.system, stream=stream.stream, sync_id=sync_id, extracted_at=extracted_at
        )
        try:
            state = destination.read_state(stream.system, stream.stream)
            files_seen = len(list_files(stream))
            catalog = configured_catalog([stream])
            ctx.generation_id = catalog.streams[0].generation_id
            # Stage every new file before the transaction: a read error inside a DuckDB transaction
            # would abort all of it, outside it only fails that one file.
            for message in SourceFileDrop().read(stream.to_config(), catalog, {stream.stream: state}, con):
                messages.append(message)
            batches = [m.batch for m in messages if m.type == Type.BATCH and m.batch is not None]
            records_read = sum(b.staged.records_read for b in batches if b.staged is not None)
            con.begin()
            try:
                stats: WriteStats = destination.write(ctx, messages)
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
