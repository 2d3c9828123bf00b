"""The Dagster UI as a data engineer meets it: `dagster dev` on loopback shows the asset graph and the schedule."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dagster_project.lib.runner import DAGSTER_YAML

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).parent / "dagster"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DagsterDev:
    """`dagster dev` (webserver + daemon) on a free loopback port with its own DAGSTER_HOME; always stopped.

    With ``daemon=False`` only the webserver starts (``dagster-webserver``, as a production deployment
    runs it), and ``start_daemon()`` starts ``dagster-daemon run`` later: the backfill daemon looks for
    new backfills every 30 s (fixed in Dagster), and a daemon started after the launch finds it at once.
    """

    def __init__(self, tmp: Path, env: dict[str, str], daemon: bool = True) -> None:
        from test_reports import DEFINITIONS_WITH_REPORTING

        self.port = free_port()
        self.home = tmp / "dagster_home"
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text(DAGSTER_YAML)
        self.defs = tmp / "ui_definitions.py"
        self.defs.write_text(DEFINITIONS_WITH_REPORTING + "\n\ndefs = definitions_with_reporting()\n")
        self.log = (tmp / "dagster_dev.log").open("w")
        self.env = {**os.environ, **env, "DAGSTER_HOME": str(self.home), "PYTHONPATH": str(ROOT),
                    "PATH": f"{DAGSTER.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.with_daemon = daemon
        self.proc: subprocess.Popen | None = None
        self.daemon: subprocess.Popen | None = None

    def _start(self, *command: str) -> subprocess.Popen:
        return subprocess.Popen([*command, "-f", str(self.defs)], cwd=str(ROOT), env=self.env, stdout=self.log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def start_daemon(self) -> None:
        self.daemon = self._start(str(DAGSTER.parent / "dagster-daemon"), "run")

    def __enter__(self) -> DagsterDev:
        if self.with_daemon:
            self.proc = self._start(str(DAGSTER), "dev", "-h", "127.0.0.1", "-p", str(self.port))
        else:
            self.proc = self._start(str(DAGSTER.parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.port))
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited: {Path(self.log.name).read_text()[-3000:]}")
            try:
                data = self.graphql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name "
                                    "location { name } } } } }")
                nodes = data["repositoriesOrError"].get("nodes") or []
                if nodes:
                    self.location = nodes[0]["location"]["name"]
                    self.repository = nodes[0]["name"]
                    return self
            except OSError:
                pass
            time.sleep(1)
        self.__exit__(None, None, None)
        raise TimeoutError(f"dagster dev did not answer: {Path(self.log.name).read_text()[-3000:]}")

    def __exit__(self, *exc) -> None:
        for proc in (self.daemon, self.proc):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        self.log.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(f"{self.url}/graphql", method="POST",
                                         data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise AssertionError(body["errors"])
        return body["data"]


def test_dagster_dev_shows_the_asset_graph_groups_and_the_schedule(tmp_path: Path, recon_home: Path) -> None:
    env = {k: os.environ[k] for k in ("RECON_HOME", "RECON_DEMO_DATA")}
    with DagsterDev(tmp_path, env) as ui:
        nodes = ui.graphql("{ assetNodes { assetKey { path } groupName description owners { "
                           "... on TeamAssetOwner { team } ... on UserAssetOwner { email } } hasAssetChecks } }")
        assets = {"/".join(n["assetKey"]["path"]): n for n in nodes["assetNodes"]}
        for key in ("raw/psp/charges", "marts/fct_order_diffs", "exceptions", "reconciliation_report",
                    "marts/fct_reconciliation_daily"):
            assert key in assets, sorted(assets)
        assert assets["raw/psp/charges"]["groupName"] == "ingestion"
        assert assets["exceptions"]["groupName"] == "exceptions"
        assert assets["reconciliation_report"]["groupName"] == "reporting"
        assert assets["marts/fct_order_diffs"]["hasAssetChecks"]  # dbt tests are asset checks
        # recon_meta/landed_files is a dependency stub declared by another domain (no definition of its own).
        undescribed = [k for k, n in assets.items() if not n["description"] and not k.startswith("recon_meta/")]
        assert not undescribed, f"assets without a description: {undescribed}"
        # Staging/intermediate dbt models get their owner from dbt_project.yml (see docs/reports.md).
        unowned = [k for k, n in assets.items() if not n["owners"]
                   and not k.startswith(("staging/", "intermediate/", "recon_meta/"))]
        assert not unowned, f"assets without an owner: {unowned}"
        selector = {"repositoryLocationName": ui.location, "repositoryName": ui.repository}
        schedules = ui.graphql(
            "query($s: RepositorySelector!) { schedulesOrError(repositorySelector: $s) { "
            "... on Schedules { results { name cronSchedule } } } }", {"s": selector})
        assert "nightly_reconciliation_schedule" in {s["name"] for s in schedules["schedulesOrError"]["results"]}
        sensors = ui.graphql(
            "query($s: RepositorySelector!) { sensorsOrError(repositorySelector: $s) { "
            "... on Sensors { results { name } } } }", {"s": selector})
        assert "run_failure_alert_sensor" in {s["name"] for s in sensors["sensorsOrError"]["results"]}

        chromium = Path("/usr/bin/chromium")
        if chromium.exists():  # the same, as a person sees it in the browser
            from test_report_browser import chromium as run_chromium

            dom = run_chromium(["--virtual-time-budget=15000", "--window-size=1400,1000", "--dump-dom",
                                f"{ui.url}/automation"], tmp_path / "profile", timeout=120)
            assert "nightly_reconciliation_schedule" in dom
            dom = run_chromium(["--virtual-time-budget=15000", "--window-size=1400,1000", "--dump-dom",
                                f"{ui.url}/assets/reconciliation_report"], tmp_path / "profile2", timeout=120)
            assert "reconciliation_report" in dom
