"""Contract checks: each kind of break fails the right expectation, bad rows are quarantined, clean data
passes, a missing suite or table fails, and the compiled query counts what GX counts."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from dagster_project.lib.config import DEMO_CONFIG_PATH, ReconConfig, load_config
from dagster_project.lib.contracts.cli import contracts
from dagster_project.lib.contracts.runner import ContractResult, validate_stream
from dagster_project.lib.contracts.suites import EXPECTATIONS_DIR, contracts_for, generate_suites, is_stale
from dagster_project.lib.duckdb_resource import DuckDBResource, connect

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

NOW = dt.datetime(2026, 10, 10, 12, 0, tzinfo=dt.UTC)
AS_OF = dt.date(2026, 10, 9)
EXTRACTED = NOW - dt.timedelta(hours=1)
FILE_MODIFIED = NOW - dt.timedelta(hours=14)  # 22:00 on the as-of day: delivered by its end

CHARGE_TYPES = {"id": "VARCHAR", "object": "VARCHAR", "amount": "BIGINT", "currency": "VARCHAR",
                "status": "VARCHAR", "customer": "VARCHAR", "metadata": "JSON", "created": "BIGINT",
                "updated": "BIGINT"}
DOCUMENT_TYPES = {c: "VARCHAR" for c in
                  ["DocNo", "DocType", "SalesOrder", "Customer", "Curr", "NetAmount", "Status", "DocDate", "ChangedOn"]}


def charges(n: int = 20) -> list[dict[str, Any]]:
    base = int((NOW - dt.timedelta(days=1)).timestamp())
    return [{"id": f"ch_{i}", "object": "charge", "amount": 1000 + i, "currency": "eur", "status": "succeeded",
             "customer": f"c{i}", "metadata": json.dumps({"order_id": f"o{i}"}), "created": base + i,
             "updated": base + i} for i in range(n)]


def documents(n: int = 10) -> list[dict[str, Any]]:
    rows = [{"DocNo": f"INV-{i}", "DocType": "INV", "SalesOrder": f"o{i}", "Customer": f"c{i}", "Curr": "EUR",
             "NetAmount": f"{100 + i}.50", "Status": "posted", "DocDate": "09.10.2026",
             "ChangedOn": "2026-10-09 10:00:00"} for i in range(n)]
    rows[0].update(DocType="CRN", NetAmount="-20.00")  # a credit note is negative in this source: fine
    return rows


def land(con: duckdb.DuckDBPyConnection, system: str, stream: str, rows: list[dict[str, Any]],
         types: dict[str, str], *, extracted_at: dt.datetime = EXTRACTED,
         file_modified: dt.datetime = FILE_MODIFIED, replace: bool = True) -> None:
    """Write rows as the connector lands them: the source's columns plus the Airbyte columns."""
    con.execute(f"create schema if not exists raw_{system}")
    cols = ", ".join(f'"{c}" {t}' for c, t in types.items())
    verb = "create or replace table" if replace else "create table if not exists"
    con.execute(f"{verb} raw_{system}.{stream} ({cols}, _airbyte_raw_id varchar, _airbyte_extracted_at timestamptz, "
                "_airbyte_meta json, _airbyte_generation_id bigint, _ab_source_file_url varchar, "
                "_ab_source_file_last_modified timestamptz)")
    start = con.execute(f"select count(*) from raw_{system}.{stream}").fetchall()[0][0]
    marks = ", ".join("?" for _ in range(len(types) + 6))
    if not rows:
        return
    con.executemany(
        f"insert into raw_{system}.{stream} values ({marks})",
        [[row.get(c) for c in types] + [f"{stream}-{start + i}", extracted_at, '{"sync_id": 1, "changes": []}', 0,
                                        f"file:///{stream}.x", file_modified] for i, row in enumerate(rows)],
    )


@pytest.fixture
def config(recon_home: Path) -> ReconConfig:
    return load_config(DEMO_CONFIG_PATH)


@pytest.fixture
def gx_dir(tmp_path: Path, config: ReconConfig) -> Path:
    folder = tmp_path / "expectations"
    generate_suites(config, folder)
    return folder


@pytest.fixture
def con(config: ReconConfig):
    c = connect(config.duckdb_path)
    yield c
    c.close()


def run(con: duckdb.DuckDBPyConnection, config: ReconConfig, gx_dir: Path, system: str, stream: str,
        **kw: Any) -> ContractResult:
    return validate_stream(con, config, system, stream, as_of_date=AS_OF, now=NOW, expectations_dir=gx_dir, **kw)


def failed(result: ContractResult) -> dict[str, Any]:
    return {o.rule_id: o for o in result.failures}


def quarantined(con: duckdb.DuckDBPyConnection, system: str, stream: str) -> dict[str, set[str]]:
    rows = con.execute("select rule_id, _airbyte_raw_id from recon_meta.contract_quarantine "
                       "where system = ? and stream = ?", [system, stream]).fetchall()
    out: dict[str, set[str]] = {}
    for rule, raw_id in rows:
        out.setdefault(rule, set()).add(raw_id)
    return out


# ---- clean data ---------------------------------------------------------------------------------


def test_clean_streams_pass(con, config, gx_dir):
    land(con, "psp", "charges", charges(), CHARGE_TYPES)
    land(con, "erp", "documents", documents(), DOCUMENT_TYPES)
    for system, stream in [("psp", "charges"), ("erp", "documents")]:
        result = run(con, config, gx_dir, system, stream)
        assert result.passed, result.messages()
        assert not result.blocking
        assert all(o.error is None for o in result.outcomes)
        assert len(result.outcomes) > 20
        assert quarantined(con, system, stream) == {}
    snapshot = con.execute("select columns from recon_meta.contract_schema_snapshots where stream = 'charges'").fetchall()
    assert json.loads(snapshot[0][0])["amount"] == "BIGINT"


def test_rerun_changes_nothing(con, config, gx_dir):
    rows = charges()
    rows[3]["status"] = "Booked"
    land(con, "psp", "charges", rows, CHARGE_TYPES)
    first = run(con, config, gx_dir, "psp", "charges")
    tables = ["contract_quarantine", "contract_violations", "contract_schema_snapshots"]
    counts = [con.execute(f"select count(*) from recon_meta.{t}").fetchall()[0][0] for t in tables]
    second = run(con, config, gx_dir, "psp", "charges")
    assert [con.execute(f"select count(*) from recon_meta.{t}").fetchall()[0][0] for t in tables] == counts
    assert first.messages() == second.messages()


# ---- each kind of break ---------------------------------------------------------------------------


def test_missing_column_blocks_and_names_stream_and_column(con, config, gx_dir):
    types = {c: t for c, t in CHARGE_TYPES.items() if c != "currency"}
    land(con, "psp", "charges", charges(), types)
    result = run(con, config, gx_dir, "psp", "charges")
    outcome = failed(result)["column_exists:currency"]
    assert outcome.blocking and result.blocking and not result.passed
    assert "psp.charges column currency" in outcome.message("psp", "charges")


def test_retyped_column_blocks_and_is_reported_as_drift(con, config, gx_dir):
    land(con, "psp", "charges", charges(), CHARGE_TYPES)
    assert run(con, config, gx_dir, "psp", "charges").passed  # accepts the snapshot
    rows = charges()
    for r in rows:
        r["amount"] = r["amount"] / 100  # major units with cents: the column lands as DOUBLE
    land(con, "psp", "charges", rows, {**CHARGE_TYPES, "amount": "DOUBLE"})
    result = run(con, config, gx_dir, "psp", "charges")
    assert result.blocking
    fails = failed(result)
    assert fails["column_type:amount"].blocking
    assert fails["column_type:amount"].observed_value == "DOUBLE"
    assert fails["amount_minor_units:amount"].unexpected_count == 19  # 1000 cents -> 10.0 is still whole
    drift = [d for d in result.drift if d.column == "amount"]
    assert drift and drift[0].kind == "retyped" and drift[0].blocking
    assert "psp.charges column amount: retyped BIGINT -> DOUBLE" in drift[0].message("psp", "charges")
    # A blocked run does not accept the new schema: the next run still compares with BIGINT.
    snaps = con.execute("select count(*) from recon_meta.contract_schema_snapshots where stream = 'charges'").fetchall()
    assert snaps[0][0] == 1
    stream_level = con.execute("select rule_id from recon_meta.contract_violations where level = 'stream' "
                               "and stream = 'charges'").fetchall()
    assert ("schema_drift:amount",) in stream_level and ("column_type:amount",) in stream_level


def test_added_and_removed_columns_are_reported_by_name(con, config, gx_dir):
    land(con, "psp", "charges", charges(), {**CHARGE_TYPES, "description": "VARCHAR"})
    assert run(con, config, gx_dir, "psp", "charges").passed
    land(con, "psp", "charges", charges(), {**CHARGE_TYPES, "livemode": "BOOLEAN"})
    result = run(con, config, gx_dir, "psp", "charges")
    kinds = {(d.kind, d.column, d.blocking) for d in result.drift}
    assert kinds == {("added", "livemode", False), ("removed", "description", False)}  # unmapped: warn only
    assert result.passed and not result.blocking


def test_nulls_in_key_are_quarantined(con, config, gx_dir):
    rows = charges()
    rows[2]["id"] = None
    rows[5]["id"] = None
    land(con, "psp", "charges", rows, CHARGE_TYPES)
    result = run(con, config, gx_dir, "psp", "charges")
    outcome = failed(result)["key_not_null:id"]
    assert not outcome.blocking and not result.blocking  # a few bad rows: warn, quarantine, go on
    assert outcome.unexpected_count == 2 == outcome.quarantined
    assert "psp.charges column id" in outcome.message("psp", "charges")
    assert quarantined(con, "psp", "charges") == {"key_not_null:id": {"charges-2", "charges-5"}}
    assert "key_mostly_present:id" not in failed(result)


def test_mostly_null_key_blocks(con, config, gx_dir):
    rows = charges()
    for r in rows[:15]:
        r["id"] = None
    land(con, "psp", "charges", rows, CHARGE_TYPES)
    result = run(con, config, gx_dir, "psp", "charges")
    assert failed(result)["key_mostly_present:id"].blocking
    assert result.blocking


def test_duplicate_keys_in_one_sync_are_reported_not_quarantined(con, config, gx_dir):
    rows = charges()
    rows.append(dict(rows[4]))  # the same charge version twice in one sync
    land(con, "psp", "charges", rows, CHARGE_TYPES)
    # A later sync re-sending a version is not a duplicate within a sync.
    land(con, "psp", "charges", [charges()[7]], CHARGE_TYPES, extracted_at=EXTRACTED + dt.timedelta(minutes=5),
         replace=False)
    result = run(con, config, gx_dir, "psp", "charges")
    outcome = failed(result)["unique_key_per_sync"]
    assert outcome.unexpected_count == 2 and not outcome.blocking
    assert "psp.charges column id" in outcome.message("psp", "charges")
    assert {r["_airbyte_raw_id"] for r in result.samples["unique_key_per_sync"]} == {"charges-4", "charges-20"}
    # Reconciliation turns a repeated key into a duplicate_record diff, so the rows stay in.
    assert quarantined(con, "psp", "charges") == {}
    assert con.execute("select count(*) from recon_meta.contract_violations").fetchall() == [(0,)]


def test_amounts_in_wrong_unit(con, config, gx_dir):
    rows = documents()
    rows[3]["NetAmount"] = "2500000"  # 25,000.00 sent in cents to a major-unit stream
    rows[4]["NetAmount"] = "-7.5"  # an invoice that is negative in absolute value is fine; this one is abs'd
    rows[5]["NetAmount"] = "12,50"  # not a number
    land(con, "erp", "documents", rows, DOCUMENT_TYPES)
    result = run(con, config, gx_dir, "erp", "documents")
    fails = failed(result)
    assert fails["amount_in_bounds:NetAmount"].unexpected_count == 1
    assert fails["amount_parseable:NetAmount"].unexpected_count == 1
    q = quarantined(con, "erp", "documents")
    assert q == {"amount_in_bounds:NetAmount": {"documents-3"}, "amount_parseable:NetAmount": {"documents-5"}}
    value = con.execute("select failing_value from recon_meta.contract_quarantine "
                        "where rule_id = 'amount_in_bounds:NetAmount'").fetchall()
    assert value == [("2500000",)]


def test_negative_amount_in_unsigned_stream(con, config, gx_dir):
    rows = charges()
    rows[1]["amount"] = -500
    land(con, "psp", "charges", rows, CHARGE_TYPES)
    result = run(con, config, gx_dir, "psp", "charges")
    assert failed(result)["amount_in_bounds:amount"].unexpected_count == 1
    assert quarantined(con, "psp", "charges") == {"amount_in_bounds:amount": {"charges-1"}}


def test_unknown_status_and_currency(con, config, gx_dir):
    rows = documents()
    rows[2]["Status"] = "Booked"
    rows[6]["Curr"] = "EURO"
    rows[7]["Status"] = "POSTED"  # case-insensitive, like staging
    land(con, "erp", "documents", rows, DOCUMENT_TYPES)
    result = run(con, config, gx_dir, "erp", "documents")
    fails = failed(result)
    assert set(fails) == {"accepted_status:Status", "currency_iso:Curr"}
    assert "erp.documents column Status" in fails["accepted_status:Status"].message("erp", "documents")
    assert quarantined(con, "erp", "documents") == {"accepted_status:Status": {"documents-2"},
                                                    "currency_iso:Curr": {"documents-6"}}
    sample = result.samples["accepted_status:Status"]
    assert sample[0]["Status"] == "Booked" and sample[0]["_airbyte_raw_id"] == "documents-2"


def test_future_and_unparseable_timestamps(con, config, gx_dir):
    rows = documents()
    rows[1]["ChangedOn"] = "2026-10-13 10:00:00"  # three days after it was extracted
    rows[8]["DocDate"] = "2026-10-09"  # not the source's %d.%m.%Y
    land(con, "erp", "documents", rows, DOCUMENT_TYPES)
    result = run(con, config, gx_dir, "erp", "documents")
    assert set(failed(result)) == {"timestamp_not_future:ChangedOn", "timestamp_parseable:DocDate"}
    assert quarantined(con, "erp", "documents") == {"timestamp_not_future:ChangedOn": {"documents-1"},
                                                    "timestamp_parseable:DocDate": {"documents-8"}}


def test_future_epoch_timestamp(con, config, gx_dir):
    rows = charges()
    rows[9]["updated"] = int((NOW + dt.timedelta(days=2)).timestamp())
    land(con, "psp", "charges", rows, CHARGE_TYPES)
    result = run(con, config, gx_dir, "psp", "charges")
    assert set(failed(result)) == {"timestamp_not_future:updated"}


def test_stale_stream_warns(con, config, gx_dir):
    land(con, "psp", "charges", charges(), CHARGE_TYPES, file_modified=NOW - dt.timedelta(days=5))
    result = run(con, config, gx_dir, "psp", "charges")
    assert set(failed(result)) == {"freshness"}
    assert not result.blocking
    assert "psp.charges column _ab_source_file_last_modified" in failed(result)["freshness"].message("psp", "charges")
    # The same data is fresh for an as-of day it was current for.
    older = validate_stream(con, config, "psp", "charges", as_of_date=dt.date(2026, 10, 5), now=NOW,
                            expectations_dir=gx_dir)
    assert older.passed


# ---- cannot run = failure ------------------------------------------------------------------------


def test_missing_suite_of_a_configs_own_folder_is_generated_and_said(con, config, tmp_path):
    land(con, "psp", "charges", charges(), CHARGE_TYPES)
    folder = tmp_path / "own"
    result = validate_stream(con, config, "psp", "charges", as_of_date=AS_OF, now=NOW, expectations_dir=folder)
    path = folder / "expectations" / "psp__charges__contract.json"
    assert result.notes == [f"generated contract suite for psp.charges at {path}"]
    assert result.passed, result.messages()
    # The folder is a GX File Data Context: GX itself opens it and finds the suite.
    import great_expectations as gx

    assert gx.get_context(context_root_dir=str(folder)).suites.get("psp__charges__contract").expectations
    again = validate_stream(con, config, "psp", "charges", as_of_date=AS_OF, now=NOW, expectations_dir=folder)
    assert again.notes == [] and again.passed  # current suites are not rewritten


def test_missing_committed_demo_suite_fails_and_says_what_to_run(con, config):
    """The committed demo suites are never written by a run: a missing one stays a failure."""
    extra = config.model_copy(update={"systems": {**config.systems, "extra": config.systems["psp"]}})
    land(con, "extra", "charges", charges(), CHARGE_TYPES)
    result = validate_stream(con, extra, "extra", "charges", as_of_date=AS_OF, now=NOW,
                             expectations_dir=EXPECTATIONS_DIR)
    assert not result.passed and result.blocking
    assert "suite extra__charges__contract not found" in result.error
    assert "recon contracts generate" in result.hint()
    assert not (EXPECTATIONS_DIR / "expectations" / "extra__charges__contract.json").exists()


def test_another_config_never_uses_or_overwrites_the_demo_suites(con, tmp_path, recon_home):
    """A config of one's own whose systems are called like the demo's (shop, psp) keeps its suites in its
    state folder; pointing it at the committed folder is refused, and the committed files do not change."""
    from dagster_project.lib.contracts.suites import ProtectedSuitesError, expectations_dir_for

    before = {p.name: p.read_bytes() for p in (EXPECTATIONS_DIR / "expectations").glob("*.json")}
    text = DEMO_CONFIG_PATH.read_text()
    own = tmp_path / "mine.yaml"
    own.write_text(text)
    mine = load_config(own)
    assert expectations_dir_for(mine) == mine.state_dir / "expectations"
    written = generate_suites(mine)
    assert {p.parent.parent for p in written} == {mine.state_dir / "expectations"}
    with pytest.raises(ProtectedSuitesError, match="committed demo suites"):
        generate_suites(mine, EXPECTATIONS_DIR)
    pointed = tmp_path / "pointed.yaml"
    pointed.write_text(text.replace("  start_date:", f"  expectations_dir: {EXPECTATIONS_DIR}\n  start_date:", 1))
    land(con, "psp", "charges", charges(), CHARGE_TYPES)
    result = validate_stream(con, load_config(pointed), "psp", "charges", as_of_date=AS_OF, now=NOW)
    assert result.blocking and "committed demo suites" in result.error
    runner = CliRunner()
    out = runner.invoke(contracts, ["generate"], obj={"config_path": str(pointed)})
    assert out.exit_code == 1 and "committed demo suites" in out.output
    assert {p.name: p.read_bytes() for p in (EXPECTATIONS_DIR / "expectations").glob("*.json")} == before


def test_missing_table_fails(con, config, gx_dir):
    result = run(con, config, gx_dir, "psp", "refunds")
    assert not result.passed and result.blocking
    assert "raw_psp.refunds not found" in result.error


def test_empty_table_fails(con, config, gx_dir):
    land(con, "psp", "charges", [], CHARGE_TYPES)
    result = run(con, config, gx_dir, "psp", "charges")
    assert "row_count" in failed(result)


# ---- suites, Dagster, CLI ---------------------------------------------------------------------------


def test_committed_suites_match_demo_config(config):
    for contract in contracts_for(config, EXPECTATIONS_DIR):
        path = EXPECTATIONS_DIR / "expectations" / f"{contract.suite_name}.json"
        assert path.is_file(), f"{path} missing: run `recon contracts generate`"
        assert not is_stale(contract, json.loads(path.read_text())), f"{path} is stale"


def test_override_changes_the_suite(config, tmp_path):
    folder = tmp_path / "gx"
    folder.mkdir()
    (folder / "overrides.yml").write_text(
        "erp__documents__contract:\n  disable: [currency_iso]\n  severity: {amount_in_bounds: blocking}\n")
    generate_suites(config, folder, system="erp")
    suite = json.loads((folder / "expectations" / "erp__documents__contract.json").read_text())
    by_id = {e["meta"]["rule_id"]: e for e in suite["expectations"]}
    assert "currency_iso:Curr" not in by_id
    assert by_id["amount_in_bounds:NetAmount"]["severity"] == "critical"


def _check_defs(config: ReconConfig, gx_dir: Path) -> dg.Definitions:
    from dagster_project.defs.contracts.checks import build_defs
    from dagster_project.lib.partitions import daily_partitions

    specs = [dg.AssetSpec(["raw", s, t], partitions_def=daily_partitions(config))
             for s in sorted(config.systems) for t in sorted(config.systems[s].streams)]
    checks = dg.define_asset_job("contract_checks", selection=dg.AssetSelection.all_asset_checks())
    return dg.Definitions.merge(
        build_defs(config, gx_dir),
        dg.Definitions(assets=specs, jobs=[checks],
                       resources={"duckdb": DuckDBResource(database=str(config.duckdb_path))}),
    )


def test_dagster_checks(con, config, gx_dir):
    rows = charges()
    rows[0]["currency"] = "xx1"
    yesterday = dt.date.today() - dt.timedelta(days=1)
    delivered = dt.datetime.combine(yesterday, dt.time(20), tzinfo=dt.UTC)  # by the end of the as-of day
    land(con, "psp", "charges", rows, CHARGE_TYPES, extracted_at=delivered, file_modified=delivered)
    land(con, "erp", "documents", documents(), {c: t for c, t in DOCUMENT_TYPES.items() if c != "DocNo"})
    con.close()
    defs = _check_defs(config, gx_dir)
    assert len(list(defs.asset_checks or [])) == sum(len(s.streams) for s in config.systems.values())
    job = defs.resolve_job_def("contract_checks")
    result = job.execute_in_process(tags={"dagster/partition": str(yesterday)},
                                    raise_on_error=False)
    evaluations = {tuple(e.asset_key.path[1:]): e for e in result.get_asset_check_evaluations()}
    psp, erp = evaluations[("psp", "charges")], evaluations[("erp", "documents")]
    assert not evaluations[("psp", "refunds")].passed  # not landed: a failure, never a pass
    assert not psp.passed and psp.severity == dg.AssetCheckSeverity.WARN
    assert psp.metadata["quarantined_rows"].value == 1
    assert psp.metadata["failing_expectations"].value[0]["rule_id"] == "currency_iso:currency"
    result_file = Path(psp.metadata["validation_result"].value)
    assert json.loads(result_file.read_text())["suite_name"] == "psp__charges__contract"
    assert psp.metadata["data_docs"].value == f"recon contracts docs --run {result.run_id}"
    assert not erp.passed and erp.severity == dg.AssetCheckSeverity.ERROR
    assert "erp.documents column DocNo" in erp.description


def test_cli_check(con, config, gx_dir, tmp_path):
    land(con, "psp", "charges", charges(), CHARGE_TYPES, file_modified=dt.datetime.now(dt.UTC))
    con.close()
    runner = CliRunner()
    obj = {"config_path": str(DEMO_CONFIG_PATH)}
    ok = runner.invoke(contracts, ["--expectations-dir", str(gx_dir), "check", "--system", "psp"], obj=obj)
    assert ok.exit_code == 1, ok.output  # refunds has not landed: a failure, never a pass
    assert "PASS             psp__charges__contract" in ok.output
    assert "raw_psp.refunds not found" in ok.output
    bad = runner.invoke(contracts, ["--expectations-dir", str(gx_dir), "check", "--system", "nope"], obj=obj)
    assert bad.exit_code != 0 and "unknown system" in bad.output
