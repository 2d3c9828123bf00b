"""The deployment files (docs/deploy/: Dockerfile, docker-compose.yaml, helm-values.yaml, workspace.yaml)
name one code location, one module, one port and one instance; they cannot run here (no Docker, no
cluster), so this checks they agree with each other and with the project. Dagster reads the instance
settings in tests/test_dagster_postgres.py."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "docs" / "deploy"
MODULE = "dagster_project.definitions"


def _load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_compose_helm_and_image_name_the_same_code_location_module_and_instance() -> None:
    location = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"][0]["python_module"]["location_name"]
    compose, helm, workspace = _load("docker-compose.yaml"), _load("helm-values.yaml"), _load("workspace.yaml")
    services = compose["services"]
    assert set(services) == {"postgres", "user_code", "webserver", "daemon"}

    grpc = workspace["load_from"][0]["grpc_server"]
    assert (grpc["host"], grpc["port"], grpc["location_name"]) == ("user_code", 4000, location)
    code = services["user_code"]["command"]
    assert code[code.index("-m") + 1] == MODULE and code[code.index("--location-name") + 1] == location
    assert code[code.index("-p") + 1] == "4000"
    for name in ("webserver", "daemon"):  # both read the workspace file mounted where their command says
        command, mounts = services[name]["command"], services[name]["volumes"]
        workspace_path = command[command.index("-w") + 1]
        assert f"./workspace.yaml:{workspace_path}:ro" in mounts
    for name in ("user_code", "webserver", "daemon"):
        env = services[name]["environment"]
        assert env["DAGSTER_PG_URL"].startswith("postgresql+psycopg2://dagster:")
        assert "@postgres:5432/dagster" in env["DAGSTER_PG_URL"]
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "dagster"

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY docs/deploy/dagster.yaml \"$DAGSTER_HOME/dagster.yaml\"" in dockerfile
    assert f'"-m", "{MODULE}", "--location-name", "{location}"' in dockerfile
    assert "pip install --no-cache-dir -e ." in dockerfile  # the dbt project is read beside the package
    assert services["user_code"]["build"]["dockerfile"] == "docs/deploy/Dockerfile"

    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    assert deployment["name"] == location and deployment["port"] == 4000
    assert deployment["dagsterApiGrpcArgs"] == ["-m", MODULE]
    assert helm["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] == 1
    assert helm["runLauncher"]["config"]["customRunLauncher"]["class"] == "DefaultRunLauncher"

    instance = _load("dagster.yaml")
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert instance["run_coordinator"]["config"]["max_concurrent_runs"] == 1
    assert instance["run_launcher"]["class"] == "DefaultRunLauncher"


def test_recon_rewrites_its_own_instance_settings_when_the_config_changes_and_never_a_users(
        recon_home: Path, tmp_path: Path, monkeypatch) -> None:
    from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
    from dagster_project.runs.runner import dagster_home

    settings = recon_home / "dagster_home" / "dagster.yaml"
    dagster_home(load_config(DEMO_CONFIG_PATH))
    first = yaml.safe_load(settings.read_text())
    assert first["concurrency"]["runs"]["max_concurrent_runs"] == 1 and "storage" not in first
    assert first["event_log_storage"]["module"] == "dagster_project.runs.instance_storage"

    raw = yaml.safe_load(DEMO_CONFIG_PATH.read_text())
    raw["dagster"] = {"storage": "postgres", "postgres_url_env": "RECON_TEST_PG_URL"}
    path = tmp_path / "pg.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("RECON_TEST_PG_URL", "postgresql+psycopg2://u:secret@db:5432/dagster")
    dagster_home(load_config(path))
    written = yaml.safe_load(settings.read_text())
    assert written["storage"] == {"postgres": {"postgres_url": {"env": "RECON_TEST_PG_URL"}}}
    assert "secret" not in settings.read_text()

    settings.write_text("# ours, by hand\nstorage: {sqlite: {base_dir: /elsewhere}}\n")
    dagster_home(load_config(DEMO_CONFIG_PATH))
    assert settings.read_text() == "# ours, by hand\nstorage: {sqlite: {base_dir: /elsewhere}}\n"
