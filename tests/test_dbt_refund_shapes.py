"""Refunds and credit notes in their three shapes net alike (a real dbt run on a temporary DuckDB).

Every scenario is written three times, for three orders: refunds as records of their own (psp.refunds,
credit notes as ERP documents), as a refunded total on the charge (psp.charges_total,
``refunded_amount``; credited total on the invoice, ``credited_amount``), and as a list nested in the
charge (psp.charges_nested ``refunds.data``; ERP invoices_nested ``credit_notes``). The canonical order
(captured, refunded, credited, state) and the diffs of the three must be equal, and equal to the
expectation written by hand: partial, full and multiple refunds, a credit note just inside and just
outside the tolerance (0.01), a failed refund, and a refund dated after the as-of day.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_dbt_models import AIRBYTE_COLUMNS, DbtEnv, _epoch, _field, create_raw_tables, recon_vars

from dagster_project.dbt.dbt_codegen import write_generated_files

DAY = "2026-10-05"
FILE_TIME = "2026-10-05 20:00:00"  # every row below was delivered before the cutoff of DAY
CHARGED, INVOICED, SHIPPED = "2026-10-01 09:00:00", "2026-10-01 12:00:00", "2026-10-01 15:00:00"

# scenario -> (refunds: [(amount, at, status)], credit notes: [(amount, at)])
SCENARIOS: dict[str, tuple[list[tuple[str, str, str]], list[tuple[str, str]]]] = {
    "partial_matched": ([("20.00", "2026-10-02 09:00:00", "succeeded")], [("20.00", "2026-10-02 12:00:00")]),
    "partial_unmatched": ([("20.00", "2026-10-02 09:00:00", "succeeded")], []),
    "full_in_two": ([("60.00", "2026-10-02 09:00:00", "succeeded"), ("40.00", "2026-10-03 09:00:00", "succeeded")],
                    [("100.00", "2026-10-03 12:00:00")]),
    "inside_tolerance": ([("20.00", "2026-10-02 09:00:00", "succeeded")], [("19.99", "2026-10-02 12:00:00")]),
    "outside_tolerance": ([("20.00", "2026-10-02 09:00:00", "succeeded")], [("19.98", "2026-10-02 12:00:00")]),
    "failed_refund": ([("20.00", "2026-10-02 09:00:00", "failed")], []),
    "refund_after_day": ([("20.00", "2026-10-06 09:00:00", "succeeded")], []),
}
# scenario -> (state, refunded, credited, {(diff_type, system, amount_at_risk)})
EXPECTED: dict[str, tuple[str, str, str, set[tuple[str, str, str]]]] = {
    "partial_matched": ("RECONCILED", "20.0000", "20.0000", set()),
    "partial_unmatched": ("FULFILLED", "20.0000", "0.0000", {("status_conflict", "erp", "20.0000")}),
    "full_in_two": ("REFUNDED", "100.0000", "100.0000", set()),
    "inside_tolerance": ("RECONCILED", "20.0000", "19.9900", set()),
    "outside_tolerance": ("FULFILLED", "20.0000", "19.9800", {("status_conflict", "erp", "0.0200")}),
    "failed_refund": ("RECONCILED", "0.0000", "0.0000", set()),
    "refund_after_day": ("RECONCILED", "0.0000", "0.0000", set()),
}
SHAPES = ("separate", "total", "nested")


def shapes_vars(as_of: str | None = None) -> dict[str, Any]:
    """The test_dbt_models vars plus one charges and one invoices stream per embedded shape."""
    out = copy.deepcopy(recon_vars(as_of))
    psp, erp = out["recon"]["systems"]["psp"]["streams"], out["recon"]["systems"]["erp"]["streams"]
    charge_fields = {
        "payment_id": _field("id"), "order_id": _field("metadata.order_no"), "customer_id": _field("customer"),
        "kind": _field(None, value="charge"), "status": _field("status"), "currency": _field("currency", transform="upper"),
        "amount": _field("amount", type="decimal", unit="minor"),
        "captured_at": _field("created", type="timestamp", formats=["epoch_seconds"]),
        "updated_at": _field("updated", type="timestamp", formats=["epoch_seconds"]),
    }
    psp["charges_total"] = {"primary_key": ["id"], "cursor_field": "updated", "fields": {
        **charge_fields, "refunded_amount": _field("amount_refunded", type="decimal", unit="minor")}}
    psp["charges_nested"] = {"primary_key": ["id"], "cursor_field": "updated", "fields": {
        **charge_fields,
        "refunds": _field("refunds.data", type="json_array_length", id={"from": "id"},
                          amount={"from": "amount", "unit": "minor"},
                          at={"from": "created", "formats": ["epoch_seconds"]},
                          status={"from": "status", "values": {"succeeded": "succeeded", "failed": "failed"}})}}
    invoice_fields = {
        "invoice_id": _field("number"), "order_id": _field("order_ref"), "customer_id": _field("customer"),
        "kind": _field(None, value="invoice"), "status": _field("state"), "currency": _field("currency", transform="upper"),
        "amount": _field("total", type="decimal"), "issued_at": _field("issued", type="timestamp"),
        "updated_at": _field("changed", type="timestamp"),
    }
    erp["invoices_total"] = {"primary_key": ["number"], "cursor_field": "changed", "fields": {
        **invoice_fields, "credited_amount": _field("credited", type="decimal")}}
    erp["invoices_nested"] = {"primary_key": ["number"], "cursor_field": "changed", "fields": {
        **invoice_fields,
        "credit_notes": _field("credit_notes", type="json_array_length", id="no",
                               amount={"from": "amount", "type": "decimal"}, at={"from": "date"})}}
    return out


def write_shapes(db: Path) -> None:
    """Orders, charges, refunds, invoices, credit notes and shipments of every scenario in every shape."""
    con = duckdb.connect(str(db))
    n = [0]

    def meta() -> list[Any]:
        n[0] += 1
        return [f"shape-{n[0]:04d}", f"{FILE_TIME}+00", "{}", 1, "file:///drop/shapes", f"{FILE_TIME}+00"]

    con.execute(f"""create table raw_psp.charges_total (id varchar, metadata json, customer varchar, status varchar,
        currency varchar, amount bigint, amount_refunded bigint, created bigint, updated bigint, {AIRBYTE_COLUMNS})""")
    con.execute(f"""create table raw_psp.charges_nested (id varchar, metadata json, customer varchar, status varchar,
        currency varchar, amount bigint, refunds json, created bigint, updated bigint, {AIRBYTE_COLUMNS})""")
    for table, extra in (("invoices_total", "credited varchar"), ("invoices_nested", "credit_notes json")):
        con.execute(f"""create table raw_erp.{table} (number varchar, order_ref varchar, customer varchar,
            state varchar, currency varchar, total varchar, {extra}, issued varchar, changed varchar, {AIRBYTE_COLUMNS})""")

    def minor(amount: str) -> int:
        return int(Decimal(amount) * 100)

    for name, (refunds, credits) in SCENARIOS.items():
        for shape in SHAPES:
            order, charge, inv = f"{shape}-{name}", f"ch_{shape}_{name}", f"INV-{shape}-{name}"
            con.execute("insert into raw_shop.orders values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                order, json.dumps({"id": "C1"}), "placed", "eur", 100.0, json.dumps([{"sku": 1}]),
                "2026-10-01T08:00:00Z", "2026-10-01T08:00:00Z", *meta()])
            con.execute("insert into raw_wms.shipments values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                f"S-{order}", order, "SHIP", "delivered", 1, f"{SHIPPED}+00", f"{SHIPPED}+00", *meta()])
            succeeded = [r for r in refunds if r[2] == "succeeded"]
            if shape == "separate":
                con.execute("insert into raw_psp.charges values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    charge, json.dumps({"order_id": order}), "C1", "succeeded", "eur", 10000, _epoch(CHARGED),
                    _epoch(CHARGED), *meta()])
                for i, (amount, at, status) in enumerate(refunds):
                    con.execute("insert into raw_psp.refunds values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                        f"re_{shape}_{name}_{i}", json.dumps({"order_id": order}), status, "eur", minor(amount),
                        _epoch(at), *meta()])
                # ERP documents: change time in Berlin local time (UTC+2 in October)
                con.execute("insert into raw_erp.documents values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    inv, order, "C1", "INV", "Posted", "eur", "100.00", "01.10.2026", "2026-10-01 14:00:00", *meta()])
                for i, (amount, at) in enumerate(credits):
                    con.execute("insert into raw_erp.documents values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                        f"CRN-{shape}-{name}-{i}", order, "C1", "CRN", "Posted", "eur", f"-{amount}", "02.10.2026",
                        at.replace(" 12:", " 14:"), *meta()])
            elif shape == "total":
                # The charge's versions: as captured, then once per refund with the refunded total so far
                # (a refunded total is dated by the charge version that reports it).
                versions = [(0, CHARGED)]
                total = Decimal(0)
                for amount, at, _ in succeeded:
                    total += Decimal(amount)
                    versions.append((minor(str(total)), at))
                for refunded, updated in versions:
                    con.execute("insert into raw_psp.charges_total values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                        charge, json.dumps({"order_no": order}), "C1", "succeeded", "eur", 10000, refunded,
                        _epoch(CHARGED), _epoch(updated), *meta()])
                credited = sum((Decimal(a) for a, _ in credits), Decimal(0))
                changed = max([INVOICED] + [at for _, at in credits])
                con.execute("insert into raw_erp.invoices_total values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    inv, order, "C1", "posted", "eur", "100.00", str(credited) if credits else None,
                    INVOICED.replace(" ", "T") + "Z", changed.replace(" ", "T") + "Z", *meta()])
            else:
                # One version of the charge, as a Stripe list returns it today: every refund inside.
                nested = {"object": "list", "data": [
                    {"id": f"re_{shape}_{name}_{i}", "amount": minor(amount), "created": _epoch(at), "status": status}
                    for i, (amount, at, status) in enumerate(refunds)]}
                con.execute("insert into raw_psp.charges_nested values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    charge, json.dumps({"order_no": order}), "C1", "succeeded", "eur", 10000, json.dumps(nested),
                    _epoch(CHARGED), _epoch(CHARGED), *meta()])
                notes = [{"no": f"CRN-{shape}-{name}-{i}", "amount": amount, "date": at.replace(" ", "T") + "Z"}
                         for i, (amount, at) in enumerate(credits)]
                con.execute("insert into raw_erp.invoices_nested values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    inv, order, "C1", "posted", "eur", "100.00", json.dumps(notes), INVOICED.replace(" ", "T") + "Z",
                    INVOICED.replace(" ", "T") + "Z", *meta()])
    con.close()


@pytest.mark.slow
def test_refund_and_credit_shapes_net_alike(tmp_path: Path) -> None:
    env = DbtEnv(tmp_path)
    create_raw_tables(env.db)
    write_shapes(env.db)
    vars_ = shapes_vars(DAY)
    write_generated_files(env.project, vars_)
    env.dbt("run", as_of=DAY, recon=vars_["recon"])

    orders = {row[0]: row[1:] for row in env.query(
        "select order_id, state, captured_amount::varchar, refunded_amount::varchar, credited_amount::varchar "
        "from marts.fct_orders where order_id like 'separate-%' or order_id like 'total-%' or order_id like 'nested-%'")}
    diffs: dict[str, set[tuple[str, str, str]]] = {}
    for order_id, diff_type, system, at_risk in env.query(
            "select order_id, diff_type, system, amount_at_risk::varchar from marts.fct_order_diffs "
            "where as_of_date = ?", [DAY]):
        diffs.setdefault(order_id, set()).add((diff_type, system, at_risk))
    for name, (state, refunded, credited, expected_diffs) in EXPECTED.items():
        for shape in SHAPES:
            order = f"{shape}-{name}"
            assert orders[order] == (state, "100.0000", refunded, credited), (order, orders[order])
            assert diffs.get(order, set()) == expected_diffs, (order, diffs.get(order))

    # The nested list is staged as refunds of their own, with the charge's order and the refund's own time.
    staged = env.query("select payment_id, kind, status, order_id, amount::varchar, captured_at::varchar, "
                       "updated_at::varchar from staging.stg_psp__charges_nested "
                       "where order_id = 'nested-full_in_two' order by payment_id")
    assert staged == [
        ("ch_nested_full_in_two", "charge", "succeeded", "nested-full_in_two", "100.0000",
         "2026-10-01 09:00:00", "2026-10-01 09:00:00"),
        ("re_nested_full_in_two_0", "refund", "succeeded", "nested-full_in_two", "60.0000",
         "2026-10-02 09:00:00", "2026-10-02 09:00:00"),
        ("re_nested_full_in_two_1", "refund", "succeeded", "nested-full_in_two", "40.0000",
         "2026-10-03 09:00:00", "2026-10-03 09:00:00"),
    ]
    notes = env.query("select invoice_id, kind, status, amount::varchar from staging.stg_erp__invoices_nested "
                      "where order_id = 'nested-outside_tolerance' order by invoice_id")
    assert notes == [("CRN-nested-outside_tolerance-0", "credit_note", "posted", "19.9800"),
                     ("INV-nested-outside_tolerance", "invoice", "posted", "100.0000")]
