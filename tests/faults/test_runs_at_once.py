"""Two writers at once, an analyst's open session, a killed run: one waits or fails naming the other.

Real processes throughout: `recon run` as a user starts it, a second process holding the run lock or
the DuckDB file, a run killed with SIGKILL. Nothing here measures time: waiting is proven by order
(the waiter says it waits, only then is the holder released).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.lib.database import LOCK_WAIT_ENV, DatabaseBusyError, connect
from ingestion.demo.generator import generate

pytestmark = pytest.mark.slow

RECON = Path(sys.executable).parent / "recon"
HOLD = """
import sys, pathlib, time
ready, release = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
{body}
ready.write_text("held")
while not release.exists():
    time.sleep(0.05)
"""
HOLD_RUN_LOCK = HOLD.format(body="""
import datetime as dt
from dagster_project.resources.run_lock import run_lock
lock = run_lock(pathlib.Path(sys.argv[1]), "recon run", [dt.date(2026, 10, 1)])
lock.__enter__()""")
HOLD_SESSION = HOLD.format(body="""
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)""")


class Home:
    """A demo config of one small day in a temporary home, run as a user runs it."""

    def __init__(self, tmp: Path, days: int = 1) -> None:
        self.tmp = tmp
        self.env = {**os.environ, "RECON_HOME": str(tmp / "home"), "RECON_DEMO_DATA": str(tmp / "data"),
                    "DAGSTER_HOME": str(tmp / "home" / "dagster_home")}
        self.env.pop("RECON_CONFIG", None)
        self.config = load_config(DEMO_CONFIG_PATH, env=self.env)
        self.day = self.config.project.start_date
        self.last = self.day + dt.timedelta(days=days - 1)
        generate(tmp / "data", orders=150, days=days, seed=3, start_date=self.day,
                 rules=self.config.rules.model_dump(mode="json", by_alias=True))

    def recon(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(RECON), *args], env={**self.env, **env}, capture_output=True, text=True,
                              timeout=900)

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(RECON), *args], env={**self.env, **env}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def hold(self, script: str, target: Path) -> tuple[subprocess.Popen[str], Path]:
        """A second process holding something until released; returns it once it holds."""
        tag = uuid.uuid4().hex[:8]
        ready, release = self.tmp / f"ready-{tag}", self.tmp / f"release-{tag}"
        holder = subprocess.Popen([sys.executable, "-c", script, str(target), str(ready), str(release)],
                                  env=self.env)
        while not ready.exists():
            assert holder.poll() is None, "the holder exited before it held"
            time.sleep(0.05)
        return holder, release


def _read_until(proc: subprocess.Popen[str], needle: str) -> str:
    seen = []
    for line in proc.stdout:  # type: ignore[union-attr]
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} never printed; output:\n{''.join(seen)}")


def test_a_second_run_fails_naming_the_first_and_with_wait_runs_after_it(tmp_path: Path) -> None:
    home = Home(tmp_path)
    holder, release = home.hold(HOLD_RUN_LOCK, home.config.state_dir)
    try:
        refused = home.recon("run", "--date", str(home.day))
        assert refused.returncode == 1
        assert "another run of this config is in progress: `recon run` for 2026-10-01" in refused.stderr
        assert f"pid {holder.pid}" in refused.stderr and "--wait" in refused.stderr
        assert "Traceback" not in refused.stderr + refused.stdout

        waiter = home.popen("run", "--date", str(home.day), "--wait")
        _read_until(waiter, "waiting for the run in progress")
        assert waiter.poll() is None  # still waiting: the holder has not let go
        release.write_text("go")
        holder.wait(timeout=60)
        out = waiter.communicate(timeout=900)[0]
        assert waiter.returncode == 0, out
        assert f"{home.day}  ok" in out
    finally:
        release.write_text("go")
        holder.wait(timeout=60)


def test_an_open_session_is_waited_for_and_then_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Home(tmp_path)
    db = home.config.duckdb_path
    db.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(db)).close()
    holder, release = home.hold(HOLD_SESSION, db)
    try:
        # A run gives up after the wait and names the process that holds the file; no stack trace.
        refused = home.recon("run", "--date", str(home.day), **{LOCK_WAIT_ENV: "0"})
        assert refused.returncode == 1
        said = refused.stdout + refused.stderr
        assert "is in use by another process" in said and f"PID {holder.pid}" in said, said
        assert "Traceback" not in said
        # So does an owner's write from the CLI (reading beside a read-only session is fine).
        busy = home.recon("exceptions", "ack", "0000", "--note", "seen", **{LOCK_WAIT_ENV: "0"})
        assert busy.returncode == 1 and "is in use by another process" in busy.stderr, busy.stderr
        assert f"PID {holder.pid}" in busy.stderr and "Traceback" not in busy.stdout + busy.stderr
        assert home.recon("exceptions", "list", **{LOCK_WAIT_ENV: "0"}).returncode == 0

        # A connection waiting for the file gets it as soon as the session closes.
        waiting, got = threading.Event(), {}

        class Seen(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "is in use by another process; waiting" in record.getMessage():
                    waiting.set()

        logger = logging.getLogger("dagster_project.lib.database")
        handler = Seen()
        logger.addHandler(handler)
        monkeypatch.setenv(LOCK_WAIT_ENV, "600")
        try:
            thread = threading.Thread(target=lambda: got.setdefault("con", connect(db)))
            thread.start()
            assert waiting.wait(timeout=600)
            assert "con" not in got
            release.write_text("go")
            thread.join(timeout=600)
        finally:
            logger.removeHandler(handler)
        assert got["con"].execute("select 1").fetchall() == [(1,)]
        got["con"].close()
        holder2, release2 = home.hold(HOLD_SESSION, db)
        try:
            monkeypatch.setenv(LOCK_WAIT_ENV, "0")
            with pytest.raises(DatabaseBusyError, match=f"PID {holder2.pid}"):
                connect(db)
        finally:
            release2.write_text("go")
            holder2.wait(timeout=60)
    finally:
        release.write_text("go")
        holder.wait(timeout=60)


# The nightly's steps for the demo config, in order; one is drawn per run (seed printed, RECON_FAULT_SEED
# replays it) and the run is killed just inside it.
STEPS = ["raw__shop__orders", "raw__psp__charges", "erp__documents__contract_checks", "recon_dbt_models", "exceptions",
         "exception_notifications", "recon_dbt_after_exceptions", "reconciliation_report"]


def _started_step(instance_dir: Path, step: str, day: dt.date) -> str | None:
    """The id of the run of ``day`` in progress once ``step`` has started in it.

    Read from the instance's SQLite files read-only, not through a second DagsterInstance: opening the
    storage while the run's own process creates it races on its schema migrations.
    """
    def rows(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
        if not path.exists():
            return []
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError:  # not created yet, or being written: look again
            return []

    history = instance_dir / "history"
    for (run_id,) in rows(history / "runs.db", "select run_id from runs where status = 'STARTED' and partition = ?",
                          (day.isoformat(),)):
        if rows(history / "runs" / f"{run_id}.db",
                "select 1 from event_logs where dagster_event_type = 'STEP_START' and step_key = ?", (step,)):
            return run_id
    return None


def test_a_range_run_killed_inside_a_step_is_marked_failed_and_its_rerun_equals_an_unkilled_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_backfill import snapshot

    seed = int(os.environ.get("RECON_FAULT_SEED") or random.randrange(10**6))
    rng = random.Random(seed)
    step, nth, delay = rng.choice(STEPS), rng.randrange(2), rng.uniform(0, 0.5)
    home = Home(tmp_path, days=2)
    day = home.day + dt.timedelta(days=nth)
    print(f"kill `recon run --date {home.day} --to {home.last}` inside {step} of {day} after {delay:.2f} s "
          f"(RECON_FAULT_SEED={seed})")
    days = ["run", "--date", str(home.day), "--to", str(home.last)]
    reference = {**home.env, "RECON_HOME": str(tmp_path / "ref"), "DAGSTER_HOME": str(tmp_path / "ref" / "dh")}
    ran = subprocess.run([str(RECON), *days], env=reference, capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, ran.stdout + ran.stderr

    victim = home.popen(*days)
    instance_dir = Path(home.env["DAGSTER_HOME"])
    monkeypatch.setenv("DAGSTER_HOME", str(instance_dir))
    try:
        killed = None
        while killed is None and victim.poll() is None:
            killed = _started_step(instance_dir, step, day)
            time.sleep(0.1)
        time.sleep(delay)
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=60)
        assert victim.returncode in (-signal.SIGKILL, 0), victim.communicate()[0]
        with dg.DagsterInstance.get() as instance:  # killed inside its run, or only after the run ended
            was_killed = killed is not None and not instance.get_run_by_id(killed).is_finished

        rerun = home.recon(*days)  # the whole range again, as a user would
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        with dg.DagsterInstance.get() as instance:
            if was_killed:
                assert f"marked run {killed[:8]} ({day}) failed: its process {victim.pid} is gone" in rerun.stdout
                assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.FAILURE
            assert not instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        con = connect(home.config.duckdb_path, read_only=True)
        try:
            assert con.execute("select count(*) from recon_meta.sync_runs where status = 'running'").fetchall() \
                == [(0,)]
            raw = {t: con.execute(f"select count(*), count(distinct _airbyte_raw_id) from {t}").fetchall()[0]
                   for t in _raw_tables(con)}
        finally:
            con.close()
        # Nothing lost or doubled: the marts and the exceptions equal the unkilled run's, row for row.
        after, expected = snapshot(home.config.duckdb_path), snapshot(tmp_path / "ref" / "warehouse.duckdb")
        assert after.keys() == expected.keys()
        for name in expected:
            assert after[name] == expected[name], f"{name} differs from the unkilled run (seed {seed})"
        ref = connect(tmp_path / "ref" / "warehouse.duckdb", read_only=True)
        try:
            assert raw == {t: ref.execute(f"select count(*), count(distinct _airbyte_raw_id) from {t}").fetchall()[0]
                           for t in _raw_tables(ref)}
        finally:
            ref.close()
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)


def _raw_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [f"{s}.{t}" for s, t in con.execute(
        "select table_schema, table_name from information_schema.tables where table_schema like 'raw\\_%' escape '\\' "
        "order by 1, 2").fetchall()]


def test_the_lock_file_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    from dagster_project.resources.run_lock import run_lock

    home = Home.__new__(Home)
    home.tmp, home.env = tmp_path, dict(os.environ)
    holder, _release = home.hold(HOLD_RUN_LOCK, tmp_path / "state")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    with run_lock(tmp_path / "state", "recon run", [dt.date(2026, 10, 2)]):
        assert (tmp_path / "state" / "run.lock").read_text().startswith('{"command": "recon run"')


DAGSTER = Path(sys.executable).parent / "dagster"


def _dagster_materialize(home: Home, asset: str) -> subprocess.Popen[str]:
    """A run Dagster itself starts (as the daemon, the UI or `dagster asset materialize` do), not recon."""
    Path(home.env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(DAGSTER), "asset", "materialize", "-m", "dagster_project.definitions",
                             "--select", asset, "--partition", str(home.day)],
                            env=home.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_a_run_dagster_launched_waits_for_recon_run_and_recon_run_refuses_while_it_runs(tmp_path: Path) -> None:
    home = Home(tmp_path)
    # Dagster's run waits for the `recon run` holding the lock, and says whom it waits for.
    holder, release = home.hold(HOLD_RUN_LOCK, home.config.state_dir)
    try:
        run = _dagster_materialize(home, "raw/shop/orders")
        _read_until(run, "waiting for the run in progress: `recon run` for 2026-10-01")
        assert run.poll() is None  # still waiting: the holder has not let go
        release.write_text("go")
        holder.wait(timeout=60)
        out = run.communicate(timeout=600)[0]
        assert run.returncode == 0, out
    finally:
        release.write_text("go")

    # While Dagster's run is inside a step (held there by an analyst's session on the file), `recon run`
    # refuses at once, naming it; the run goes on once the session closes.
    session, close = home.hold(HOLD_SESSION, home.config.duckdb_path)
    try:
        lock = home.config.state_dir / "run.lock"
        before = lock.read_text()  # the first Dagster run's words stay in the file after it let go
        run = _dagster_materialize(home, "raw/psp/charges")
        while lock.read_text() in (before, ""):
            assert run.poll() is None, run.communicate()[0]
            time.sleep(0.1)
        refused = home.recon("run", "--date", str(home.day))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "another run of this config is in progress: `Dagster run " in refused.stderr
        assert f"for {home.day}" in refused.stderr
        close.write_text("go")
        session.wait(timeout=60)
        out = run.communicate(timeout=600)[0]
        assert run.returncode == 0, out
    finally:
        close.write_text("go")
