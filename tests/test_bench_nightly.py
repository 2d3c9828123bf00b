"""Smoke test of the side-by-side benchmark's two halves: bench/gen_exports.py writes 2,000 orders over 8
days, the real file_drop connector lands them, a real dbt build reconciles the last day, and
bench/handwritten_nightly.py, reading the same files, finds exactly the same diffs (amounts included).
Then one more day is delivered without the ERP's file: the ERP is stale, and both sides hold the diffs
that involve invoices. No timing is asserted (bench/bench_nightly.py measures; docs/performance.md)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from dagster_project.dbt.dbt_codegen import lay_out_project
from dagster_project.dbt.dbt_in_process import invoke
from dagster_project.dbt.dbt_project import AS_OF_DATE_ENV
from ingestion.sync import sync_system

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_dbt import drop_files  # noqa: E402
from gen_exports import generate, next_day  # noqa: E402
from handwritten_nightly import load_rules, reconcile  # noqa: E402

START = dt.date(2026, 10, 1)
DAYS = 8


def test_generator_and_hand_written_script_agree_with_the_platform(tmp_path: Path) -> None:
    exports, drop = tmp_path / "exports", tmp_path / "drop"
    generate(exports, 2_000, DAYS, seed=7, start=START, echo=lambda _: None)
    next_day(exports, echo=lambda _: None)
    last, following = START + dt.timedelta(days=DAYS - 1), START + dt.timedelta(days=DAYS)

    env = {"RECON_HOME": str(tmp_path / "home"), "RECON_DEMO_DATA": str(drop), "RECON_START_DATE": str(START)}
    config = load_config(DEMO_CONFIG_PATH, env=env)
    config.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    project = tmp_path / "dbt_project"
    lay_out_project(project, REPO / "dbt_project", config.dbt_vars())

    def land_and_build(day: dt.date) -> set[tuple]:
        con = duckdb.connect(str(config.duckdb_path))
        try:
            for name, system in sorted(config.systems.items()):
                sync_system(con, name, system)
        finally:
            con.close()
        outcome = invoke(["run", "--no-send-anonymous-usage-stats", "--project-dir", str(project),
                          "--profiles-dir", str(project), "--target-path", str(tmp_path / "target"),
                          "--log-path", str(tmp_path / "logs"), "--vars", json.dumps(config.dbt_vars())],
                          env={"RECON_DUCKDB_PATH": str(config.duckdb_path), AS_OF_DATE_ENV: str(day)})
        assert outcome.returncode == 0, outcome.stdout[-5000:]
        con = duckdb.connect(str(config.duckdb_path), read_only=True)
        try:
            return set(con.execute("select order_id, diff_type, system, amount_at_risk from marts.fct_order_diffs "
                                   "where as_of_date = ?", [day]).fetchall())
        finally:
            con.close()

    def script(day: dt.date) -> set[tuple]:
        con = duckdb.connect()
        try:
            reconcile(con, drop, day, load_rules())
            return set(con.execute("select * from diffs").fetchall())
        finally:
            con.close()

    drop_files(exports, drop, last)
    platform = land_and_build(last)
    assert platform == script(last)
    # every order-level diff type of the catalogue occurs (systems as the rules name them)
    assert {d[1] for d in platform} == {
        "missing_payment", "missing_invoice", "missing_fulfillment", "unpaid_fulfillment", "amount_mismatch",
        "currency_mismatch", "duplicate_record", "orphan_record", "status_conflict", "customer_mismatch",
        "missing_enrichment"}
    assert {"psp", "erp", "wms", "crm"} <= {d[2] for d in platform}

    drop_files(exports, drop, following)
    (drop / "erp" / "documents" / f"{following}.csv").unlink()
    platform = land_and_build(following)
    assert platform == script(following)
    assert not [d for d in platform if d[2] == "erp"]  # every diff involving the stale ERP is held
    assert {"psp", "wms"} <= {d[2] for d in platform}  # the others are not
