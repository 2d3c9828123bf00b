"""A real Airbyte deployment (Cloud or self-managed) through ``airbyte-api``: its spec and client.

``ingestion.sync.sync_airbyte_connection`` runs it for a stream, with this module's client.

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
from typing import Any

from ingestion.protocol import ConnectorError, connector_spec

SPEC = connector_spec(
    "Airbyte API",
    "https://reference.airbyte.com/reference/createjob",
    ["server_url", "connection_id", "auth"],
    {
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
