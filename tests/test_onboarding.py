"""Onboarding a new source without a silent failure, on data the demo generator did not make: `recon init`
scaffolds a config from the files, `recon config validate` fails early and clearly (and `--data` previews
each stream through the real connector, contract and dbt staging), and a run whose contract blocks says
which stream, column and cause, and what to run."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagster_project.cli import cli
from dagster_project.config.model import load_config
from dagster_project.contracts.suites import EXPECTATIONS_DIR

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), obj={}, catch_exceptions=False)


def write_file(path: Path, text: str, modified: str) -> Path:
    """Write an export and stamp its modification time (when its data became known), e.g. '2026-10-01 20:00'."""
    import datetime as dt

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    stamp = dt.datetime.fromisoformat(modified).replace(tzinfo=dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def exports(root: Path) -> dict[str, Path]:
    """A storefront (CSV, ';', German column names) and a PSP (JSONL, cents) with their own vocabularies."""
    shop = root / "store"
    write_file(shop / "auftraege" / "2026-10-01.csv", """\
        Auftragsnummer;Kunde;Status;Waehrung;Summe;Angelegt;Geaendert
        A-1;K1;offen;eur;10.00;2026-10-01T08:00:00Z;2026-10-01T08:00:00Z
        A-2;K2;offen;eur;20.50;2026-10-01T09:00:00Z;2026-10-01T09:00:00Z
        A-3;K3;storniert;eur;30.00;2026-10-01T10:00:00Z;2026-10-01T10:00:00Z
        A-4;K4;gesperrt;eur;abc;31/12/2026;2026-10-01T11:00:00Z
        """, "2026-10-01 20:00")
    write_file(shop / "auftraege" / "2026-10-02.csv", """\
        Auftragsnummer;Kunde;Status;Waehrung;Summe;Angelegt;Geaendert
        A-5;K5;offen;eur;5.00;2026-10-02T08:00:00Z;2026-10-02T08:00:00Z
        """, "2026-10-02 20:00")
    psp = root / "psp"
    write_file(psp / "txns" / "2026-10-01.jsonl", """\
        {"txn": "t1", "order_ref": "A-1", "result": "ok", "ccy": "EUR", "cents": 1000, "ts": "2026-10-01T08:05:00Z"}
        {"txn": "t2", "order_ref": "A-2", "result": "ok", "ccy": "EUR", "cents": 2050, "ts": "2026-10-01T09:05:00Z"}
        {"txn": "t3", "order_ref": "A-9", "result": "chargeback", "ccy": "EUR", "cents": 500, "ts": "2026-10-01T09:06:00Z"}
        """, "2026-10-01 20:00")
    return {"shop": shop, "psp": psp}


def config_text(root: Path, folders: dict[str, Path], *, amount_column: str = "cents") -> str:
    """A config of one's own, named like the demo's systems (shop, psp), with no owners section."""
    return textwrap.dedent(f"""\
        version: 1
        project:
          start_date: 2026-10-01
          duckdb_path: {root / "state" / "warehouse.duckdb"}
          state_dir: {root / "state"}
        systems:
          shop:
            role: orders
            path: {folders["shop"]}
            streams:
              orders:
                format: csv
                csv_delimiter: ";"
                glob: "auftraege/*.csv"
                primary_key: Auftragsnummer
                cursor_field: Geaendert
                fields:
                  order_id: Auftragsnummer
                  customer_id: Kunde
                  status: {{from: Status, values: {{offen: placed, storniert: cancelled}}}}
                  currency: {{from: Waehrung, transform: upper}}
                  total_amount: {{from: Summe, type: decimal}}
                  ordered_at: {{from: Angelegt, type: timestamp}}
                  updated_at: {{from: Geaendert, type: timestamp}}
          psp:
            role: payments
            path: {folders["psp"]}
            streams:
              charges:
                format: jsonl
                glob: "txns/*.jsonl"
                primary_key: txn
                cursor_field: ts
                fields:
                  payment_id: txn
                  order_id: order_ref
                  kind: {{value: charge}}
                  status: {{from: result, values: {{ok: succeeded}}}}
                  currency: ccy
                  amount: {{from: {amount_column}, type: decimal, unit: minor}}
                  updated_at: {{from: ts, type: timestamp}}
        """)


def committed_suites() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((EXPECTATIONS_DIR / "expectations").glob("*.json"))}


# ---- recon init ------------------------------------------------------------------------------------


def test_init_scaffolds_a_config_from_other_peoples_files(tmp_path, recon_home):
    folders = exports(tmp_path)
    out = tmp_path / "psp.yaml"
    result = invoke("init", "--out", str(out), "--system", f"psp:payments:{folders['psp']}")
    assert result.exit_code == 0, result.output
    assert "psp.txns (payments, jsonl, 1 file(s)): 7 of 7 required field(s) guessed" in result.output
    assert "it validates" in result.output
    config = load_config(out)
    charges = config.systems["psp"].streams["txns"]
    assert (charges.format, charges.glob) == ("jsonl", "txns/*.jsonl")
    assert charges.primary_key == ["txn"] and charges.cursor_field == "ts"
    assert charges.fields["order_id"].from_ == "order_ref"
    assert (charges.fields["amount"].from_, charges.fields["amount"].unit) == ("cents", "minor")
    assert charges.fields["currency"].from_ == "ccy"
    assert config.project.start_date.isoformat() == "2026-10-01"  # the oldest file's day
    text = out.read_text()
    assert "TODO: map 'chargeback', 'ok' to one of succeeded" in text  # its own words are listed, not guessed
    assert "# the source's columns: txn, order_ref, result, ccy, cents, ts" in text
    again = invoke("--config", str(out), "config", "validate")
    assert again.exit_code == 0, again.output
    assert invoke("init", "--out", str(out), "--system", f"psp:payments:{folders['psp']}").exit_code == 1  # exists


def test_init_leaves_what_it_cannot_guess_as_todo_and_validate_names_it(tmp_path, recon_home):
    folders = exports(tmp_path)  # the storefront's German column names are not obvious
    out = tmp_path / "shop.yaml"
    result = invoke("init", "--out", str(out), "--system", f"shop:orders:{folders['shop']}")
    assert result.exit_code == 0, result.output
    assert "shop.auftraege (orders, csv, 2 file(s)): 1 of 6 required field(s) guessed; " \
           "TODO: order_id, currency, total_amount, ordered_at, updated_at" in result.output
    assert "not valid yet" in result.output
    text = out.read_text()
    assert 'csv_delimiter: ";"' in text and "# primary_key: [TODO]" in text
    assert "# order_id: TODO" in text
    check = invoke("--config", str(out), "config", "validate")
    assert check.exit_code == 1
    assert f"invalid config {out}" in check.output
    assert "systems.shop.streams.auftraege.primary_key" in check.output and "required key is missing" in check.output


@pytest.mark.parametrize(("spec", "message"), [
    ("shop:order:{d}", "unknown role 'order'"),
    ("Shop:orders:{d}", "must be lower-case"),
    ("shop:orders", "expected NAME:ROLE:FOLDER"),
    ("shop:orders:{d}/nope", "not found"),
    ("shop:orders:{d}/empty", "no CSV, JSONL or Parquet file"),
])
def test_init_rejects_bad_systems_clearly(tmp_path, spec, message):
    (tmp_path / "empty").mkdir()
    result = invoke("init", "--out", str(tmp_path / "x.yaml"), "--system", spec.format(d=tmp_path))
    assert result.exit_code == 1 and message in result.output, result.output


# ---- recon config validate ---------------------------------------------------------------------------


def test_validate_lists_each_roles_fields_and_where_the_suites_live(tmp_path, recon_home):
    path = tmp_path / "mine.yaml"
    path.write_text(config_text(tmp_path, exports(tmp_path)))
    result = invoke("--config", str(path), "config", "validate")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "orders: required order_id, status [placed|cancelled], currency, total_amount, ordered_at, updated_at" in out
    assert "optional customer_id, line_count (not mapped)" in out
    assert "optional customer_id (not mapped), refunded_amount (not mapped), refunds (not mapped), captured_at (not mapped)" in out
    assert f"contract suites: {tmp_path / 'state' / 'expectations'} (this config's own" in out
    assert "stale after 24 h" in out
    demo = invoke("config", "validate")
    assert f"contract suites: {EXPECTATIONS_DIR} (the project's committed demo suites)" in demo.output


def test_validate_data_without_data_flag_is_a_usage_error(tmp_path, recon_home):
    path = tmp_path / "mine.yaml"
    path.write_text(config_text(tmp_path, exports(tmp_path)))
    result = invoke("--config", str(path), "config", "validate", "--date", "2026-10-01")
    assert result.exit_code == 2 and "--date goes with --data" in result.output


@pytest.mark.slow
def test_validate_data_previews_each_stream_through_connector_contract_and_staging(tmp_path, recon_home):
    """One preview (it lands, checks and runs dbt): visible as of D, unmapped words, unparseable values, a
    missing column that would block the run, and nothing of the user's written."""
    folders = exports(tmp_path)
    path = tmp_path / "mine.yaml"
    path.write_text(config_text(tmp_path, folders, amount_column="amount_cents"))  # the PSP has no such column
    result = invoke("--config", str(path), "config", "validate", "--data", "--date", "2026-10-01")
    out = result.output
    assert result.exit_code == 1, out  # the missing column would stop the run
    shop = out[out.index("  shop.orders (orders)"):]
    # 5 rows landed; the file modified on 2026-10-02 is not visible as of 2026-10-01.
    assert shop.startswith("  shop.orders (orders): 5 row(s) landed from 2 file(s), 4 visible as of 2026-10-01")
    assert "ordered_at: 1 row(s) staging could not parse, e.g. Auftragsnummer=A-4 Angelegt='31/12/2026'" in shop
    assert "total_amount: 1 row(s) staging could not parse, e.g. Auftragsnummer=A-4 Summe='abc'" in shop
    assert "status: 1 row(s) with values outside {placed, cancelled}: 'gesperrt' (1)" in shop
    assert "1 would be quarantined by the contract" in shop  # unparseable Angelegt and Summe, unknown Status
    psp = out[out.index("  psp.charges (payments)"):out.index("  shop.orders (orders)")]
    assert "FAIL (blocking)" in psp
    assert "psp.charges column amount_cents: missing from the landed table" in psp
    assert "(the config maps amount from it); raw_psp.charges has columns txn, order_ref, result, ccy, cents, ts" in psp
    assert "staging model stg_psp__charges failed" in psp
    assert "2 stream(s): 1 would stop the run" in out
    assert not (tmp_path / "state").exists()  # the user's database, state and suites were not touched


# ---- a run that blocks says why ------------------------------------------------------------------------


@pytest.mark.slow
def test_blocked_run_names_stream_column_cause_and_what_to_run_then_the_fixed_config_runs(tmp_path, recon_home):
    """A config of one's own (systems named like the demo's, no owners section): its first run generates
    its suites in its state folder and says so; a mapped column the export lacks blocks the run with the
    stream, column and cause and what to run; fixed, the night runs through dbt (owners fall back)."""
    before = committed_suites()
    folders = exports(tmp_path)
    path = tmp_path / "mine.yaml"
    path.write_text(config_text(tmp_path, folders, amount_column="amount_cents"))
    failed = invoke("--config", str(path), "run", "--date", "2026-10-01")
    assert failed.exit_code == 1
    out = failed.output
    suites = tmp_path / "state" / "expectations" / "expectations"
    assert f"generated contract suite for shop.orders at {suites / 'shop__orders__contract.json'}" in out
    assert f"generated contract suite for psp.charges at {suites / 'psp__charges__contract.json'}" in out
    line = next(x for x in out.splitlines() if "raw/psp/charges contract (blocking)" in x)
    assert "psp.charges column amount_cents: missing from the landed table" in line
    assert "the config maps amount from it" in line
    assert "To fix: fix systems.psp.streams.charges.fields" in line and "recon contracts check --system psp" in line
    # The log the run points to tells the whole story, not only dbt's output.
    log = Path(next(x for x in out.splitlines() if "every failure in full:" in x).split("in full: ")[1].strip())
    told = log.read_text()
    assert "FAILED" in told and "psp.charges column amount_cents: missing from the landed table" in told
    assert "DagsterAssetCheckFailedError" in told
    assert committed_suites() == before  # the demo's suites of the same names are untouched

    path.write_text(config_text(tmp_path, folders))
    fixed = invoke("--config", str(path), "run", "--date", "2026-10-01")
    assert fixed.exit_code == 0, fixed.output
    assert "regenerated contract suite for psp.charges" in fixed.output
    from dagster_project.lib.database import connect

    con = connect(tmp_path / "state" / "warehouse.duckdb", read_only=True)
    try:
        owners = con.execute("select distinct state_owner from marts.fct_orders").fetchall()
        orders = con.execute("select order_id from marts.fct_orders order by 1").fetchall()
    finally:
        con.close()
    assert owners == [("data-engineering",)]  # no owners section: every state falls back
    # A-4 is quarantined by its contract (bad total and date), A-5 arrived after D.
    assert orders == [("A-1",), ("A-2",), ("A-3",)]
    assert committed_suites() == before
    assert json.loads((suites / "psp__charges__contract.json").read_text())["meta"]["system"] == "psp"
