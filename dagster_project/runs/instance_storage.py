"""Dagster's SQLite run and event-log storage, each database opened through one kept SQLAlchemy engine.

The default instance (``dagster.storage: sqlite``) stores runs in ``history/runs.db`` and each run's events in
``history/runs/<run_id>.db`` (plus an ``index.db`` for asset events). Dagster's SQLite classes build a new
SQLAlchemy engine for every connection they open; an engine carries SQLAlchemy's compiled-statement cache,
so every event stored and every asset record read (a night stores ~340 events and reads the latest record
of each upstream asset for every materialization) compiles its SQL again. These subclasses keep one engine
per database file instead, still with ``NullPool``: each connection is a new SQLite connection, opened and
closed as before, so locking, WAL and the files on disk are exactly Dagster's. Measured in
docs/performance.md ("Dagster's SQLite storage").

recon's ``dagster.yaml`` names these classes (:func:`dagster_project.runs.runner.instance_settings`); the
layout of the files is the default one, so an instance written before reads the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.runs.sqlite import sqlite_run_storage
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()
# A daemon or webserver that lives for months touches many run shards; engines hold no connection
# (NullPool), only their statement cache, so a bound on their number is enough.
_MAX_ENGINES = 64


def _engine(conn_string: str, **connect_args: Any) -> Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(conn_string, None)
        if engine is None:
            engine = sqlite_event_log.create_engine(conn_string, poolclass=NullPool, connect_args=connect_args)
        _ENGINES[conn_string] = engine  # most recently used last
        while len(_ENGINES) > _MAX_ENGINES:
            _ENGINES.pop(next(iter(_ENGINES))).dispose()
        return engine


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
