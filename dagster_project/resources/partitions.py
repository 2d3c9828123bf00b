"""The as-of day partitions shared by every partitioned asset."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from dagster_project.config.model import ReconConfig


def daily_partitions(config: ReconConfig) -> dg.DailyPartitionsDefinition:
    """One partition per as-of day (UTC), from the configured start date to its end date, else yesterday."""
    end = config.project.end_date
    return dg.DailyPartitionsDefinition(
        start_date=config.project.start_date.isoformat(),
        end_date=(end + dt.timedelta(days=1)).isoformat() if end else None,  # Dagster's end is exclusive
        timezone="UTC")
