"""Contract checks: each kind of break fails the right expectation, bad rows are quarantined, clean data
passes, a missing suite or table fails, and the compiled query counts what GX counts."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from dagster_project.cli.contracts import contracts
from dagster_project.config.model import DEMO_CONFIG_PATH, ReconConfig, load_config
from dagster_project.contracts.runner import ContractResult, validate_stream
from dagster_project.contracts.suites import EXPECTATIONS_DIR, contracts_for, generate_suites, is_stale
from dagster_project.lib.database import connect
from dagster_project.resources.duckdb_resource import DuckDBResource

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
    from dagster_project.contracts.suites import ProtectedSuitesError, expectations_dir_for

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
    from dagster_project.resources.partitions import daily_partitions

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
    streams = sum(len(s.streams) for s in config.systems.values())
    assert len(list(defs.asset_checks or [])) == streams  # one step per stream, validating it once
    blocking = {spec.name: spec.blocking for d in defs.asset_checks for spec in d.check_specs}
    assert blocking == {"contract": True, "contract_rows": False}
    job = defs.resolve_job_def("contract_checks")
    result = job.execute_in_process(tags={"dagster/partition": str(yesterday)},
                                    raise_on_error=False)
    evaluations = {(*e.asset_key.path[1:], e.check_name): e for e in result.get_asset_check_evaluations()}
    assert len(evaluations) == 2 * streams
    psp, erp = evaluations[("psp", "charges", "contract_rows")], evaluations[("erp", "documents", "contract")]
    assert not evaluations[("psp", "refunds", "contract")].passed  # not landed: a failure, never a pass
    assert not evaluations[("psp", "refunds", "contract_rows")].passed  # its rules could not run either
    # psp.charges only warns: its blocking check passes, its non-blocking one fails with WARN
    assert evaluations[("psp", "charges", "contract")].passed
    assert not psp.passed and psp.severity == dg.AssetCheckSeverity.WARN and not psp.blocking
    assert psp.description.startswith("1 row(s) quarantined, the run goes on: psp.charges column currency")
    assert psp.metadata["quarantined_rows"].value == 1
    assert psp.metadata["failing_expectations"].value[0]["rule_id"] == "currency_iso:currency"
    result_file = Path(psp.metadata["validation_result"].value)
    assert json.loads(result_file.read_text())["suite_name"] == "psp__charges__contract"
    assert psp.metadata["data_docs"].value == f"recon contracts docs --run {result.run_id}"
    # GX renders Data Docs from the results the checks wrote (the nightly itself never imports GX).
    docs = CliRunner().invoke(contracts, ["--expectations-dir", str(gx_dir), "docs", "--run", result.run_id],
                              obj={"config_path": str(DEMO_CONFIG_PATH)})
    assert docs.exit_code == 0, docs.output
    index = Path(docs.output.strip().rsplit(": ", 1)[1])
    assert index.is_file() and index.parent == config.state_dir / "contracts" / "data_docs" / result.run_id
    assert (index.parent / "expectations" / "psp__charges__contract.html").is_file()
    (charges_run,) = (p.read_text() for p in (index.parent / "validations" / "psp__charges__contract").rglob("*.html"))
    text = " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style).*?</\1>", "", charges_run, flags=re.S)).split())
    assert "currency is an ISO 4217 currency code 1 " in text  # the failed expectation, with its count
    assert not erp.passed and erp.severity == dg.AssetCheckSeverity.ERROR and erp.blocking
    assert "erp.documents column DocNo" in erp.description


def test_only_the_blocking_contract_check_stops_what_is_downstream(con, config, gx_dir):
    """psp.charges only warns (its downstream runs); erp.documents lacks a mapped column (its downstream is skipped)."""
    from dagster_project.defs.contracts.checks import build_checks
    from dagster_project.resources.partitions import daily_partitions

    rows = charges()
    rows[0]["currency"] = "xx1"
    yesterday = dt.date.today() - dt.timedelta(days=1)
    delivered = dt.datetime.combine(yesterday, dt.time(20), tzinfo=dt.UTC)
    land(con, "psp", "charges", rows, CHARGE_TYPES, extracted_at=delivered, file_modified=delivered)
    land(con, "erp", "documents", documents(), {c: t for c, t in DOCUMENT_TYPES.items() if c != "DocNo"})
    con.close()
    partitions = daily_partitions(config)
    streams = [dg.AssetKey(["raw", "psp", "charges"]), dg.AssetKey(["raw", "erp", "documents"])]

    def step(key: dg.AssetKey, deps: list[dg.AssetKey]) -> dg.AssetsDefinition:
        @dg.asset(key=key, deps=deps, partitions_def=partitions)
        def _step() -> None:
            """Landed above (a stream) or reads the stream (downstream)."""

        return _step

    after = {k: dg.AssetKey(["after", k.path[1]]) for k in streams}
    checks = [c for c in build_checks(config, gx_dir) if {s.asset_key for s in c.check_specs} <= set(streams)]
    assert len(checks) == 2
    result = dg.materialize([*(step(k, []) for k in streams), *(step(after[k], [k]) for k in streams), *checks],
                            partition_key=str(yesterday), raise_on_error=False,
                            resources={"duckdb": DuckDBResource(database=str(config.duckdb_path))})
    verdicts = {(e.asset_key.path[1], e.check_name): (e.passed, e.severity.value)
                for e in result.get_asset_check_evaluations()}
    assert len(verdicts) == 4 and verdicts[("erp", "contract_rows")][1] == "WARN"
    assert {k: v for k, v in verdicts.items() if k != ("erp", "contract_rows")} == {
        ("psp", "contract"): (True, "ERROR"), ("psp", "contract_rows"): (False, "WARN"),
        ("erp", "contract"): (False, "ERROR")}
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert after[streams[0]] in materialized  # a warning lets the run go on
    assert after[streams[1]] not in materialized  # the blocking failure stops what reads the stream


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


# ---- the compiled query counts what GX counts --------------------------------------------------------

ORACLE_ROWS = [  # id, amount, code, a, b, note
    ("r1", 10.0, "EUR", "x", 1, "ok"),
    ("r2", 250.5, "USD", "x", 1, "ok"),
    ("r3", None, "eur", "x", 2, None),
    ("r4", -3.0, "EURO", None, None, "ok"),
    ("r5", 1e7, "GB", "w", 8, "a longer note"),
    ("r5", 99.0, None, "y", 3, "ok"),
    (None, 5.0, "CHF", "y", 3, "ok"),
    ("r8", 0.0, "JPY", "y", None, ""),
    ("r9", 42.0, "XXX", "z", 4, "ok"),
    ("r10", 1000.0, "eur", "z", 5, "ok"),
    ("r11", 1000.0, "CHF", None, 6, "ok"),
    ("r12", 7.25, "USD", None, 7, "ok"),
]
ORACLE_EXPECTATIONS: list[dict[str, Any]] = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "code", "mostly": 0.9}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount", "mostly": 0.95}},
    {"type": "expect_column_values_to_be_null", "kwargs": {"column": "note", "mostly": 0.05}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "amount", "mostly": 0.8}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "code", "value_set": ["EUR", "USD", "CHF", "JPY"]}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "code", "value_set": ["EUR", "USD", "CHF", "JPY",
                                                                                        "eur"], "mostly": 0.7}},
    {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "code", "value_set": ["XXX", "EURO"]}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0, "max_value": 1000}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0, "max_value": 1000,
                                                              "strict_min": True, "strict_max": True}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "max_value": 500, "mostly": 0.6}},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "code", "regex": "^[A-Z]{3}$"}},
    {"type": "expect_column_values_to_not_match_regex", "kwargs": {"column": "code", "regex": "[a-z]"}},
    {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "code", "min_value": 3, "max_value": 3}},
    {"type": "expect_column_value_lengths_to_equal", "kwargs": {"column": "note", "value": 2}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "b"]}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "b"],
                                                                "ignore_row_if": "any_value_is_missing"}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "b"], "ignore_row_if": "never"}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 10}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 12}},
    {"type": "expect_table_row_count_to_equal", "kwargs": {"value": 12}},
    {"type": "expect_column_max_to_be_between", "kwargs": {"column": "amount", "max_value": 5000}},
    {"type": "expect_column_min_to_be_between", "kwargs": {"column": "amount", "min_value": -3, "strict_min": True}},
    {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "amount", "min_value": 0, "max_value": 1e6}},
    {"type": "expect_column_sum_to_be_between", "kwargs": {"column": "amount", "min_value": 0, "max_value": 1e6}},
    {"type": "expect_column_to_exist", "kwargs": {"column": "code"}},
    {"type": "expect_column_to_exist", "kwargs": {"column": "nope"}},
    {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["id", "amount", "code", "a", "b", "note"]}},
    {"type": "expect_table_columns_to_match_ordered_list", "kwargs": {"column_list": ["amount", "id"]}},
    {"type": "expect_table_column_count_to_equal", "kwargs": {"value": 6}},
]


def _oracle_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create or replace table oracle (id varchar, amount double, code varchar, a varchar, b bigint, "
                "note varchar)")
    con.executemany("insert into oracle values (?, ?, ?, ?, ?, ?)", [list(r) for r in ORACLE_ROWS])


def test_compiled_query_counts_what_gx_counts(tmp_path):
    """Every supported GX expectation, on a table with violations of each, through the compiled query
    and through GX 1.24 itself (its pandas engine: the test-only oracle, on the same rows). Where GX's
    engines differ (a repeated tuple with a null in it: pandas counts it, GX's SQL engine, which the
    contracts ran on before, does not), the SQL engine's answer is kept and checked in the next test."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    from dagster_project.contracts.compiler import compile_suite
    from dagster_project.contracts.evaluation import evaluate

    con = duckdb.connect(str(tmp_path / "oracle.duckdb"))
    _oracle_table(con)
    columns = dict(con.execute("select column_name, data_type from information_schema.columns "
                               "where table_name = 'oracle' order by ordinal_position").fetchall())
    suite = {"name": "oracle", "expectations": ORACLE_EXPECTATIONS}
    total, ours = evaluate(con, "select * from oracle", compile_suite(suite, columns, {}), {})
    assert total == len(ORACLE_ROWS)

    frame = con.execute("select * from oracle").df()
    context = gx.get_context(mode="ephemeral")
    batch = (context.data_sources.add_pandas("p").add_dataframe_asset("oracle")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame}))
    outcomes = {True: 0, False: 0}
    for e, mine in zip(ORACLE_EXPECTATIONS, ours, strict=True):
        theirs = batch.validate(ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj())
        assert not theirs.exception_info.get("raised_exception"), (e, theirs.exception_info)
        assert not mine["exception_info"]["raised_exception"], (e, mine)
        got, want = mine["result"], theirs.result
        assert mine["success"] == theirs.success, (e, got, want)
        for key in ("unexpected_count", "element_count", "missing_count"):
            if key in want and key in got:
                assert got[key] == want[key], (e, key, got, want)
        if "observed_value" in want and not isinstance(want["observed_value"], list):
            assert got["observed_value"] == pytest.approx(want["observed_value"]), (e, got, want)
        if "unexpected_percent" in want and want["unexpected_percent"] is not None:
            assert got["unexpected_percent"] == pytest.approx(want["unexpected_percent"]), (e, got, want)
        outcomes[bool(theirs.success)] += 1
    assert outcomes[True] >= 5 and outcomes[False] >= 15  # both verdicts are exercised


def test_compiled_types_rows_queries_and_what_cannot_compile(tmp_path):
    """The SQL-only expectations (column types, UnexpectedRowsExpectation), against hand-computed results;
    an expectation that cannot be compiled is a failure that says why, never skipped."""
    from dagster_project.contracts.compiler import compile_suite
    from dagster_project.contracts.evaluation import evaluate

    con = duckdb.connect(str(tmp_path / "oracle.duckdb"))
    _oracle_table(con)
    columns = dict(con.execute("select column_name, data_type from information_schema.columns "
                               "where table_name = 'oracle' order by ordinal_position").fetchall())
    generated = ('select "_airbyte_raw_id", cast("code" as varchar) as failing_value from {batch} '
                 "where lower(\"code\") = 'eur'")
    expectations = [
        {"type": "expect_column_values_to_be_in_type_list", "kwargs": {"column": "amount", "type_list": ["double"]}},
        {"type": "expect_column_values_to_be_in_type_list", "kwargs": {"column": "b", "type_list": ["VARCHAR"]}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "code", "type_": "VARCHAR"}},
        {"type": "unexpected_rows_expectation", "kwargs": {"unexpected_rows_query": generated}},
        {"type": "unexpected_rows_expectation",
         "kwargs": {"unexpected_rows_query": "select a from {batch} group by a having count(*) > 3"}},
        {"type": "expect_column_kl_divergence_to_be_less_than", "kwargs": {"column": "amount"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id", "row_condition": 'col("b")>1'}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "missing_col"}},
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "amount",
                                                                "min_value": {"$PARAMETER": "floor"}}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "b", "min_value": "not a number"}},
    ]
    con.execute("insert into oracle (id, a, b) values ('n1', null, 6), ('n2', null, 6), ('n3', 'x', 1)")
    expectations.insert(5, {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "b"]}})
    checks = compile_suite({"expectations": expectations}, columns, {})
    assert [c.kind for c in checks[:6]] == ["done", "done", "done", "map", "query", "unique"]  # generated: 1 scan
    _, results = evaluate(con, "select * from oracle", checks, {})
    verdict = [(r["success"], r["result"].get("observed_value", r["result"].get("unexpected_count"))) for r in results]
    # (x, 1) three times and (y, 3) twice repeat; (null, 6) twice does not, as in GX's SQL engine
    assert verdict[:6] == [(True, "DOUBLE"), (False, "BIGINT"), (True, "VARCHAR"), (False, 3), (False, 2), (False, 5)]
    errors = [r["exception_info"]["exception_message"] for r in results[6:]]
    assert all(not r["success"] and r["exception_info"]["raised_exception"] for r in results[6:])
    assert "expect_column_kl_divergence_to_be_less_than' cannot be compiled to SQL" in errors[0]
    assert "row_condition is not supported" in errors[1]
    assert "not run: column(s) ['missing_col'] missing" in errors[2]
    assert "expectation parameter 'floor' is not set" in errors[3]
    assert "Conversion Error" in errors[4] or "conversion" in errors[4].lower()  # only this one failed to run


# ---- the as-of day ----------------------------------------------------------------------------------


def _day(day: int) -> dt.datetime:
    return dt.datetime(2026, 10, day, 22, 0, tzinfo=dt.UTC)


def _land_day(con: duckdb.DuckDBPyConnection, day: int) -> None:
    """One day's charges file: delivered (modified) at 22:00, extracted the next morning."""
    rows = [{**r, "id": f"ch_{day}_{i}"} for i, r in enumerate(charges(6))]
    base = int(_day(day).timestamp()) - 3600
    for r in rows:
        r["created"] = r["updated"] = base
    if day == 1:
        rows[0]["id"] = None
        rows[1]["status"] = "Booked"
    if day == 3:
        rows[2]["currency"] = "xx1"
        rows[3]["amount"] = -5
        rows.append(dict(rows[4]))  # a key twice in one sync
    land(con, "psp", "charges", rows, CHARGE_TYPES, extracted_at=_day(day) + dt.timedelta(hours=8),
         file_modified=_day(day), replace=day == 1)


def _recorded(con: duckdb.DuckDBPyConnection, day: int) -> list[tuple]:
    return con.execute(
        "select level, row_key, order_id, _airbyte_raw_id, column_name, rule_id, expectation, failing_value, "
        "severity, reason, schema_snapshot::varchar from recon_meta.contract_violations "
        "where as_of_date = ? order by all", [dt.date(2026, 10, day)]).fetchall()


def test_results_respect_the_as_of_day(config, gx_dir, tmp_path):
    """Days 1 and 3 deliver files, day 2 none. Running day 3 first and then days 1 and 2 (a rerun after
    later files, or a range run with every file present) records on days 1 and 2 exactly what runs with
    only day 1's file record: day 3's violations are not checked for them, day 1's own are kept, and
    day 2's staleness (its newest file is day 1's) is not hidden by day 3's file."""
    now = dt.datetime(2026, 10, 5, 12, 0, tzinfo=dt.UTC)

    def validate(con: duckdb.DuckDBPyConnection, day: int) -> ContractResult:
        return validate_stream(con, config, "psp", "charges", as_of_date=dt.date(2026, 10, day), now=now,
                               expectations_dir=gx_dir)

    alone = connect(tmp_path / "alone.duckdb")
    _land_day(alone, 1)
    by_day_alone = {day: validate(alone, day) for day in (1, 2)}
    recorded_alone = {day: _recorded(alone, day) for day in (1, 2)}
    quarantine_alone = sorted(alone.execute("select _airbyte_raw_id, rule_id, failing_value "
                                            "from recon_meta.contract_quarantine").fetchall())
    alone.close()
    assert {o.rule_id for o in by_day_alone[1].failures} == {"key_not_null:id", "accepted_status:status"}
    assert {o.rule_id for o in by_day_alone[2].failures} == {"key_not_null:id", "accepted_status:status",
                                                             "freshness"}

    full = connect(tmp_path / "full.duckdb")
    for day in (1, 3):
        _land_day(full, day)
    third = validate(full, 3)
    assert {o.rule_id for o in third.failures} >= {"currency_iso:currency", "amount_in_bounds:amount",
                                                   "unique_key_per_sync", "key_not_null:id"}
    recorded_third = _recorded(full, 3)
    by_day = {day: validate(full, day) for day in (1, 2)}
    for day in (1, 2):
        assert _recorded(full, day) == recorded_alone[day], day
        assert by_day[day].messages() == by_day_alone[day].messages()
        assert by_day[day].row_count == 6
    # Day 3's quarantine is left as day 3 decided it, and day 3 rerun records what it did before.
    quarantine = sorted(full.execute("select _airbyte_raw_id, rule_id, failing_value "
                                     "from recon_meta.contract_quarantine").fetchall())
    assert [q for q in quarantine if not q[0].startswith("charges-") or int(q[0].split("-")[1]) < 6] == \
        quarantine_alone
    assert len(quarantine) == len(quarantine_alone) + 2  # day 3's currency and amount rows
    validate(full, 3)
    assert _recorded(full, 3) == recorded_third
    full.close()


def test_expectations_of_your_own_from_overrides(con, config, tmp_path):
    """overrides.yml `expectations` are appended to the generated suite and run in the same query; a type
    recon cannot compile fails the check with the reason instead of being skipped."""
    folder = tmp_path / "gx"
    folder.mkdir()
    (folder / "overrides.yml").write_text("""
psp__charges__contract:
  expectations:
    - type: expect_column_values_to_match_regex
      kwargs: {column: currency, regex: "^[a-z]{3}$"}
      meta: {rule_id: currency_lowercase}
    - type: expect_column_values_to_be_between
      kwargs: {column: amount, min_value: 1005, mostly: 0.7}
      description: most charges are at least 10.05
    - type: expect_column_kl_divergence_to_be_less_than
      kwargs: {column: amount, partition_object: null, threshold: 0.1}
      meta: {blocking: true}
""")
    rows = charges()
    rows[0]["currency"] = "xx1"
    land(con, "psp", "charges", rows, CHARGE_TYPES)
    result = run(con, config, folder, "psp", "charges")
    fails = failed(result)
    assert fails["currency_lowercase"].unexpected_count == 1
    assert fails["currency_lowercase"].column == "currency" and not fails["currency_lowercase"].blocking
    assert result.samples["currency_lowercase"][0]["currency"] == "xx1"
    between = next(o for o in result.outcomes if o.description == "most charges are at least 10.05")
    assert between.success and between.unexpected_count == 5  # 5 of 20 below, within mostly 0.7
    kl = fails["custom:3"]
    assert kl.blocking and result.blocking
    assert "expect_column_kl_divergence_to_be_less_than' cannot be compiled to SQL" in kl.error
    assert "could not run" in kl.message("psp", "charges")
    assert quarantined(con, "psp", "charges") == {"currency_iso:currency": {"charges-0"}}  # own rules: reported

    (folder / "overrides.yml").write_text("psp__charges__contract:\n  expectations: [{kwargs: {column: id}}]\n")
    bad = run(con, config, folder, "psp", "charges")
    assert bad.blocking and "expectations[0] must be a mapping with a `type`" in bad.error
