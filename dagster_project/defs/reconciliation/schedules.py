"""The nightly reconciliation job and its schedule."""


import datetime as dt

import dagster as dg

from dagster_project.config.model import ReconConfig
from dagster_project.resources.partitions import daily_partitions

NIGHTLY_JOB = "nightly_reconciliation"


def build_nightly_job(config: ReconConfig):
    """Land every stream, build the dbt models and sync exceptions for one as-of day."""
    return dg.define_asset_job(
        NIGHTLY_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=daily_partitions(config),
        description="The nightly reconciliation for one as-of day: land, build, diff, open exceptions.",
    )


def nightly_partition_key(scheduled_at: dt.datetime, timezone: str) -> str:
    """The as-of day a run scheduled at ``scheduled_at`` reconciles: the day before, in the schedule's zone."""
    from zoneinfo import ZoneInfo

    local = scheduled_at.astimezone(ZoneInfo(timezone))
    return (local.date() - dt.timedelta(days=1)).isoformat()


def build_defs(config: ReconConfig) -> dg.Definitions:
    job = build_nightly_job(config)
    timezone = config.project.schedule.timezone
    start, end = config.project.start_date, config.project.end_date

    @dg.schedule(
        name="nightly_reconciliation_schedule",
        cron_schedule=config.project.schedule.cron,
        execution_timezone=timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Runs the nightly reconciliation for the previous day.",
    )
    def nightly(context: dg.ScheduleEvaluationContext):
        key = nightly_partition_key(context.scheduled_execution_time, timezone)
        if dt.date.fromisoformat(key) < start:
            return dg.SkipReason(f"{key} is before the configured start date {start}")
        if end is not None and dt.date.fromisoformat(key) > end:
            return dg.SkipReason(f"{key} is after the configured end date {end} (project.end_date)")
        return dg.RunRequest(run_key=key, partition_key=key, tags={"recon/as_of_date": key})

    return dg.Definitions(jobs=[job], schedules=[nightly])
