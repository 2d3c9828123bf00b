"""A full disk and a read-only state folder: a clear error naming the path, and nothing half-written.

The state folder (DuckDB file, Dagster instance, dbt artifacts) is a small tmpfs mounted by the test,
filled up or remounted read-only: real ENOSPC and EROFS from the kernel, for root too. Mounting needs
root and a kernel that lets the test mount; elsewhere the tests say they were skipped and why.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.lib.database import connect
from ingestion.demo.generator import generate
from ingestion.demo.ground_truth import expected_diffs

pytestmark = pytest.mark.slow

RECON = Path(sys.executable).parent / "recon"


def _mount(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs for the state folder, unmounted afterwards."""
    folder = tmp_path / f"state-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    mounted = _mount(["-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)]) if os.geteuid() == 0 else None
    if mounted is None or mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() if mounted else 'not root'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _env(tmp_path: Path, state: Path) -> dict[str, str]:
    env = {**os.environ, "RECON_HOME": str(state / "home"), "RECON_DEMO_DATA": str(tmp_path / "data"),
           "DAGSTER_HOME": str(state / "home" / "dagster_home")}
    env.pop("RECON_CONFIG", None)
    return env


def _day(tmp_path: Path, env: dict[str, str]) -> dt.date:
    config = load_config(DEMO_CONFIG_PATH, env=env)
    generate(tmp_path / "data", orders=150, days=1, seed=3, start_date=config.project.start_date,
             rules=config.rules.model_dump(mode="json", by_alias=True))
    return config.project.start_date


def _recon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RECON), *args], env=env, capture_output=True, text=True, timeout=900)


def _diffs(db: Path, day: dt.date) -> set[tuple[str, str, str]]:
    con = connect(db, read_only=True)
    try:
        return {tuple(r) for r in con.execute("select order_id, diff_type, system from marts.fct_order_diffs "
                                              "where as_of_date = ?", [day]).fetchall()}
    finally:
        con.close()


def test_a_full_disk_fails_the_night_clearly_and_the_rerun_after_it_is_exact(tmp_path: Path, state: Path) -> None:
    env = _env(tmp_path, state)
    day = _day(tmp_path, env)
    filler = state / "filler"
    with filler.open("wb") as f:  # leave a few hundred KiB: the night fails once it writes its data
        free = os.statvfs(state).f_bavail * os.statvfs(state).f_frsize
        f.write(b"\0" * (free - 384 * 1024))
    full = _recon(env, "run", "--date", str(day))
    assert full.returncode != 0
    # recon's last word is one plain line naming the cause (dbt's own logging may complain above it:
    # it writes its stderr to the terminal as it is, stack traces included).
    last = [line for line in (full.stdout + full.stderr).splitlines() if line.strip()][-1]
    assert last.startswith("Error:") and ("No space left on device" in last or "disk is full" in last), last

    filler.unlink()  # room again: the same night runs to the exact result
    again = _recon(env, "run", "--date", str(day))
    assert again.returncode == 0, again.stdout + again.stderr
    assert _diffs(state / "home" / "warehouse.duckdb", day) == expected_diffs(tmp_path / "data", day)


def test_a_read_only_state_folder_is_named_and_nothing_is_written(tmp_path: Path, state: Path) -> None:
    env = _env(tmp_path, state)
    day = _day(tmp_path, env)
    (state / "home").mkdir()
    assert _mount(["-o", "remount,ro", str(state)]).returncode == 0
    refused = _recon(env, "run", "--date", str(day))
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1
    assert "Read-only file system" in said and str(state / "home") in said, said[-3000:]
    assert "Traceback" not in said
    assert list((state / "home").iterdir()) == []
