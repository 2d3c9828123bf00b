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


# The heaviest tests (seconds on a fresh clone, two workers; `make test` prints the slowest) go first, so
# that `pytest -n 2 --dist load` hands them out one per free worker and the light ones fill in behind:
# the suite then ends when the work does, not when one long test that started last does.
HEAVY_FIRST = {
    "tests/test_end_to_end.py": 290,
    "tests/test_readme_onboarding.py": 150,
    "tests/test_backfill.py": 135,
    "tests/faults/test_runs_at_once.py": 200,
    "tests/test_deliveries.py": 130,
    "tests/test_onboarding.py": 110,
    "tests/test_reports.py": 75,
    "tests/faults/test_bad_input.py": 70,
    "tests/test_dbt_models.py": 110,
    "tests/faults/test_secrets.py": 60,
    "tests/faults/test_disk.py": 75,
    "tests/test_ui.py": 45,
    "tests/test_bench_nightly.py": 35,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: -HEAVY_FIRST.get(item.nodeid.split("::")[0], 0))  # stable: file order kept
