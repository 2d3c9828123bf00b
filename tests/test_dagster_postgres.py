"""Dagster as a deployment runs it: runs, events and schedules in PostgreSQL (dagster-postgres), on a real
server started by the test; one demo night through it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from pg_server import postgres_server

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.runs.runner import DagsterStorageError, run_days
from ingestion.demo.generator import generate

pytestmark = pytest.mark.slow
URL_ENV = "RECON_TEST_DAGSTER_PG"
DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with postgres_server(tmp_path_factory.mktemp("pg")) as running:
        yield running


def _database(server, name: str) -> str:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(server.url(), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return server.url(name).replace("postgresql://", "postgresql+psycopg2://")


def test_a_night_on_postgres_storage_is_recorded_there_and_no_secret_is_written(
        server, recon_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    psycopg = pytest.importorskip("psycopg")
    raw = yaml.safe_load(DEMO_CONFIG_PATH.read_text())
    raw["dagster"] = {"storage": "postgres", "postgres_url_env": URL_ENV}
    path = tmp_path / "recon.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    config = load_config(path)
    day = config.project.start_date
    generate(tmp_path / "demo-data", orders=150, days=1, seed=3, start_date=day,
             rules=config.rules.model_dump(mode="json", by_alias=True))

    # no URL: refused before anything runs, naming the variable
    monkeypatch.delenv(URL_ENV, raising=False)
    with pytest.raises(DagsterStorageError, match=rf"dagster.storage is postgres but \${URL_ENV} is not set"):
        run_days(config, [day], echo=lambda *_: None)

    url = _database(server, "dagster")
    monkeypatch.setenv(URL_ENV, url.replace("postgresql+psycopg2://", "postgresql://"))  # the driver unnamed
    with pytest.raises(DagsterStorageError, match=r"must name the psycopg2 driver: postgresql\+psycopg2://"):
        run_days(config, [day], echo=lambda *_: None)
    monkeypatch.setenv(URL_ENV, url)
    (result,) = run_days(config, [day], echo=lambda *_: None)
    assert result.success

    home = recon_home / "dagster_home"
    settings = (home / "dagster.yaml").read_text()
    assert f"env: {URL_ENV}" in settings and server.password not in settings
    assert not (home / "history").exists()  # nothing went to the SQLite storage
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == str(day)
        assert instance.get_latest_materialization_event(dg.AssetKey("exceptions")) is not None
    with psycopg.connect(server.url("dagster")) as c:
        assert c.execute("select count(*) from runs where status = 'SUCCESS'").fetchone() == (1,)
        events = c.execute("select count(*) from event_logs where run_id = %s", (run.run_id,)).fetchone()[0]
        assert events > 100  # the night's steps, materializations and checks


def test_the_deployments_instance_settings_are_what_dagster_builds(server, monkeypatch: pytest.MonkeyPatch) -> None:
    # docs/deploy/dagster.yaml (the image's, the compose file's) read by Dagster itself, on a real server
    monkeypatch.setenv("DAGSTER_PG_URL", _database(server, "deployment"))
    with dg.DagsterInstance.from_config(str(DEPLOY)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 1
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
