"""dbt models end to end: generated staging, rules, idempotent reruns, per-day history.

Real dbt runs against a temporary DuckDB. The raw tables are written here in the shapes the landing
connector produces for the demo systems (JSONL with JSON/BIGINT columns, CSV all-varchar in Berlin local
time, Parquet native TIMESTAMPTZ/INTEGER). The YAML unit tests of the rule edges run inside `dbt build`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from dagster_project.dbt.dbt_codegen import (
    GENERATED_DIR,
    lay_out_project,
    render_files,
    write_generated_files,
)
from dagster_project.dbt.dbt_in_process import DbtOutcome, invoke
from dagster_project.dbt.dbt_project import AS_OF_DATE_ENV
from ingestion import catalogue

REPO = Path(__file__).resolve().parents[1]
DBT_PROJECT = REPO / "dbt_project"


def _field(source: str | None = None, **kw: Any) -> dict[str, Any]:
    spec = {"from": source, "value": None, "type": "string", "unit": None, "sign": None, "formats": [],
            "timezone": None, "values": None, "default": None, "transform": None}
    spec.update(kw)
    return spec


def recon_vars(as_of_date: str | None = None) -> dict[str, Any]:
    """The dbt vars of the demo config, as load_config(...).dbt_vars(day) builds them."""
    def system(role: str, streams: dict[str, Any]) -> dict[str, Any]:
        return {"role": role, "connector": "file_drop", "freshness_hours": 24, "streams": streams}

    systems = {
        "shop": system("orders", {"orders": {"primary_key": ["order_number"], "cursor_field": "updated_at", "fields": {
            "order_id": _field("order_number"),
            "customer_id": _field("customer.id"),
            "status": _field("state", values={"placed": "placed", "open": "placed", "cancelled": "cancelled",
                                              "canceled": "cancelled"}),
            "currency": _field("currency", transform="upper"),
            "total_amount": _field("total", type="decimal"),
            "line_count": _field("lines", type="json_array_length"),
            "ordered_at": _field("created_at", type="timestamp"),
            "updated_at": _field("updated_at", type="timestamp"),
        }}}),
        "psp": system("payments", {
            "charges": {"primary_key": ["id"], "cursor_field": "updated", "fields": {
                "payment_id": _field("id"),
                "order_id": _field("metadata.order_id"),
                "customer_id": _field("customer"),
                "kind": _field(None, value="charge"),
                "status": _field("status", values={"succeeded": "succeeded", "paid": "succeeded",
                                                   "failed": "failed", "pending": "pending"}),
                "currency": _field("currency", transform="upper"),
                "amount": _field("amount", type="decimal", unit="minor"),
                "captured_at": _field("created", type="timestamp", formats=["epoch_seconds"]),
                "updated_at": _field("updated", type="timestamp", formats=["epoch_seconds"]),
            }},
            "refunds": {"primary_key": ["id"], "cursor_field": "created", "fields": {
                "payment_id": _field("id"),
                "order_id": _field("metadata.order_id"),
                "kind": _field(None, value="refund"),
                "status": _field("status", values={"succeeded": "succeeded", "failed": "failed", "pending": "pending"}),
                "currency": _field("currency", transform="upper"),
                "amount": _field("amount", type="decimal", unit="minor"),
                "captured_at": _field("created", type="timestamp", formats=["epoch_seconds"]),
                "updated_at": _field("created", type="timestamp", formats=["epoch_seconds"]),
            }},
        }),
        "erp": system("invoices", {"documents": {"primary_key": ["DocNo"], "cursor_field": "ChangedOn", "fields": {
            "invoice_id": _field("DocNo"),
            "order_id": _field("SalesOrder"),
            "customer_id": _field("Customer"),
            "kind": _field("DocType", values={"inv": "invoice", "crn": "credit_note"}),
            "status": _field("Status", values={"posted": "posted", "draft": "draft", "void": "void", "cancelled": "void"}),
            "currency": _field("Curr", transform="upper"),
            "amount": _field("NetAmount", type="decimal", sign="abs"),
            "issued_at": _field("DocDate", type="timestamp", formats=["%d.%m.%Y"]),
            "updated_at": _field("ChangedOn", type="timestamp", formats=["%Y-%m-%d %H:%M:%S"], timezone="Europe/Berlin"),
        }}}),
        "wms": system("fulfillments", {"shipments": {"primary_key": ["shipment_ref"], "cursor_field": "modified_time",
                                                      "fields": {
            "fulfillment_id": _field("shipment_ref"),
            "order_id": _field("order_no"),
            "kind": _field("kind", values={"ship": "shipment", "act": "activation"}),
            "status": _field("status", values={"picked": "pending", "dispatched": "shipped", "delivered": "delivered",
                                               "active": "activated", "cancelled": "cancelled", "returned": "returned"}),
            "line_count": _field("qty_lines", type="integer"),
            "fulfilled_at": _field("event_time", type="timestamp"),
            "updated_at": _field("modified_time", type="timestamp"),
        }}}),
        "crm": system("customers", {"accounts": {"primary_key": ["AccountId"], "cursor_field": "ModifiedDate", "fields": {
            "customer_id": _field("AccountId"),
            "segment": _field("Segment"),
            "plan": _field("Plan"),
            "account_owner": _field("AccountOwner"),
            "updated_at": _field("ModifiedDate", type="timestamp"),
        }}}),
    }
    rules = {
        "amount_tolerance": {"absolute": 0.01, "relative": 0.0, "per_line": 0.01},
        "fx_tolerance": 0.02,
        "fx_rates": [{"from": "USD", "to": "EUR", "rate": 0.92}, {"from": "EUR", "to": "USD", "rate": 1.087}],
        "grace_hours": {"missing_payment": 24, "missing_invoice": 48, "missing_fulfillment": 72,
                        "unpaid_fulfillment": 24, "orphan_record": 24, "status_conflict": 48,
                        "missing_enrichment": 24, "amount_mismatch": 0, "currency_mismatch": 0,
                        "duplicate_record": 0, "customer_mismatch": 0},
        "severity": {"default": "medium", "critical_amount": 1000,
                     "by_diff_type": {"missing_invoice": "high", "unpaid_fulfillment": "high",
                                      "duplicate_record": "high", "status_conflict": "high",
                                      "missing_enrichment": "low", "customer_mismatch": "low"}},
    }
    owners = {
        "by_diff_type": {"missing_payment": "payments-ops", "missing_invoice": "revenue-ops",
                         "missing_fulfillment": "fulfillment-ops", "unpaid_fulfillment": "revenue-ops",
                         "amount_mismatch": "revenue-ops", "currency_mismatch": "revenue-ops",
                         "duplicate_record": "payments-ops", "status_conflict": "revenue-ops",
                         "customer_mismatch": "validation-ops", "missing_enrichment": "validation-ops",
                         "contract_violation": "data-engineering"},
        "orphan_record_by_role": {"payments": "payments-ops", "invoices": "revenue-ops",
                                  "fulfillments": "fulfillment-ops"},
        "by_state": {"RECEIVED": "validation-ops", "VALIDATED": "payments-ops", "PAID": "revenue-ops",
                     "INVOICED": "fulfillment-ops", "FULFILLED": "revenue-ops", "RECONCILED": "revenue-ops",
                     "CANCELLED": "payments-ops", "REFUNDED": "revenue-ops", "ON_HOLD": "data-engineering"},
        "fallback": "data-engineering",
    }
    roles = {"orders": ["shop"], "payments": ["psp"], "invoices": ["erp"], "fulfillments": ["wms"],
             "customers": ["crm"]}
    out: dict[str, Any] = {"recon": {"systems": systems, "roles": roles, "rules": rules, "owners": owners,
                                      "catalogue": catalogue.dbt_vars()}}
    if as_of_date:
        out["as_of_date"] = as_of_date
    return out


# ---- raw data --------------------------------------------------------------------------------------

AIRBYTE_COLUMNS = (
    "_airbyte_raw_id varchar, _airbyte_extracted_at timestamptz, _airbyte_meta json, "
    "_airbyte_generation_id bigint, _ab_source_file_url varchar, _ab_source_file_last_modified timestamptz"
)


def _epoch(ts: str) -> int:
    import datetime as dt

    return int(dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC).timestamp())


def create_raw_tables(db_path: Path, landed_through: dict[str, str] | None = None) -> None:
    """Write the demo raw tables: a small, hand-checked scenario per rule (see the expectations below).

    Args:
        db_path: the DuckDB file.
        landed_through: per system, the file modification time (UTC) of the last landed file; defaults
            to 2026-10-05 20:00 for every system.
    """
    landed = {s: ["2026-10-05 20:00:00", "2026-10-06 20:00:00"] for s in ("shop", "psp", "erp", "wms", "crm")}
    landed.update({s: [t] for s, t in (landed_through or {}).items()})
    con = duckdb.connect(str(db_path))
    n = [0]

    def meta(file_time: str) -> list[Any]:
        n[0] += 1
        return [f"raw-{n[0]:04d}", f"{file_time}+00", "{}", 1, "file:///drop/x", f"{file_time}+00"]

    for schema in ("raw_shop", "raw_psp", "raw_erp", "raw_wms", "raw_crm", "recon_meta"):
        con.execute(f"create schema if not exists {schema}")
    con.execute(f"""create or replace table raw_shop.orders (order_number varchar, customer json, state varchar,
        currency varchar, total double, lines json, created_at varchar, updated_at varchar, {AIRBYTE_COLUMNS})""")
    con.execute(f"""create or replace table raw_psp.charges (id varchar, metadata json, customer varchar,
        status varchar, currency varchar, amount bigint, created bigint, updated bigint, {AIRBYTE_COLUMNS})""")
    con.execute(f"""create or replace table raw_psp.refunds (id varchar, metadata json, status varchar,
        currency varchar, amount bigint, created bigint, {AIRBYTE_COLUMNS})""")
    con.execute(f"""create or replace table raw_erp.documents ("DocNo" varchar, "SalesOrder" varchar,
        "Customer" varchar, "DocType" varchar, "Status" varchar, "Curr" varchar, "NetAmount" varchar,
        "DocDate" varchar, "ChangedOn" varchar, {AIRBYTE_COLUMNS})""")
    con.execute(f"""create or replace table raw_wms.shipments (shipment_ref varchar, order_no varchar,
        kind varchar, status varchar, qty_lines integer, event_time timestamptz, modified_time timestamptz,
        {AIRBYTE_COLUMNS})""")
    con.execute(f"""create or replace table raw_crm.accounts ("AccountId" varchar, "Segment" varchar,
        "Plan" varchar, "AccountOwner" varchar, "ModifiedDate" varchar, {AIRBYTE_COLUMNS})""")
    con.execute("""create or replace table recon_meta.landed_files (system varchar, stream varchar,
        file_path varchar, file_modified_at timestamptz, file_size bigint, records_landed bigint,
        records_quarantined bigint, sync_id varchar, landed_at timestamptz)""")

    ft = "2026-10-05 20:00:00"  # file time of the rows below (visible as of 2026-10-05)

    def order(no: str, cust: str | None, state: str, total: float, lines: int, created: str,
              updated: str | None = None, currency: str = "eur", file_time: str = ft) -> None:
        con.execute("insert into raw_shop.orders values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            no, json.dumps({"id": cust}) if cust else json.dumps({}), state, currency, total,
            json.dumps([{"sku": i} for i in range(lines)]), created, updated or created, *meta(file_time)])

    def charge(pid: str, order_no: str, cust: str | None, amount_minor: int, at: str, status: str = "succeeded",
               currency: str = "eur", file_time: str = ft, updated: str | None = None) -> None:
        con.execute("insert into raw_psp.charges values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            pid, json.dumps({"order_id": order_no}), cust or "", status, currency, amount_minor, _epoch(at),
            _epoch(updated or at), *meta(file_time)])

    def refund(pid: str, order_no: str, amount_minor: int, at: str) -> None:
        con.execute("insert into raw_psp.refunds values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            pid, json.dumps({"order_id": order_no}), "succeeded", "eur", amount_minor, _epoch(at), *meta(ft)])

    def document(doc: str, order_no: str, cust: str, kind: str, amount: str, changed_berlin: str,
                 status: str = "Posted") -> None:
        con.execute("insert into raw_erp.documents values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            doc, order_no, cust, kind, status, "eur", amount, "01.10.2026", changed_berlin, *meta(ft)])

    def shipment(ref: str, order_no: str, lines: int, at: str, status: str = "delivered") -> None:
        con.execute("insert into raw_wms.shipments values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            ref, order_no, "SHIP", status, lines, f"{at}+00", f"{at}+00", *meta(ft)])

    for cust in ("C1", "C2"):
        con.execute("insert into raw_crm.accounts values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [cust, "smb", "pro", "anna", "2026-09-01T00:00:00Z", *meta(ft)])
    con.execute("insert into raw_crm.accounts values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ["C3", "", "pro", "anna", "2026-09-01T00:00:00Z", *meta(ft)])

    # O1: clean. Order time with an offset (+02:00), ERP change time in Berlin local time.
    order("O1", "C1", "placed", 100.0, 2, "2026-10-01T12:00:00+02:00")
    charge("ch_1", "O1", "C1", 10000, "2026-10-01 10:05:00")
    document("INV-1", "O1", "C1", "INV", "100.00", "2026-10-01 14:00:00")
    shipment("S1", "O1", 2, "2026-10-02 09:00:00")
    # O2: no payment, ordered 2026-10-04 12:00 -> due 2026-10-05 (grace 24h): missing_payment.
    order("O2", "C1", "open", 40.0, 1, "2026-10-04T12:00:00Z")
    # O2b: no payment, ordered 2026-10-05 01:00 -> due 2026-10-06: nothing yet.
    order("O2b", "C1", "open", 40.0, 1, "2026-10-05T01:00:00Z")
    # O3: paid 2026-10-02, fulfilled, never invoiced -> missing_invoice (48h).
    order("O3", "C2", "placed", 50.0, 1, "2026-10-02T08:00:00Z")
    charge("ch_3", "O3", "C2", 5000, "2026-10-02 09:00:00")
    shipment("S3", "O3", 1, "2026-10-02 12:00:00")
    # O4: charge 1.00 short of the total (tolerance 0.02) -> amount_mismatch/payments.
    order("O4", "C1", "placed", 80.0, 1, "2026-10-02T08:00:00Z")
    charge("ch_4", "O4", "C1", 7900, "2026-10-02 09:00:00")
    document("INV-4", "O4", "C1", "INV", "80.00", "2026-10-02 12:00:00")
    shipment("S4", "O4", 1, "2026-10-02 12:00:00")
    # O5: charged twice (retry) -> duplicate_record/payments, not also amount_mismatch.
    order("O5", "C1", "placed", 30.0, 1, "2026-10-02T08:00:00Z")
    charge("ch_5a", "O5", "C1", 3000, "2026-10-02 09:00:00")
    charge("ch_5b", "O5", "C1", 3000, "2026-10-02 09:01:00")
    document("INV-5", "O5", "C1", "INV", "30.00", "2026-10-02 12:00:00")
    shipment("S5", "O5", 1, "2026-10-02 12:00:00")
    # O6: a charge for an order the shop lacks -> orphan_record/psp.
    charge("ch_6", "O6", "C1", 1234, "2026-10-02 09:00:00")
    # O7: cancelled 2026-10-02 with a captured, unrefunded charge -> status_conflict/payments.
    order("O7", "C1", "placed", 20.0, 1, "2026-10-01T08:00:00Z")
    order("O7", "C1", "canceled", 20.0, 1, "2026-10-01T08:00:00Z", "2026-10-02T08:00:00Z")
    charge("ch_7", "O7", "C1", 2000, "2026-10-01 09:00:00")
    # O8: partial refund without credit note -> status_conflict/erp.
    order("O8", "C1", "placed", 100.0, 1, "2026-10-01T08:00:00Z")
    charge("ch_8", "O8", "C1", 10000, "2026-10-01 09:00:00")
    refund("re_8", "O8", 2000, "2026-10-02 09:00:00")
    document("INV-8", "O8", "C1", "INV", "100.00", "2026-10-01 12:00:00")
    shipment("S8", "O8", 1, "2026-10-01 12:00:00")
    # O9: partial refund with its credit note -> clean.
    order("O9", "C1", "placed", 100.0, 1, "2026-10-01T08:00:00Z")
    charge("ch_9", "O9", "C1", 10000, "2026-10-01 09:00:00")
    refund("re_9", "O9", 2000, "2026-10-02 09:00:00")
    document("INV-9", "O9", "C1", "INV", "100.00", "2026-10-01 12:00:00")
    document("CRN-9", "O9", "C1", "CRN", "-20.00", "2026-10-02 12:00:00")
    shipment("S9", "O9", 1, "2026-10-01 12:00:00")
    # O10: no customer anywhere (NULL is never a mismatch nor missing enrichment) -> RECONCILED... except
    # that the customers role is configured and the customer is absent: RECEIVED, without a diff.
    order("O10", None, "placed", 10.0, 1, "2026-10-01T08:00:00Z")
    charge("ch_10", "O10", None, 1000, "2026-10-01 09:00:00")
    document("INV-10", "O10", "", "INV", "10.00", "2026-10-01 12:00:00")
    shipment("S10", "O10", 1, "2026-10-01 12:00:00")
    # O11: USD charge for an EUR order within the FX tolerance (100.50 USD = 92.46 EUR vs 92.00) -> clean.
    order("O11", "C1", "placed", 92.0, 1, "2026-10-01T08:00:00Z")
    charge("ch_11", "O11", "C1", 10050, "2026-10-01 09:00:00", currency="usd")
    document("INV-11", "O11", "C1", "INV", "92.00", "2026-10-01 12:00:00")
    shipment("S11", "O11", 1, "2026-10-01 12:00:00")
    # O12: CHF charge, no CHF->EUR rate -> currency_mismatch/psp (amount at risk = total).
    order("O12", "C1", "placed", 60.0, 1, "2026-10-01T08:00:00Z")
    charge("ch_12", "O12", "C1", 6000, "2026-10-01 09:00:00", currency="chf")
    document("INV-12", "O12", "C1", "INV", "60.00", "2026-10-01 12:00:00")
    shipment("S12", "O12", 1, "2026-10-01 12:00:00")
    # O13: order of customer C3 (no segment in the CRM) -> missing_enrichment.
    order("O13", "C3", "placed", 10.0, 1, "2026-10-01T08:00:00Z")
    charge("ch_13", "O13", "C3", 1000, "2026-10-01 09:00:00")
    document("INV-13", "O13", "C3", "INV", "10.00", "2026-10-01 12:00:00")
    shipment("S13", "O13", 1, "2026-10-01 12:00:00")
    # O14: paid on day 5, file landed after the cutoff of day 5: invisible as of 2026-10-05
    # -> unpaid_fulfillment as of 2026-10-05 (shipped 2026-10-04), clean as of 2026-10-06.
    order("O14", "C1", "placed", 15.0, 1, "2026-10-03T08:00:00Z")
    charge("ch_14", "O14", "C1", 1500, "2026-10-05 23:00:00", file_time="2026-10-06 01:00:00")
    document("INV-14", "O14", "C1", "INV", "15.00", "2026-10-05 12:00:00")
    shipment("S14", "O14", 1, "2026-10-04 12:00:00")

    for system, modified_times in landed.items():
        for modified in modified_times:
            con.execute("insert into recon_meta.landed_files values (?, 'x', 'f', ?, 1, 1, 0, 's', ?)",
                        [system, f"{modified}+00", f"{modified}+00"])
    con.close()


# ---- dbt -------------------------------------------------------------------------------------------


class DbtEnv:
    """One isolated dbt project copy + DuckDB file + target path per test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.project = tmp / "dbt_project"
        self.db = tmp / "warehouse.duckdb"
        lay_out_project(self.project, DBT_PROJECT, recon_vars())

    def dbt(self, *args: str, as_of: str | None = None, check: bool = True,
            recon: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> DbtOutcome:
        """One dbt command, run in this process as the platform runs it: the day in RECON_AS_OF_DATE (so the
        vars, and dbt's partial parse, stay the same from day to day), the database in RECON_DUCKDB_PATH."""
        env = {"RECON_DUCKDB_PATH": str(self.db), AS_OF_DATE_ENV: as_of or "", **(env or {})}  # "": no day
        vars_ = recon_vars()
        if recon is not None:
            vars_["recon"] = recon
        outcome = invoke([*args, "--no-send-anonymous-usage-stats", "--no-use-colors",
                          "--project-dir", str(self.project), "--profiles-dir", str(self.project),
                          "--target-path", str(self.tmp / "target"), "--log-path", str(self.tmp / "logs"),
                          "--vars", json.dumps(vars_)],
                         env=env)
        if check and outcome.returncode != 0:
            raise AssertionError(f"dbt {' '.join(args)} failed:\n{outcome.stdout[-6000:]}")
        return outcome

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


def diffs_of(env: DbtEnv, day: str) -> set[tuple[str, str, str]]:
    rows = env.query(f"select order_id, diff_type, system from marts.fct_order_diffs where as_of_date = date '{day}'")
    return set(rows)


EXPECTED_DAY5 = {
    ("O2", "missing_payment", "psp"),
    ("O3", "missing_invoice", "erp"),
    ("O4", "amount_mismatch", "psp"),
    ("O5", "duplicate_record", "psp"),
    ("O6", "orphan_record", "psp"),
    ("O7", "status_conflict", "psp"),
    ("O8", "status_conflict", "erp"),
    ("O12", "currency_mismatch", "psp"),
    ("O13", "missing_enrichment", "crm"),
    ("O14", "unpaid_fulfillment", "wms"),
}


# ---- fast tests (no dbt run) -----------------------------------------------------------------------


def test_codegen_is_deterministic_and_removes_stale_files(tmp_path: Path) -> None:
    vars_ = recon_vars()
    assert render_files(vars_) == render_files(copy.deepcopy(vars_))
    assert write_generated_files(tmp_path, vars_) is True
    assert write_generated_files(tmp_path, vars_) is False
    gen = tmp_path / GENERATED_DIR
    assert (gen / "stg_psp__charges.sql").read_text().strip().endswith("{{ stage_stream('psp', 'charges') }}")
    smaller = copy.deepcopy(vars_)
    del smaller["recon"]["systems"]["psp"]["streams"]["refunds"]
    assert write_generated_files(tmp_path, smaller) is True
    assert not (gen / "stg_psp__refunds.sql").exists()
    sources = yaml.safe_load((gen / "_sources.yml").read_text())["sources"]
    psp = next(s for s in sources if s["name"] == "raw_psp")
    assert [t["meta"]["dagster"]["asset_key"] for t in psp["tables"]] == [["raw", "psp", "charges"]]


def test_each_config_gets_its_own_project_folder_and_the_committed_one_is_never_written(tmp_path: Path) -> None:
    before = sorted(p.relative_to(DBT_PROJECT) for p in DBT_PROJECT.rglob("*") if "target" not in p.parts
                    and "logs" not in p.parts)
    first, second = tmp_path / "a" / "project", tmp_path / "b" / "project"
    vars_ = recon_vars()
    smaller = copy.deepcopy(vars_)
    del smaller["recon"]["systems"]["psp"]["streams"]["refunds"]
    assert lay_out_project(first, DBT_PROJECT, vars_) is True
    assert lay_out_project(second, DBT_PROJECT, smaller) is True
    assert lay_out_project(first, DBT_PROJECT, vars_) is False  # unchanged: dbt's partial parse stays valid
    for folder in (first, second):
        assert (folder / "dbt_project.yml").resolve() == (DBT_PROJECT / "dbt_project.yml").resolve()
        assert (folder / "macros").is_symlink() and (folder / "models").is_symlink()
    assert (first / GENERATED_DIR / "stg_psp__refunds.sql").exists()
    assert not (second / GENERATED_DIR / "stg_psp__refunds.sql").exists()
    after = sorted(p.relative_to(DBT_PROJECT) for p in DBT_PROJECT.rglob("*") if "target" not in p.parts
                   and "logs" not in p.parts)
    assert after == before
    (first / "models").unlink()
    (first / "models").mkdir()  # something that is not our link is never overwritten
    with pytest.raises(FileExistsError, match="models exists and is not a link"):
        lay_out_project(first, DBT_PROJECT, vars_)


# ---- dbt runs --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_build_rules_reruns_and_history(tmp_path: Path) -> None:
    env = DbtEnv(tmp_path)
    create_raw_tables(env.db)

    # Full build of day 5, unit tests and data tests included.
    env.dbt("build", as_of="2026-10-05")
    assert diffs_of(env, "2026-10-05") == EXPECTED_DAY5

    states = dict(env.query("select order_id, state from marts.fct_orders"))
    assert states["O1"] == "RECONCILED"
    assert states["O9"] == "RECONCILED"
    assert states["O11"] == "RECONCILED"
    assert states["O6"] == "ON_HOLD"
    assert states["O7"] == "CANCELLED"
    assert states["O10"] == "RECEIVED"
    assert states["O2"] == "VALIDATED"
    assert states["O3"] == "PAID"
    assert states["O12"] == "FULFILLED"  # unconvertible charge: a currency_mismatch, not REFUNDED
    assert states["O8"] == "FULFILLED"
    staged = env.query("select updated_at, amount from staging.stg_erp__documents where invoice_id = 'CRN-9'")
    assert str(staged[0][0]) == "2026-10-02 10:00:00" and str(staged[0][1]) == "20.0000"
    staged = env.query("select ordered_at from staging.stg_shop__orders where order_id = 'O1'")
    assert str(staged[0][0]) == "2026-10-01 10:00:00"

    snapshot = env.query("select * exclude (diff_id) from marts.fct_order_diffs order by all")
    ids = env.query("select diff_id from marts.fct_order_diffs order by all")

    # Day 6: O14's charge has landed; O2b is now due.
    env.dbt("run", as_of="2026-10-06")
    day6 = diffs_of(env, "2026-10-06")
    assert not {d for d in day6 if d[0] == "O14"}
    assert ("O2b", "missing_payment", "psp") in day6
    first_seen = dict(env.query(
        "select order_id, first_seen_date::varchar from marts.fct_order_diffs "
        "where as_of_date = date '2026-10-06' and diff_type = 'missing_payment'"))
    assert first_seen == {"O2": "2026-10-05", "O2b": "2026-10-06"}
    day6_rows = env.query("select * from marts.fct_order_diffs where as_of_date = date '2026-10-06' order by all")

    # Rerun (backfill) day 5: identical rows for day 5, day 6 untouched.
    env.dbt("run", as_of="2026-10-05")
    assert env.query("select * exclude (diff_id) from marts.fct_order_diffs "
                     "where as_of_date = date '2026-10-05' order by all") == snapshot
    assert env.query("select diff_id from marts.fct_order_diffs where as_of_date = date '2026-10-05' "
                     "order by all") == ids
    assert env.query("select * from marts.fct_order_diffs where as_of_date = date '2026-10-06' "
                     "order by all") == day6_rows
    assert env.query("select count(*) from marts.fct_system_freshness")[0][0] == 10

    # The key tests catch a broken key: a repeated order, and a null one, fail primary_key.
    con = duckdb.connect(str(env.db))
    con.execute("insert into intermediate.int_orders_aggregated select * from intermediate.int_orders_aggregated "
                "where order_id = 'O1'")
    con.execute("insert into intermediate.int_payments_current select * replace (cast(null as varchar) as payment_id) "
                "from intermediate.int_payments_current limit 1")
    con.close()
    proc = env.dbt("test", "--select", "int_orders_aggregated,test_type:data", "int_payments_current,test_type:data",
                   as_of="2026-10-05", check=False)
    assert proc.returncode != 0
    assert "FAIL 1 primary_key_int_orders_aggregated_order_id" in proc.stdout
    assert "FAIL 1 primary_key_int_payments_current_source_system__source_stream__payment_id" in proc.stdout


@pytest.mark.slow
def test_stale_source_suppresses_and_holds(tmp_path: Path) -> None:
    env = DbtEnv(tmp_path)
    # erp last delivered on 2026-10-03 and its rows are older: stale as of 2026-10-05 (24 h).
    create_raw_tables(env.db, landed_through={"erp": "2026-10-03 20:00:00"})
    con = duckdb.connect(str(env.db))
    con.execute("""delete from raw_erp.documents where "ChangedOn" >= '2026-10-03'""")
    con.close()
    env.dbt("run", as_of="2026-10-05")
    diffs = diffs_of(env, "2026-10-05")
    assert ("O3", "missing_invoice", "erp") not in diffs
    assert ("O8", "status_conflict", "erp") not in diffs
    assert ("O2", "missing_payment", "psp") in diffs
    held = dict(env.query("select order_id, hold_reason from marts.fct_orders where state = 'ON_HOLD'"))
    assert held["O3"] == "stale source: erp"
    assert env.query("select is_stale from marts.fct_system_freshness where system = 'erp'") == [(True,)]

    # An empty result for the day replaces the day's earlier rows.
    con = duckdb.connect(str(env.db))
    con.execute("delete from raw_shop.orders; delete from raw_psp.charges; delete from raw_psp.refunds;"
                "delete from raw_erp.documents; delete from raw_wms.shipments")
    con.close()
    env.dbt("run", as_of="2026-10-05")
    assert diffs_of(env, "2026-10-05") == set()


@pytest.mark.slow
def test_missing_as_of_date_fails_clearly(tmp_path: Path) -> None:
    env = DbtEnv(tmp_path)
    create_raw_tables(env.db)
    env.dbt("parse")  # parsing needs no day (dagster-dbt prepares the manifest without one)
    proc = env.dbt("run", "--select", "int_system_freshness", check=False)
    assert proc.returncode != 0
    assert "as_of_date" in proc.stdout


def test_the_duckdb_target_takes_the_configs_memory_limit(tmp_path: Path) -> None:
    # recon sets RECON_DUCKDB_MEMORY_LIMIT from project.duckdb_memory_limit (set_dbt_env); profiles.yml
    # hands it to DuckDB, whose default it is otherwise.
    env = DbtEnv(tmp_path)
    create_raw_tables(env.db)
    show = ["show", "--inline", "select current_setting('memory_limit') as memory_limit"]
    assert "1.0 GiB" in env.dbt(*show, env={"RECON_DUCKDB_MEMORY_LIMIT": "1GiB"}).stdout
    default = duckdb.connect().execute("select current_setting('memory_limit')").fetchall()[0][0]
    assert default != "1.0 GiB" and default in env.dbt(*show, env={"RECON_DUCKDB_MEMORY_LIMIT": "80%"}).stdout


@pytest.mark.slow
def test_manual_match_relinks_an_orphan_record(tmp_path: Path) -> None:
    env = DbtEnv(tmp_path)
    create_raw_tables(env.db)
    con = duckdb.connect(str(env.db))
    con.execute("""
        create schema recon;
        create table recon.manual_matches (match_id varchar primary key, exception_id varchar, system varchar,
            record_order_id varchar, matched_order_id varchar, actor varchar, note varchar, matched_at timestamp);
        insert into recon.manual_matches values
            ('m1', 'x', 'psp', 'O6', 'O2', 'ana', 'typo in the order number', timestamp '2026-10-05 09:00:00');
    """)
    con.close()
    env.dbt("run", as_of="2026-10-05")
    diffs = diffs_of(env, "2026-10-05")
    assert ("O6", "orphan_record", "psp") not in diffs
    assert ("O2", "missing_payment", "psp") not in diffs  # the matched charge pays O2 now
    relinked = env.query("select distinct order_id from intermediate.int_payments_unioned "
                         "where source_system = 'psp' and order_id in ('O6', 'O2')")
    assert relinked == [("O2",)]
