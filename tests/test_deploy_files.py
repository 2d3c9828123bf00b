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
