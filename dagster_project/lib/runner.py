"""Run the nightly job through Dagster for one day or a range, recorded in the Dagster instance.

The CLI and the tests use this; the schedule launches the same job.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from dagster_project.lib.config import ReconConfig

DAGSTER_YAML = """\
# Written by recon. One DuckDB file has one writer, so runs are queued one at a time.
concurrency:
  runs:
    max_concurrent_runs: 1
telemetry:
  enabled: false
"""


def dagster_home(config: ReconConfig) -> Path:
    """The Dagster instance folder: $DAGSTER_HOME if set, else <state_dir>/dagster_home."""
    home = Path(os.environ.get("DAGSTER_HOME") or config.state_dir / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from first to last, inclusive."""
    if last < first:
        raise ValueError(f"--to {last} is before --date {first}")
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass
class DayResult:
    as_of_date: dt.date
    run_id: str
    success: bool
    seconds: float


def run_days(config: ReconConfig, days: list[dt.date], config_path: str | None = None,
             echo=print) -> list[DayResult]:
    """Execute the nightly job for each day in order, stopping at the first failure.

    Args:
        config: the validated config.
        days: the as-of days, run in this order.
        config_path: the config file to load definitions from (defaults to the config's own file).
        echo: where progress lines go.

    Returns:
        One result per day that was attempted.
    """
    import time

    for day in days:
        if day < config.project.start_date:
            raise ValueError(f"{day} is before the configured start date {config.project.start_date}")

    from dagster_project.definitions import build_definitions
    from dagster_project.defs.reconciliation.schedules import NIGHTLY_JOB

    dagster_home(config)
    instance = dg.DagsterInstance.get()
    definitions = build_definitions(str(config_path or config.source_file))
    job = definitions.resolve_job_def(NIGHTLY_JOB)
    results: list[DayResult] = []
    for day in days:
        started = time.perf_counter()
        result = job.execute_in_process(
            partition_key=day.isoformat(),
            instance=instance,
            tags={"recon/as_of_date": day.isoformat(), "recon/launched_by": "recon run"},
            raise_on_error=False,
        )
        seconds = time.perf_counter() - started
        results.append(DayResult(day, result.run_id, result.success, seconds))
        echo(f"  {day}  {'ok    ' if result.success else 'FAILED'}  {seconds:5.1f}s  run {result.run_id[:8]}")
        if not result.success:
            for event in result.all_events:
                if event.is_failure and event.event_specific_data is not None:
                    error = getattr(event.event_specific_data, "error", None)
                    if error is not None:
                        echo(f"    {event.step_key}: {error.message.strip()[:2000]}")
            break
    return results
