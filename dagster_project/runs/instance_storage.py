"""Dagster's SQLite run and event-log storage, each database file kept open by one SQLAlchemy engine.

The default instance (``dagster.storage: sqlite``) stores runs in ``history/runs.db`` and each run's events in
``history/runs/<run_id>.db`` (plus an ``index.db`` for asset events). Dagster's SQLite classes build a new
SQLAlchemy engine for every connection they open, with ``NullPool``: every event stored (a night stores
~340) and every asset record read opens a new SQLite connection, compiles its SQL again, and closes it;
and closing the last connection to a WAL database checkpoints the WAL into the file and deletes it, so
each event paid a checkpoint. These subclasses keep one engine per database file instead, whose pool
keeps one connection open (``QueuePool``, ``pool_size=1``; a second thread gets a connection of its own,
closed after use). Locking, WAL and the files on disk are exactly Dagster's: another process (plain
Dagster, the webserver) reads and writes the same files as before, and SQLite checkpoints the WAL on its
own every 1,000 pages. Measured in docs/performance.md ("Dagster's SQLite storage").

A kept connection must never outlive its file: when a file is deleted or replaced (``recon demo
--fresh`` removes the state folder and starts again in the same process), the pool sees it at the next
checkout (the file's device and inode differ from the connection's) and opens the file anew. A forked
child drops the parent's connections without closing them (SQLite connections do not cross a fork).

recon's ``dagster.yaml`` names these classes (:func:`dagster_project.runs.runner.instance_settings`); the
layout of the files is the default one, so an instance written before reads the same.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.runs.sqlite import sqlite_run_storage
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import QueuePool

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()
# A daemon or webserver that lives for months touches many run shards; each kept engine holds one open
# connection (three file handles: the database, its WAL and shared memory), so their number is bounded.
_MAX_ENGINES = 32


def _file_identity(path: str | None) -> tuple[int, int] | None:
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st else None


def _engine(conn_string: str, **connect_args: Any) -> Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(conn_string, None)
        if engine is None:
            engine = sqlite_event_log.create_engine(
                conn_string, poolclass=QueuePool, pool_size=1, max_overflow=-1,
                connect_args={**connect_args, "check_same_thread": False})  # the pool hands it to one thread at a time
            path = engine.url.database

            @event.listens_for(engine, "connect")
            def _opened(_dbapi: Any, record: Any) -> None:
                record.info["file"] = _file_identity(path)

            @event.listens_for(engine, "checkout")
            def _same_file(_dbapi: Any, record: Any, _proxy: Any) -> None:
                if record.info.get("file") != _file_identity(path):
                    raise DisconnectionError(f"{path} was deleted or replaced")  # the pool opens it anew

        _ENGINES[conn_string] = engine  # most recently used last
        while len(_ENGINES) > _MAX_ENGINES:
            _ENGINES.pop(next(iter(_ENGINES))).dispose()
        return engine


def _forget_after_fork() -> None:
    global _ENGINES_LOCK
    _ENGINES_LOCK = threading.Lock()  # another thread of the parent may have held it at the fork
    for engine in _ENGINES.values():
        engine.dispose(close=False)  # the child opens its own; the parent's stay the parent's
    _ENGINES.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


class SqliteRunStorage(sqlite_run_storage.SqliteRunStorage):
    """Dagster's SQLite run storage (``history/runs.db``), its connections opened by one kept engine."""

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> SqliteRunStorage:  # noqa: ANN001 (Dagster's signature)
        return cls.from_local(inst_data=inst_data, **config_value)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _engine(self._conn_string).connect() as conn, conn.begin():
            yield conn


class SqliteEventLogStorage(sqlite_event_log.SqliteEventLogStorage):
    """Dagster's SQLite event log (``history/runs/*.db``), each shard's connections opened by one kept engine."""

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> SqliteEventLogStorage:  # noqa: ANN001
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = _engine(self.conn_string_for_shard(shard),
                             timeout=sqlite_event_log.SQLITE_BUSY_TIMEOUT_SECONDS)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn
