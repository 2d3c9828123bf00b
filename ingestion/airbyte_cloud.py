"""A real Airbyte deployment (Cloud or self-managed) through ``airbyte-api``: trigger, wait, report.

The Airbyte connection is configured in Airbyte itself, with a destination that writes into this
project's DuckDB file (Airbyte's DuckDB destination, schema ``raw_<system>``), so the dbt models read
what Airbyte wrote exactly as they read what the built-in connectors land. This module only runs it:
it triggers a sync job of the connection, polls the job until it ends or ``timeout_seconds`` pass
(then cancels it), and records the outcome in ``recon_meta.sync_runs``. A successful job also adds a
``recon_meta.landed_files`` row per stream (``sync://airbyte-job-<id>``), the freshness fact the
models read; a failed, cancelled or timed-out job adds none, so the system goes stale (ON_HOLD) and
the error names the system, the connection and the job.

Options (``systems.<name>.options``)::

    server_url: https://api.airbyte.com/v1        # or http://localhost:8000/api/public/v1
    connection_id: 9c6b...                        # the Airbyte connection to run
    auth: {type: bearer, token: {env: AIRBYTE_TOKEN}}
          # or {type: client_credentials, client_id: ..., client_secret: {env: AIRBYTE_CLIENT_SECRET}}
    timeout_seconds: 3600
    poll_interval_seconds: 10
    reuse_minutes: 30     # one job serves every stream of the system: a stream synced after another
                          # reuses a job that succeeded this recently instead of triggering a new one
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from ingestion.connectors import ConnectorStream, redactor
from ingestion.destination_duckdb import META_SCHEMA, DuckDBDestination, SyncContext, WriteStats
from ingestion.protocol import ConfigError, ConnectorError, ConnectorSpecification

SPEC = ConnectorSpecification(
    documentation_url="https://reference.airbyte.com/reference/createjob",
    connection_specification={
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Airbyte API",
        "type": "object",
        "required": ["server_url", "connection_id", "auth"],
        "additionalProperties": False,
        "properties": {
            "server_url": {"type": "string", "pattern": "^https?://"},
            "connection_id": {"type": "string", "minLength": 1},
            "auth": {
                "type": "object",
                "required": ["type"],
                "additionalProperties": False,
                "properties": {
                    "type": {"type": "string", "enum": ["bearer", "client_credentials"]},
                    "token": {"type": "string", "airbyte_secret": True, "description": "API token"},
                    "client_id": {"type": "string"},
                    "client_secret": {"type": "string", "airbyte_secret": True, "description": "client secret"},
                    "token_url": {"type": "string", "default": "/applications/token"},
                },
            },
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 3600},
            "poll_interval_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 10},
            "request_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30},
            "reuse_minutes": {"type": "number", "minimum": 0, "default": 30},
            "streams": {"type": "object"},
        },
    },
)

_DONE = {"succeeded", "failed", "cancelled", "incomplete"}


class AirbyteJobError(ConnectorError):
    """An Airbyte job failed, was cancelled or timed out."""


class AirbyteClient:
    """A thin wrapper over ``airbyte_api.AirbyteAPI``: run a connection's sync and wait for it."""

    def __init__(self, config: dict[str, Any], sleep: Any = time.sleep) -> None:
        import airbyte_api
        from airbyte_api import models

        auth = config.get("auth") or {}
        if auth.get("type") == "client_credentials":
            security = models.Security(
                client_credentials=models.SchemeClientCredentials(
                    client_id=auth["client_id"],
                    client_secret=auth["client_secret"],
                    token_url=auth.get("token_url", "/applications/token"),
                )
            )
        else:
            security = models.Security(bearer_auth=auth.get("token"))
        self.config = config
        self.api = airbyte_api.AirbyteAPI(
            security=security,
            server_url=config["server_url"].rstrip("/"),
            timeout_ms=int(float(config.get("request_timeout_seconds", 30)) * 1000),
        )
        self.sleep = sleep

    def trigger(self, connection_id: str) -> Any:
        from airbyte_api import models

        response = self.api.jobs.create_job(
            request=models.JobCreateRequest(connection_id=connection_id, job_type=models.JobTypeEnum.SYNC)
        )
        return response.job_response

    def job(self, job_id: int) -> Any:
        from airbyte_api import api

        return self.api.jobs.get_job(request=api.GetJobRequest(job_id=job_id)).job_response

    def cancel(self, job_id: int) -> None:
        from airbyte_api import api

        self.api.jobs.cancel_job(request=api.CancelJobRequest(job_id=job_id))

    def run(self, connection_id: str, timeout_seconds: float, poll_seconds: float) -> Any:
        """Trigger a sync and wait for it; return the finished job.

        Raises:
            AirbyteJobError: the job failed, was cancelled, or did not finish in time (then it is cancelled).
        """
        job = self.trigger(connection_id)
        deadline = time.monotonic() + timeout_seconds
        while str(_status(job)) not in _DONE:
            if time.monotonic() >= deadline:
                try:
                    self.cancel(job.job_id)
                finally:
                    raise AirbyteJobError(
                        f"Airbyte job {job.job_id} of connection {connection_id} did not finish within "
                        f"{timeout_seconds:g} s (last status {_status(job)}); it was cancelled"
                    )
            self.sleep(poll_seconds)
            job = self.job(job.job_id)
        if _status(job) != "succeeded":
            raise AirbyteJobError(
                f"Airbyte job {job.job_id} of connection {connection_id} ended {_status(job)}"
                " (see the job's logs in Airbyte)"
            )
        return job


def _status(job: Any) -> str:
    s = getattr(job, "status", None)
    return str(getattr(s, "value", s))


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
    from ingestion.sync import SyncResult, utc_session

    t0 = time.perf_counter()
    extracted_at = datetime.now(UTC)
    destination = DuckDBDestination(con)
    where = f"system {stream.system!r}, stream {stream.stream!r} (airbyte_api)"
    with utc_session(con):
        destination.setup()
        sync_id = destination.start_run(stream.system, stream.stream, extracted_at)
        ctx = SyncContext(system=stream.system, stream=stream.stream, sync_id=sync_id, extracted_at=extracted_at)
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
            con.begin()
            try:
                destination.record_landed(ctx, url, extracted_at, size, rows, 0)
                destination.finish_run(
                    sync_id, status="succeeded", finished_at=datetime.now(UTC), files_seen=0, files_skipped=0,
                    stats=stats, records_read=rows, error=note,
                )
                con.commit()
            except BaseException:
                con.rollback()
                raise
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
