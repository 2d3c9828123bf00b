"""Alert the notification channels when a run fails.

The alert goes through the durable notification outbox (``recon.notification_outbox``): one
``immediate`` message per ready channel, keyed by the run id so a sensor retry never sends twice,
then a flush sends it at once. When the database is busy (one writer), the alert is appended to
``<state_dir>/alerts/run_failures.jsonl`` and logged instead, so it is never lost.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from dagster_project.config.model import ReconConfig
from dagster_project.lib.database import connect
from dagster_project.notifications import OUTBOX_TABLE, ensure_outbox, flush
from dagster_project.notifications.channels import channel_env_ready

RUN_FAILURE_SENSOR = "run_failure_alert_sensor"


def _now() -> dt.datetime:
    """The clock (naive UTC); tests replace it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def failure_item(run_id: str, job_name: str, partition: str | None, message: str, owner: str) -> dict[str, Any]:
    """The outbox payload of a failed run, shaped like an exception item so every channel renders it."""
    return {
        "event_id": f"run-failure-{run_id}", "event_type": "run_failed",
        "reason": f"run {run_id} of {job_name} failed" + (f" for {partition}" if partition else "") + f": {message}",
        "actor": "dagster", "exception_id": f"run:{run_id[:8]}", "order_id": f"(run {run_id[:8]})",
        "customer_id": None, "diff_type": "run_failure", "system": job_name, "severity": "critical",
        "status": "failed", "amount_at_risk": "0", "currency": None, "owner": owner, "due_at": None,
        "expected_value": "success", "actual_value": "failure", "diffs": [],
        "command": f"recon run --date {partition}" if partition else "recon ui", "link": None,  # the run is in its UI
        "reproduce_command": f"recon run --date {partition}" if partition else None,
    }


def enqueue_run_failure(con: duckdb.DuckDBPyConnection, config: ReconConfig, item: dict[str, Any],
                        now: dt.datetime) -> int:
    """Queue one immediate message per ready channel (idempotent per run and channel).

    Returns:
        The number of messages added.
    """
    settings = config.notifications
    channels = {n: c for n, c in settings.channels.items() if channel_env_ready(c)}
    if not settings.enabled or not channels:
        return 0
    ensure_outbox(con)
    rows = []
    for name in sorted(channels):
        message_id = hashlib.sha256(f"{name}|{item['event_id']}".encode()).hexdigest()[:32]
        rows.append([message_id, name, item["owner"], "immediate", "pending", "critical",
                     json.dumps([item["exception_id"]]), json.dumps([item["event_id"]]), json.dumps(item), None, 0,
                     now, None, now, None])
    before = con.execute(f"select count(*) from {OUTBOX_TABLE}").fetchall()[0][0]
    con.executemany(f"insert into {OUTBOX_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "on conflict do nothing", rows)
    return con.execute(f"select count(*) from {OUTBOX_TABLE}").fetchall()[0][0] - before


def record_fallback(config: ReconConfig, item: dict[str, Any]) -> Path:
    """Append the alert to ``<state_dir>/alerts/run_failures.jsonl`` (when the database is busy)."""
    folder = config.state_dir / "alerts"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run_failures.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(item, sort_keys=True) + "\n")
    return path


def alert_run_failure(config: ReconConfig, run_id: str, job_name: str, partition: str | None, message: str,
                      log: Any = None, now: dt.datetime | None = None) -> str:
    """Queue and send the alert of a failed run; returns what happened, for the sensor's log."""
    now = now or _now()
    owner = config.owners.fallback if getattr(config, "owners", None) else "data-engineering"
    item = failure_item(run_id, job_name, partition, message[:1500], owner or "data-engineering")
    try:
        con = connect(config.duckdb_path)
    except duckdb.Error as exc:
        path = record_fallback(config, item)
        return f"database unavailable ({type(exc).__name__}); alert recorded in {path}"
    try:
        queued = enqueue_run_failure(con, config, item, now)
        stats = flush(con, config, now, log=log) if queued else None
    finally:
        con.close()
    if not queued:
        path = record_fallback(config, item)
        return f"no notification channel is ready (or already queued); alert recorded in {path}"
    return f"queued {queued} message(s); sent {stats.sent}, failed {stats.failed}" if stats else f"queued {queued}"


def build_defs(config: ReconConfig) -> dg.Definitions:
    @dg.run_failure_sensor(
        name=RUN_FAILURE_SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=False,
        description="Alerts the notification channels (Slack, email, webhook) when a run fails.",
    )
    def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        partition = run.tags.get("dagster/partition")
        message = context.failure_event.message or "run failed"
        outcome = alert_run_failure(config, run.run_id, run.job_name, partition, message, log=context.log)
        context.log.warning(f"run {run.run_id} of {run.job_name} failed: {outcome}")

    return dg.Definitions(sensors=[run_failure_alert_sensor])
