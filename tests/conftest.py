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
