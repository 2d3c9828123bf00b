"""Shared fixtures: an isolated project home (DuckDB file, Dagster instance) per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_project.lib.config import DEMO_CONFIG_PATH, ReconConfig, load_config


@pytest.fixture
def recon_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """RECON_HOME, RECON_DEMO_DATA and DAGSTER_HOME under a temporary folder."""
    home = tmp_path / "home"
    monkeypatch.setenv("RECON_HOME", str(home))
    monkeypatch.setenv("RECON_DEMO_DATA", str(tmp_path / "demo-data"))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    monkeypatch.delenv("RECON_CONFIG", raising=False)
    return home


@pytest.fixture
def demo_config(recon_home: Path) -> ReconConfig:
    """The demo config, pointed at the temporary home."""
    return load_config(DEMO_CONFIG_PATH)


# The heaviest test files (seconds on a fresh clone with two workers; `make test` prints the slowest).
# `pytest -n 2 --dist worksteal` splits the collected tests into two contiguous halves, one per worker,
# and a worker that runs dry steals from the end of the other's half. So the heavy tests are dealt
# alternately to the front of each half: both workers start on them, and the light ones fill in and are
# stolen at the end, instead of one long test starting last.
HEAVY = {
    "tests/test_end_to_end.py": 290,
    "tests/faults/test_runs_at_once.py": 200,
    "tests/test_readme_onboarding.py": 150,
    "tests/test_backfill.py": 135,
    "tests/test_deliveries.py": 130,
    "tests/test_onboarding.py": 110,
    "tests/test_dbt_models.py": 110,
    "tests/test_reports.py": 75,
    "tests/faults/test_disk.py": 75,
    "tests/faults/test_bad_input.py": 70,
    "tests/faults/test_secrets.py": 60,
    "tests/test_ui.py": 45,
    "tests/test_bench_nightly.py": 35,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    weight = {item.nodeid: HEAVY.get(item.nodeid.split("::")[0], 0) for item in items}
    heavy = sorted((i for i in items if weight[i.nodeid]), key=lambda i: -weight[i.nodeid])
    light = [i for i in items if not weight[i.nodeid]]
    items[:] = heavy[0::2] + light[0::2] + heavy[1::2] + light[1::2]
