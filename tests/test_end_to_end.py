"""End to end: generated demo data, every day run through Dagster, checked against the ground truth.

These run real connectors, real dbt builds and real Dagster runs on a temporary DuckDB file.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import yaml

from dagster_project.config.model import DEMO_CONFIG_PATH, ReconConfig, load_config
from dagster_project.lib.database import connect
from dagster_project.runs.runner import days_between, run_days
from ingestion.demo import expected_contract_breaks
from ingestion.demo.generator import generate
from ingestion.demo.ground_truth import expected_diffs

pytestmark = pytest.mark.slow

# Tables that record each attempt by design: a run log grows with every run.
RUN_LOGS = {("recon_meta", "sync_runs")}


def snapshot(db: Path) -> dict[str, list[tuple]]:
    con = connect(db, read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' order by 1, 2").fetchall()
        out = {}
        for schema, table in tables:
            if (schema, table) in RUN_LOGS:
                continue
            out[f"{schema}.{table}"] = con.execute(f'select * from "{schema}"."{table}" order by all').fetchall()
        return out
    finally:
        con.close()


def diffs_on(db: Path, day: dt.date) -> set[tuple[str, str, str]]:
    con = connect(db, read_only=True)
    try:
        rows = con.execute(
            "select order_id, diff_type, system from marts.fct_order_diffs where as_of_date = ?", [day]
        ).fetchall()
        return {tuple(r) for r in rows}
    finally:
        con.close()


def describe(missing: set, extra: set) -> str:
    lines = [f"missing {len(missing)}: {sorted(missing)[:15]}", f"unexpected {len(extra)}: {sorted(extra)[:15]}"]
    return "\n".join(lines)


def _as_snapshot_streams(config: ReconConfig, tmp: Path) -> ReconConfig:
    """The same config with every stream declared `sync_mode: snapshot`, written as YAML and loaded."""
    raw = yaml.safe_load(DEMO_CONFIG_PATH.read_text())
    for system in raw["systems"].values():
        for stream in system["streams"].values():
            stream["sync_mode"] = "snapshot"
    path = tmp / "snapshots.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(path)


# Four days: the longest grace window of the demo config (72 h) first lets a diff show on day 4.
# The second case delivers every system as a full snapshot each night (the most common real export),
# with every stream declared a snapshot stream: the same ground truth must come out.
@pytest.mark.parametrize(("orders", "days", "seed", "check_reruns", "delivery"),
                         [(900, 4, 11, True, "daily"), (1600, 4, 5, False, "snapshot")])
def test_every_day_matches_the_ground_truth_and_reruns_change_nothing(
        demo_config, tmp_path, orders, days, seed, check_reruns, delivery):
    data = Path(os.environ["RECON_DEMO_DATA"])
    start = demo_config.project.start_date
    generate(data, orders=orders, days=days, seed=seed, start_date=start,
             rules=demo_config.rules.model_dump(mode="json", by_alias=True), delivery=delivery)
    if delivery == "snapshot":
        demo_config = _as_snapshot_streams(demo_config, tmp_path)
    all_days = days_between(start, start + dt.timedelta(days=days - 1))

    results = run_days(demo_config, all_days, echo=lambda *_: None)
    assert [r.success for r in results] == [True] * len(all_days)

    db = demo_config.duckdb_path
    for day in all_days:
        actual, expected = diffs_on(db, day), expected_diffs(data, day)
        assert actual == expected, f"{day}:\n" + describe(expected - actual, actual - expected)
    if not check_reruns:  # the second seed and size checks the ground truth only (keeps the suite short)
        return

    # running the last day again changes no table, and no exception is duplicated
    before = snapshot(db)
    assert run_days(demo_config, [all_days[-1]], echo=lambda *_: None)[0].success
    after = snapshot(db)
    assert before.keys() == after.keys()
    for name in before:
        assert before[name] == after[name], f"{name} changed on rerun"

    # backfilling an earlier day reproduces it and never regresses today's exceptions
    middle = all_days[len(all_days) // 2]
    assert run_days(demo_config, [middle], echo=lambda *_: None)[0].success
    assert diffs_on(db, middle) == expected_diffs(data, middle)
    backfilled = snapshot(db)
    for name in ("recon.exceptions", "recon.exception_events", "marts.fct_order_diffs"):
        assert backfilled[name] == after[name], f"{name} changed by a backfill"

    con = connect(db, read_only=True)
    try:
        total, distinct = con.execute(
            "select count(*), count(distinct (order_id, diff_type, system)) from recon.exceptions").fetchall()[0]
        assert total == distinct
        open_ids = {r[0] for r in con.execute(
            "select order_id || '|' || diff_type || '|' || system from recon.exceptions "
            "where status = 'open' and diff_type not in ('contract_violation', 'stale_source')").fetchall()}
        contract_subjects = {r[0] for r in con.execute(
            "select system from recon.exceptions where diff_type = 'contract_violation' and status = 'open'"
        ).fetchall()}
    finally:
        con.close()
    last = {"|".join(k) for k in expected_diffs(data, all_days[-1])}
    assert open_ids == last
    # the demo's injected contract breaks were caught and opened as contract_violation exceptions
    assert contract_subjects == {b["system"] for b in expected_contract_breaks(data)}
