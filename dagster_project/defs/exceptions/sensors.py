"""Escalation and notification delivery: an asset in the nightly job and two sensors for the hours between.

- ``exception_notifications`` (asset, after ``exceptions``): hands over expired temporary owners,
  escalates breached exceptions, builds digests and sends what is due from the outbox.
- ``exception_escalation_sensor``: the same escalation between nightly runs, with the wall clock.
- ``notification_outbox_sensor``: retries delayed messages and sends digests between runs.

The sensors are off by default: one DuckDB file has one writer, so turn them on (Dagster UI) where
the database is not busy all day, or point them at a warehouse. A tick that finds the database
locked skips and tries again next time; nothing is lost (the outbox is durable).
"""


import datetime as dt

import dagster as dg
import duckdb

from dagster_project.config.model import ReconConfig
from dagster_project.exceptions.store import escalate
from dagster_project.notifications import flush, outbox_summary
from dagster_project.resources.duckdb_resource import DuckDBResource
from dagster_project.resources.partitions import daily_partitions

ESCALATION_INTERVAL_SECONDS = 300
OUTBOX_INTERVAL_SECONDS = 60


def _now() -> dt.datetime:
    """The wall clock (naive UTC, to the microsecond like the exceptions step's: a message it queued a
    moment ago is due now, never "in the future" by a truncated fraction of a second); tests replace it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def build_defs(config: ReconConfig) -> dg.Definitions:
    @dg.asset(
        key=["exception_notifications"],
        group_name="exceptions",
        deps=[dg.AssetKey("exceptions")],
        partitions_def=daily_partitions(config),
        kinds={"duckdb", "python"},
        owners=["team:revenue-ops"],
        metadata={"table": "recon.notification_outbox"},
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
    )
    def exception_notifications(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        """Escalate breached exceptions and send due notifications (critical at once, the rest as digests)."""
        # Two clocks, each for its question. SLAs are judged as of the end of the partition's day, so a
        # run for an old day (a backfill, the demo) does not escalate everything at once. Delivery runs
        # on the wall clock, the one the exceptions step queued its messages on: what tonight queued
        # (critical at once) is due tonight, whatever day the partition is.
        wall = _now()
        end_of_day = dt.datetime.combine(dt.date.fromisoformat(context.partition_key) + dt.timedelta(days=1), dt.time())
        with duckdb.get_connection() as con:
            escalated = escalate(con, config, min(wall, end_of_day))
            sent = flush(con, config, wall, log=context.log)
            summary = outbox_summary(con)
        for error in sent.errors:
            context.log.warning(error)
        return dg.MaterializeResult(metadata={
            **{f"escalation_{k}": v for k, v in escalated.as_metadata().items()},
            **{f"outbox_{k}": v for k, v in sent.as_metadata().items()},
            **{f"outbox_total_{k}": v for k, v in summary.items()},
            "outbox_errors": dg.MetadataValue.text("\n".join(sent.errors[:50]) or "none"),
        })

    @dg.sensor(
        name="exception_escalation_sensor",
        minimum_interval_seconds=ESCALATION_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Escalates exceptions past their due time along the configured chain; records every step.",
    )
    def exception_escalation_sensor(context: dg.SensorEvaluationContext, duckdb: DuckDBResource) -> dg.SkipReason:
        now = _now()
        try:
            with duckdb.get_connection() as con:
                stats = escalate(con, config, now)
                sent = flush(con, config, now, log=context.log) if stats.notifications else None
        except duckdb_errors() as exc:
            return dg.SkipReason(f"database busy, will retry: {type(exc).__name__}")
        extra = f"; sent {sent.sent}, failed {sent.failed}" if sent else ""
        return dg.SkipReason(f"{now:%Y-%m-%d %H:%M} UTC: {stats.steps} escalation step(s) on {stats.escalated} "
                             f"exception(s), {stats.handed_over} hand-over(s){extra}")

    @dg.sensor(
        name="notification_outbox_sensor",
        minimum_interval_seconds=OUTBOX_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Sends due notifications from the outbox: retries with backoff, digests per owner.",
    )
    def notification_outbox_sensor(context: dg.SensorEvaluationContext, duckdb: DuckDBResource) -> dg.SkipReason:
        now = _now()
        try:
            with duckdb.get_connection() as con:
                stats = flush(con, config, now, log=context.log)
        except duckdb_errors() as exc:
            return dg.SkipReason(f"database busy, will retry: {type(exc).__name__}")
        return dg.SkipReason(f"{now:%Y-%m-%d %H:%M} UTC: {stats.digests} digest(s) built, {stats.sent} sent, "
                             f"{stats.failed} failed, {stats.pending} waiting")

    return dg.Definitions(assets=[exception_notifications],
                          sensors=[exception_escalation_sensor, notification_outbox_sensor])


def duckdb_errors() -> tuple[type[Exception], ...]:
    """Errors that mean the database file is locked by another process."""
    return (duckdb.IOException,)
