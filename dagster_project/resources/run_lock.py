"""One run at a time per config, and what a killed run leaves behind.

One DuckDB file has one writer. Every run holds this config's run lock (an advisory ``flock`` on
``<state_dir>/run.lock``, released by the kernel when the process ends, however it ends) and records
who holds it: ``recon run`` / ``recon demo`` take it before their first day, and a run the Dagster
daemon or the UI launched takes it when its resources start (:func:`held_for_run`, from the
``duckdb`` and ``dbt`` resources). So a ``recon run`` while the schedule's run or a backfill is
going fails at once with a message naming it (or, with ``--wait``, waits for it), and a scheduled run
while ``recon run`` works waits for it. The lock is re-entrant within a process: the runs ``recon run``
executes in its own process pass through it.

Holding the lock also makes it safe to clean up after a process that was killed: its Dagster runs
still say STARTED and its syncs ``running``; :func:`fail_abandoned_runs` marks them failed, naming
the process that is gone. Nothing here imports Dagster at module level.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster_project.lib.errors import PlainError

LOCK_FILE = "run.lock"
PID_TAG, HOST_TAG = "recon/pid", "recon/host"
_HELD: dict[str, int] = {}  # lock files this process holds, and how many holders inside it


class RunInProgressError(PlainError):
    """Another run of the same config holds the run lock."""


def _holder_text(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "a process that has not said what it runs"
    days = holder.get("days") or []
    span = days[0] if len(days) == 1 else f"{days[0]} .. {days[-1]}" if days else "?"
    return (f"`{holder.get('command', '?')}` for {span} (pid {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')}, since {holder.get('started_at', '?')})")


@contextmanager
def run_lock(state_dir: Path, command: str, days: list[dt.date], *, wait: bool = False,
             echo: Callable[[str], Any] = print, poll_seconds: float = 1.0) -> Iterator[None]:
    """Hold this config's run lock for the body; fail at once (or wait) when another run holds it.

    Args:
        state_dir: the config's state folder (the lock file lives there).
        command: what is running, for the message another run prints.
        days: the as-of days this run reconciles.
        wait: wait for the other run instead of failing.
        echo: where the one "waiting for" line goes.
        poll_seconds: how often a waiting run tries again.

    Raises:
        RunInProgressError: another run holds the lock and ``wait`` is false.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_FILE
    key = str(path.resolve())
    if _HELD.get(key):  # this process holds it already (a run `recon run` executes): it stays the holder
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                other = _holder_text(path)
                if not wait:
                    raise RunInProgressError(
                        f"another run of this config is in progress: {other}. Wait for it to finish "
                        "(or pass --wait); one DuckDB file has one writer.") from None
                if not said:
                    echo(f"  waiting for the run in progress: {other}")
                    said = True
                time.sleep(poll_seconds)
        holder = {"command": command, "days": [d.isoformat() for d in days], "pid": os.getpid(),
                  "host": socket.gethostname(),
                  "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        _HELD[key] = 1
        try:
            yield
        finally:
            _HELD.pop(key, None)
    finally:
        os.close(fd)  # releases the lock; a killed process's lock is released by the kernel


@contextmanager
def held_for_run(state_dir: str | None, init_context: Any) -> Iterator[None]:
    """Hold the run lock while a Dagster run's resources are up; nothing outside a run (a sensor's tick).

    A run of another process holding the lock is waited for (the daemon's queue starts one run at a
    time; a ``recon run`` may be working): the run's log says whom it waits for.
    """
    run = getattr(init_context, "dagster_run", None)
    if state_dir is None or run is None:
        yield
        return
    day = run.tags.get("dagster/partition")
    log = getattr(init_context, "log", None)
    with run_lock(Path(state_dir), f"Dagster run {run.run_id[:8]}", [dt.date.fromisoformat(day)] if day else [],
                  wait=True, echo=log.info if log is not None else print):
        yield


def run_tags() -> dict[str, str]:
    """Tags that let a later run tell this process's runs from a live one's."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_abandoned_runs(instance: Any, duckdb_path: Path, echo: Callable[[str], Any] = print) -> list[str]:
    """Mark failed the runs and syncs a killed ``recon`` process left STARTED / ``running``.

    Call it while holding the run lock: then no other ``recon`` run of this config is live, and a
    STARTED run tagged with a pid on this host whose process is gone was killed (or crashed).
    Runs launched by the Dagster daemon carry no pid tag; the instance's run monitoring covers them.

    Args:
        instance: the Dagster instance.
        duckdb_path: the config's database (its ``recon_meta.sync_runs``).
        echo: where one line per run marked goes.

    Returns:
        The ids of the runs marked failed.
    """
    import dagster as dg

    host = socket.gethostname()
    marked: list[str] = []
    in_progress = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=in_progress)):
        pid, run_host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if not pid or run_host != host or _alive(int(pid)):
            continue
        day = run.tags.get("recon/as_of_date", "?")
        message = (f"The process that ran this run (pid {pid} on {host}) ended before the run finished: "
                   f"killed or crashed. Rerun {day}; reruns are idempotent.")
        instance.report_run_failed(run, message=message)
        echo(f"  marked run {run.run_id[:8]} ({day}) failed: its process {pid} is gone")
        marked.append(run.run_id)
    _interrupt_syncs(duckdb_path, echo)
    return marked


def _interrupt_syncs(duckdb_path: Path, echo: Callable[[str], Any]) -> None:
    if not Path(duckdb_path).exists():
        return
    from dagster_project.lib.database import connect, table_exists

    con = connect(duckdb_path)
    try:
        if not table_exists(con, "recon_meta", "sync_runs"):
            return
        rows = con.execute(
            "update recon_meta.sync_runs set status = 'interrupted', finished_at = now(), error = "
            "'the process ended before the sync finished (killed or crashed); the next sync goes on "
            "from the last committed state' "
            "where status = 'running' returning system, stream, sync_id").fetchall()
    finally:
        con.close()
    for system, stream, sync_id in rows:
        echo(f"  marked sync {sync_id} of {system}.{stream} interrupted: its process is gone")
