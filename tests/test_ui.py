"""The Dagster UI as a data engineer meets it: `dagster dev` on loopback after one demo night.

One night of a small demo runs in this process into the instance `dagster dev` then serves, so the
UI shows real materializations and check results: the asset graph and the schedule, no first-visit
pop-up, partitions from the demo's start to its end only, the contract checks (blocking `contract`
passes, non-blocking `contract_rows` warns on a demo stream whose rows break its contract by design),
and the dbt models' per-model Execution Duration.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dagster_project.runs.runner import DAGSTER_YAML

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
        from test_report_browser import screenshots  # docs/screenshots.py, on the path there

        for proc in (self.daemon, self.proc):
            screenshots.stop(proc)
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


def page_text(dom: str) -> str:
    """The visible text of a dumped DOM, whitespace collapsed."""
    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def evaluation_tag(dom: str) -> tuple[str, str]:
    """The icon and the label of a check page's "Evaluation result" tag, e.g. ``("warning_outline", "Failed")``."""
    after = dom.split("Evaluation result", 1)[1]
    icon = re.search(r'aria-label="([^"]+)"', after)
    label = re.search(r'data-tooltip="([^"]+)"', after)
    assert icon and label, after[:500]
    return icon.group(1), label.group(1)


def one_demo_night(ui: DagsterDev, monkeypatch) -> None:
    """Generate a 7-day demo, as `recon demo` does end the partitions with its data, and run its first day."""
    from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
    from dagster_project.runs.runner import run_days
    from ingestion.demo.generator import generate

    monkeypatch.setenv("DAGSTER_HOME", str(ui.home))  # the run goes into the instance the UI serves
    config = load_config(DEMO_CONFIG_PATH)
    generate(Path(os.environ["RECON_DEMO_DATA"]), orders=60, days=7, seed=5, start_date=config.project.start_date,
             rules=config.rules.model_dump(mode="json", by_alias=True))
    (night,) = run_days(config, [config.project.start_date], echo=lambda *_: None)
    assert night.success


def test_dagster_dev_shows_the_asset_graph_groups_and_the_schedule(tmp_path: Path, recon_home: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("RECON_END_DATE", "2026-10-07")  # what `recon demo` sets: the last day of its data
    env = {k: os.environ[k] for k in ("RECON_HOME", "RECON_DEMO_DATA", "RECON_END_DATE")}
    ui = DagsterDev(tmp_path, env)
    one_demo_night(ui, monkeypatch)
    with ui:
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

        # No first-visit pop-up: the instance (dagster.yaml, `nux: enabled: false`) says so, and the page,
        # given time for the pop-up's one-second delay, has none.
        assert ui.graphql("{ shouldShowNux }") == {"shouldShowNux": False}

        # Partitions match the data: the demo's start to its end, not up to yesterday.
        keys = ui.graphql('{ assetNodeOrError(assetKey: {path: ["raw", "psp", "charges"]}) { ... on AssetNode { '
                          "partitionKeys } } }")["assetNodeOrError"]["partitionKeys"]
        assert keys == [(dt.date(2026, 10, 1) + dt.timedelta(days=i)).isoformat() for i in range(7)]

        # Checks: `contract` is blocking and passed; `contract_rows` is not, and warns where rows broke it.
        checks = {}
        for node in nodes["assetNodes"]:
            path = "/".join(node["assetKey"]["path"])
            if not path.startswith("raw/"):
                continue
            found = ui.graphql(
                "query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode { assetChecksOrError { "
                "... on AssetChecks { checks { name blocking executionForLatestMaterialization { status "
                "evaluation { severity } } } } } } } }", {"k": {"path": node["assetKey"]["path"]}})
            for check in found["assetNodeOrError"]["assetChecksOrError"]["checks"]:
                run = check["executionForLatestMaterialization"] or {}
                checks[path, check["name"]] = (check["blocking"], run.get("status"),
                                               (run.get("evaluation") or {}).get("severity"))
        streams = sorted({p for p, name in checks if name == "contract"})
        assert streams and all(checks[p, "contract"] == (True, "SUCCEEDED", "ERROR") for p in streams), checks
        warned = [p for p in streams if checks[p, "contract_rows"] == (False, "FAILED", "WARN")]
        assert warned, f"no demo stream warned: {checks}"  # the demo breaks some rows of its contracts by design

        # dbt: each model's materialization carries dagster-dbt's Execution Duration (seconds in dbt).
        latest = ui.graphql('{ assetOrError(assetKey: {path: ["marts", "fct_order_diffs"]}) { ... on Asset { '
                            "assetMaterializations(limit: 1) { partition metadataEntries { label "
                            "... on FloatMetadataEntry { floatValue } } } } } }")["assetOrError"]["assetMaterializations"]
        assert latest[0]["partition"] == "2026-10-01"
        assert any(e["label"] == "Execution Duration" and isinstance(e.get("floatValue"), float)
                   for e in latest[0]["metadataEntries"]), latest
        kinds = ui.graphql('{ assetNodeOrError(assetKey: {path: ["marts", "fct_order_diffs"]}) { ... on AssetNode { '
                           "kinds } } }")["assetNodeOrError"]["kinds"]
        assert sorted(kinds) == ["dbt", "duckdb"]

        if chromium.exists():  # the same, as a person sees it
            def page(url: str, profile: str) -> str:
                return run_chromium(["--virtual-time-budget=15000", "--window-size=1400,1000", "--dump-dom",
                                     f"{ui.url}{url}"], tmp_path / profile, timeout=120)

            stream = warned[0]
            rows = page(f"/assets/{stream}?view=checks&checkDetail=contract_rows", "p-rows")
            assert "This is a non-blocking asset check." in page_text(rows)
            assert evaluation_tag(rows) == ("warning_outline", "Failed")  # Dagster's yellow warning tag
            assert "row(s) quarantined, the run goes on" in page_text(rows)
            assert "Join the Dagster community" not in rows
            blocking = page(f"/assets/{stream}?view=checks&checkDetail=contract", "p-contract")
            assert "This is a blocking asset check." in page_text(blocking)
            assert evaluation_tag(blocking) == ("check_circle", "Passed")
            partitions = page_text(page("/assets/raw/psp/charges?view=partitions", "p-partitions"))
            assert "2026-10-01 2026-10-07 7 Partitions" in partitions
            assert "Materialized (1)" in partitions and "Missing (6)" in partitions
            assert "2026-10-08" not in partitions and "2026-11-" not in partitions
