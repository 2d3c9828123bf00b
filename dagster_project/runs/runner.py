"""Run the nightly job through Dagster for one day or a range, recorded in the Dagster instance.

The CLI and the tests use this; the schedule launches the same job.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from dagster_project.config.model import ReconConfig, WarehouseConfig
from dagster_project.lib.errors import PlainError, without_traceback
from dagster_project.resources.run_lock import fail_abandoned_runs, run_lock, run_tags

# The CLI prints one line per day; the full event log is in the Dagster instance (and the UI).
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

DAGSTER_YAML = """\
# Written by recon. One DuckDB file has one writer, so runs are queued one at a time.
concurrency:
  runs:
    max_concurrent_runs: 1
telemetry:
  enabled: false
nux:
  enabled: false   # no newsletter pop-up on the UI's first visit
run_monitoring:
  enabled: true    # runs the daemon launched whose worker died are marked failed
"""


_POSTGRES_STORAGE = """\
storage:           # dagster-postgres: runs, events and schedules in one database (project config: dagster)
  postgres:
    postgres_url:
      env: {variable}
"""


class DagsterStorageError(PlainError):
    """The config asks for a Dagster storage this environment cannot give."""


# Dagster's own SQLite layout under the instance folder, through classes that keep one engine per file
# (dagster_project/runs/instance_storage.py: a night's ~340 events and asset reads cost a third less).
_SQLITE_STORAGE = """\
run_storage:       # the default SQLite files; each opened through one kept SQLAlchemy engine
  module: dagster_project.runs.instance_storage
  class: SqliteRunStorage
  config:
    base_dir: {home}/history/
event_log_storage:
  module: dagster_project.runs.instance_storage
  class: SqliteEventLogStorage
  config:
    base_dir: {home}/history/runs/
"""


def instance_settings(config: ReconConfig, home: Path) -> str:
    """The ``dagster.yaml`` recon writes for this config in the instance folder ``home`` (its instance
    storage from the ``dagster`` section)."""
    if config.dagster.storage == "postgres":
        return DAGSTER_YAML + _POSTGRES_STORAGE.format(variable=config.dagster.postgres_url_env)
    return DAGSTER_YAML + _SQLITE_STORAGE.format(home=Path(home).resolve().as_posix())


def _check_postgres_url(variable: str) -> None:
    url = os.environ.get(variable, "")
    if not url:
        raise DagsterStorageError(
            f"dagster.storage is postgres but ${variable} is not set: set it to the database's URL "
            "(postgresql+psycopg2://user:password@host:5432/db) for recon and every Dagster process")
    scheme = url.split("://", 1)[0]
    if scheme != "postgresql+psycopg2":
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; dagster-postgres's NOTIFY needs psycopg2.
        raise DagsterStorageError(
            f"${variable} must name the psycopg2 driver: postgresql+psycopg2://user:password@host:5432/db "
            f"(it starts with {scheme}://)")


def dagster_home(config: ReconConfig) -> Path:
    """The Dagster instance folder: $DAGSTER_HOME if set, else <state_dir>/dagster_home.

    Its ``dagster.yaml`` is recon's (:func:`instance_settings`), rewritten when the config changes it; a
    ``dagster.yaml`` someone else wrote (it lacks recon's first line) is left as it is.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or config.state_dir / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings, wanted = home / "dagster.yaml", instance_settings(config, home)
    if config.dagster.storage == "postgres":
        _check_postgres_url(config.dagster.postgres_url_env)
    current = settings.read_text() if settings.exists() else None
    if current is None or (current != wanted and current.startswith(DAGSTER_YAML.splitlines()[0])):
        settings.write_text(wanted)
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


def run_days(config: ReconConfig, days: list[dt.date], echo=print, *, wait: bool = False,
             command: str = "recon run") -> list[DayResult]:
    """Execute the nightly job for each day in order, stopping at the first failure.

    Args:
        config: the validated config.
        days: the as-of days, run in this order.
        echo: where progress lines go.
        wait: when another run of this config is in progress, wait for it instead of failing.
        command: what is running, for the message a concurrent run prints.

    Returns:
        One result per day that was attempted.

    Raises:
        RunInProgressError: another run of this config holds the run lock (and ``wait`` is false).
    """
    end = config.project.end_date
    for day in days:
        if day < config.project.start_date:
            raise ValueError(f"{day} is before the configured start date {config.project.start_date}")
        if end is not None and day > end:
            raise ValueError(f"{day} is after the configured end date {end} (project.end_date)")

    from dagster_project.contracts.suites import ensure_suites

    with run_lock(config.state_dir, command, days, wait=wait, echo=echo):
        for write in ensure_suites(config):  # a new config's first run has its contracts, and says so
            echo(f"  {write.message()}")
        dagster_home(config)
        instance = dg.DagsterInstance.get()
        fail_abandoned_runs(instance, config.duckdb_path, echo)  # a killed run's STARTED runs and syncs
        return _run_each_day(config, days, instance, echo)


def _run_each_day(config: ReconConfig, days: list[dt.date], instance: dg.DagsterInstance, echo) -> list[DayResult]:
    import time

    from dagster_project.definitions import build_definitions_for
    from dagster_project.defs.reconciliation.schedules import NIGHTLY_JOB

    definitions = build_definitions_for(config)
    job = definitions.resolve_job_def(NIGHTLY_JOB)
    results: list[DayResult] = []
    log_dir = config.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for day in days:
        started = time.perf_counter()
        log_path = log_dir / f"run-{day.isoformat()}.log"
        # dagster-dbt echoes dbt's log to stdout; keep the terminal to one line per day.
        with log_path.open("a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            result = job.execute_in_process(
                partition_key=day.isoformat(),
                instance=instance,
                tags={"recon/as_of_date": day.isoformat(), "recon/launched_by": "recon run", **run_tags()},
                run_config=QUIET,
                raise_on_error=False,
            )
        seconds = time.perf_counter() - started
        results.append(DayResult(day, result.run_id, result.success, seconds))
        note = notification_note(result) if result.success else ""
        echo(f"  {day}  {'ok    ' if result.success else 'FAILED'}  {seconds:5.1f}s  run {result.run_id[:8]}{note}")
        if not result.success:
            echo(f"    dbt and step output, and every failure in full: {log_path}")
            checks = failed_check_lines(result)
            errors = [(event.step_key, error) for event in result.all_events
                      if event.is_failure and event.event_specific_data is not None
                      and (error := getattr(event.event_specific_data, "error", None)) is not None]
            for line in checks:
                echo(f"    {line}")
            for step, error in errors:
                echo(f"    {step}: {without_traceback(error.message)[:2000]}")
            with log_path.open("a", encoding="utf-8") as log:  # the whole story where the line points
                log.write(f"\n==== run {result.run_id} for {day} FAILED\n")
                log.writelines(f"{line}\n" for line in checks)
                for step, error in errors:
                    log.write(f"---- {step}\n{error.to_string()}\n")
            break
    return results


def notification_note(result: dg.ExecuteInProcessResult) -> str:
    """What a successful run's notification step could not send, for the run's line; empty when all went out.

    Args:
        result: the run's result.

    Returns:
        ``"  2 notification(s) failed: <first error>; ..."``, or ``""``.
    """
    for materialization in result.asset_materializations_for_node("exception_notifications"):
        failed = materialization.metadata.get("outbox_failed")
        count = int(getattr(failed, "value", failed) or 0)
        if count:
            errors = materialization.metadata.get("outbox_errors")
            first = str(getattr(errors, "value", errors) or "").split("\n")[0]
            return f"  {count} notification(s) failed: {first}; see the summary below and recon.notification_outbox"
    return ""


def failed_check_lines(result: dg.ExecuteInProcessResult) -> list[str]:
    """One line per failed asset check of a run, blocking ones first: the asset, the check and its
    description (for a contract: the stream, the column, the cause and what to run).

    Args:
        result: the finished run.

    Returns:
        The lines, e.g. ``raw/shop/orders contract (blocking): shop.orders column id: missing ...``.
    """
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    failed.sort(key=lambda e: (e.severity != dg.AssetCheckSeverity.ERROR, e.asset_key.to_user_string()))
    lines = []
    for evaluation in failed:
        kind = "blocking" if evaluation.severity == dg.AssetCheckSeverity.ERROR else "warning"
        description = evaluation.description or "failed (no description)"
        lines.append(f"{evaluation.asset_key.to_user_string()} {evaluation.check_name} ({kind}): {description}")
    return lines


def dry_run_day(config: ReconConfig, day: dt.date, echo=print):
    """What the nightly run of ``day`` would do to the exceptions under this config, without doing it.

    The day is built (landing, contracts, dbt) on a scratch copy of the database with an ephemeral
    Dagster instance; the exception plan is computed against the real exceptions. Nothing in the
    project's database or Dagster instance changes.

    Returns:
        The plan (``dagster_project.runs.dry_run.Plan``).
    """
    import shutil
    import tempfile

    from dagster_project.definitions import build_definitions_for
    from dagster_project.defs.reconciliation.schedules import NIGHTLY_JOB
    from dagster_project.exceptions.contract_diffs import system_diffs
    from dagster_project.exceptions.diffs import diffs_for, stale_systems
    from dagster_project.lib.database import connect
    from dagster_project.runs.dry_run import plan_exceptions

    if day < config.project.start_date:
        raise ValueError(f"{day} is before the configured start date {config.project.start_date}")
    source = config.duckdb_path
    if not source.exists():
        raise ValueError(f"no database at {source}: run the day for real first (recon run --date {day})")
    with tempfile.TemporaryDirectory(prefix="recon-dry-run-") as tmp:
        con = connect(source)
        try:
            con.execute("checkpoint")  # the copy must not miss what is still in the write-ahead log
        finally:
            con.close()
        copy = Path(tmp) / source.name
        shutil.copy2(source, copy)
        project = config.project.model_copy(update={"duckdb_path": str(copy), "state_dir": str(Path(tmp) / "state")})
        # The scratch copy holds what the engine's models read (raw, bookkeeping) and what was copied back
        # (staging, marts), so the day builds on it with DuckDB whatever the engine: a dry run never
        # writes the team's warehouse (both engines give the same tables: tests/engines).
        scratch = config.model_copy(update={"project": project, "warehouse": WarehouseConfig()})
        job = build_definitions_for(scratch).resolve_job_def(NIGHTLY_JOB)
        keep = [key for key in job.asset_layer.executable_asset_keys
                if key.to_user_string() not in ("exceptions", "exception_notifications")]
        echo(f"  building {day} on a scratch copy of the database ...")
        with open(Path(tmp) / "dry-run.log", "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            result = job.execute_in_process(partition_key=day.isoformat(), instance=dg.DagsterInstance.ephemeral(),
                                            asset_selection=keep, run_config=QUIET, raise_on_error=False)
        if not result.success:
            raise RuntimeError(f"the dry run's build of {day} failed; run it for real to see the error in the UI")
        con = connect(copy, read_only=True)
        try:
            diffs = diffs_for(con, day) + system_diffs(con, day, config)
            return plan_exceptions(con, day, diffs, stale_systems(con, day), config)
        finally:
            con.close()
