"""The as-of day partitions shared by every partitioned asset."""

from __future__ import annotations

import dagster as dg

from dagster_project.lib.config import ReconConfig


def daily_partitions(config: ReconConfig) -> dg.DailyPartitionsDefinition:
    """One partition per as-of day (UTC), from the configured start date up to yesterday."""
    return dg.DailyPartitionsDefinition(start_date=config.project.start_date.isoformat(), timezone="UTC")
