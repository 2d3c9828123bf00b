"""A partition backfill launched through Dagster's API equals running the days one by one.

The backfill goes through a real Dagster webserver and daemon (queued runs one at a time) and the
webserver's GraphQL `launchPartitionBackfill`, exactly like *Materialize → date range → Launch backfill*
in the UI.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.lib.database import connect

pytestmark = pytest.mark.slow

# What a run stamps with the wall clock or the run's own ids; everything else must be equal.
COMPARED = {
    "recon.exceptions": "select exception_id, order_id, diff_type, system, status, severity, owner, amount_at_risk, "
                        "currency, first_seen_date, last_seen_date, last_as_of_date, opened_as_of_date, due_at, "
                        "resolved_as_of_date from recon.exceptions",
    "recon.exception_events": "select exception_id, as_of_date, event_type, actor, from_status, to_status, reason "
                              "from recon.exception_events",
}


def snapshot(db: Path) -> dict[str, list[tuple]]:
    con = connect(db, read_only=True)
    try:
        tables = [f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema = 'marts' order by 1, 2").fetchall()]
        out = {}
        for table in tables:
            out[table] = con.execute(f"select * from {table} order by all").fetchall()
        for name, sql in COMPARED.items():
            out[name] = con.execute(f"select * from ({sql}) order by all").fetchall()
        return out
    finally:
        con.close()


def test_backfill_of_a_date_range_equals_the_days_one_by_one(tmp_path: Path, monkeypatch) -> None:
    from test_ui import DagsterDev

    from dagster_project.runs.runner import run_days
    from ingestion.demo.generator import generate

    data = tmp_path / "demo-data"
    monkeypatch.setenv("RECON_DEMO_DATA", str(data))
    monkeypatch.delenv("RECON_CONFIG", raising=False)
    monkeypatch.setenv("RECON_HOME", str(tmp_path / "one_by_one"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "one_by_one" / "dagster_home"))
    config = load_config(DEMO_CONFIG_PATH)
    start = config.project.start_date
    days = [start, start + dt.timedelta(days=1)]
    generate(data, orders=60, days=2, seed=5, start_date=start,
             rules=config.rules.model_dump(mode="json", by_alias=True))

    # the same range as one backfill through Dagster's API
    home = tmp_path / "backfill"
    env = {"RECON_HOME": str(home), "RECON_DEMO_DATA": str(data)}
    with DagsterDev(tmp_path / "ui", env, daemon=False) as ui:
        selector = {"repositoryLocationName": ui.location, "repositoryName": ui.repository}
        launched = ui.graphql(
            "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename "
            "... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }",
            {"p": {"selector": {"repositorySelector": selector,
                                "partitionSetName": "nightly_reconciliation_partition_set"},
                   "partitionNames": [d.isoformat() for d in days], "fromFailure": False}})
        result = launched["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        backfill_id = result["backfillId"]
        ui.start_daemon()  # its first backfill iteration picks the launched backfill up at once
        # Meanwhile, the same days one by one in this process, into another home (overlapping saves time).
        assert all(r.success for r in run_days(config, days, echo=lambda *_: None))
        expected = snapshot(config.duckdb_path)
        deadline = time.monotonic() + 240
        runs: list[dict] = []
        while time.monotonic() < deadline:
            runs = ui.graphql(
                "query($id: String!) { runsOrError(filter: {tags: [{key: \"dagster/backfill\", value: $id}]}) { "
                "... on Runs { results { runId status tags { key value } } } } }", {"id": backfill_id}
            )["runsOrError"]["results"]
            if len(runs) == len(days) and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
                break
            time.sleep(2)
        assert [r["status"] for r in runs] == ["SUCCESS"] * len(days), runs
        partitions = sorted(t["value"] for r in runs for t in r["tags"] if t["key"] == "dagster/partition")
        assert partitions == [d.isoformat() for d in days]
    actual = snapshot(home / "warehouse.duckdb")
    assert actual.keys() == expected.keys()
    for table in expected:
        assert actual[table] == expected[table], table
    assert expected["marts.fct_reconciliation_daily"], "the metrics marts were built"
    assert (home / "reports" / days[-1].isoformat() / "summary.json").exists()

