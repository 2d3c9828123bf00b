"""`recon order`: the order's whole timeline from records, states, diffs, exception events and matches."""

from __future__ import annotations

import datetime as dt

import pytest

from dagster_project.exceptions import store
from dagster_project.exceptions.timeline import build_timeline, render_timeline
from dagster_project.lib.database import connect

D1, D2, D3 = (dt.date(2026, 10, d) for d in (1, 2, 3))
ROLES = {"orders": ["shop"], "payments": ["psp"], "invoices": ["erp"], "fulfillments": ["wms"], "customers": ["crm"]}


def build_order_world(con) -> None:
    """SO-1: placed D1, charged D1 (pending -> succeeded), invoiced only on D3; a CRM record; three nights."""
    con.execute("create schema staging; create schema marts")
    con.execute("""create table staging.stg_shop__orders (order_id varchar, customer_id varchar, status varchar,
        currency varchar, total_amount decimal(20,4), line_count int, ordered_at timestamp, updated_at timestamp,
        available_at timestamp, _airbyte_raw_id varchar, _airbyte_extracted_at timestamp)""")
    con.execute("""create table staging.stg_psp__charges (payment_id varchar, order_id varchar, customer_id varchar,
        kind varchar, status varchar, currency varchar, amount decimal(20,4), updated_at timestamp,
        available_at timestamp, _airbyte_raw_id varchar, _airbyte_extracted_at timestamp)""")
    con.execute("""create table staging.stg_erp__documents (invoice_id varchar, order_id varchar, kind varchar,
        status varchar, currency varchar, amount decimal(20,4), updated_at timestamp, available_at timestamp,
        _airbyte_raw_id varchar, _airbyte_extracted_at timestamp)""")
    con.execute("""create table staging.stg_crm__accounts (customer_id varchar, segment varchar, plan varchar,
        updated_at timestamp, available_at timestamp, _airbyte_raw_id varchar, _airbyte_extracted_at timestamp)""")
    con.execute("insert into staging.stg_shop__orders values ('SO-1', 'C-1', 'placed', 'EUR', 100, 2, "
                "'2026-10-01 09:00', '2026-10-01 09:00', '2026-10-01 10:00', 'r1', '2026-10-02 01:00')")
    con.execute("insert into staging.stg_shop__orders values ('SO-2', 'C-2', 'placed', 'EUR', 5, 1, "
                "'2026-10-01 09:00', '2026-10-01 09:00', null, 'r9', '2026-10-02 01:00')")
    con.execute("insert into staging.stg_psp__charges values "
                "('ch_1', 'SO-1', 'C-1', 'charge', 'pending', 'EUR', 100, '2026-10-01 09:05', null, 'r2', "
                "'2026-10-02 01:00'),"
                "('ch_1', 'SO-1', 'C-1', 'charge', 'succeeded', 'EUR', 100, '2026-10-01 09:06', null, 'r3', "
                "'2026-10-02 01:00')")
    con.execute("insert into staging.stg_erp__documents values ('INV-1', 'SO-1', 'invoice', 'posted', 'EUR', 100, "
                "'2026-10-03 08:00', '2026-10-03 09:00', 'r4', '2026-10-04 01:00')")
    con.execute("insert into staging.stg_crm__accounts values ('C-1', 'smb', 'basic', '2026-09-01 00:00', null, "
                "'r5', '2026-10-02 01:00')")
    con.execute("""create table marts.fct_order_diffs (as_of_date date, order_id varchar, diff_type varchar,
        system varchar, severity varchar, expected_value varchar, actual_value varchar,
        amount_at_risk decimal(20,4), currency varchar, rule varchar)""")
    con.execute("insert into marts.fct_order_diffs values "
                "(?, 'SO-1', 'missing_invoice', 'erp', 'high', 'posted invoice', 'none', 100, 'EUR', 'r'),"
                "(?, 'SO-1', 'missing_invoice', 'erp', 'high', 'posted invoice', 'none', 100, 'EUR', 'r'),"
                "(?, 'SO-2', 'missing_payment', 'psp', 'medium', 'charge', 'none', 5, 'EUR', 'r')", [D1, D2, D3])
    con.execute("""create table marts.fct_orders (as_of_date date, order_id varchar, customer_id varchar,
        state varchar, hold_reason varchar, state_owner varchar, customer_segment varchar, currency varchar,
        total_amount decimal(20,4), net_paid_amount decimal(20,4), net_invoiced_amount decimal(20,4),
        fulfilled_lines bigint)""")
    # The order state history as dbt writes it: a row on each day a tracked figure changed (D2 changed none).
    con.execute("""create table marts.fct_order_state_history (as_of_date date, order_id varchar, state varchar,
        hold_reason varchar, state_owner varchar, customer_segment varchar)""")
    con.execute("insert into marts.fct_order_state_history values (?, 'SO-1', 'PAID', null, 'revenue-ops', 'smb'), "
                "(?, 'SO-1', 'RECONCILED', null, 'revenue-ops', 'smb')", [D1, D3])
    diff = {"order_id": "SO-1", "customer_id": "C-1", "diff_type": "missing_invoice", "system": "erp",
            "role": "invoices", "severity": "high", "owner": "revenue-ops", "amount_at_risk": 100, "currency": "EUR",
            "expected_value": "posted invoice", "actual_value": "none", "systems_involved": "psp,erp",
            "rule": "r", "reproduce_sql": "select 1", "reproduce_command": "recon order SO-1", "first_seen_date": D1}
    for day, state, diffs in ((D1, "PAID", [diff]), (D2, "PAID", [diff]), (D3, "RECONCILED", [])):
        con.execute("delete from marts.fct_orders")
        con.execute("insert into marts.fct_orders values (?, 'SO-1', 'C-1', ?, null, 'revenue-ops', 'smb', 'EUR', "
                    "100, 100, ?, 2)", [day, state, 100 if day == D3 else 0])
        store.sync_exceptions(con, day, diffs, set(), ROLES, now=dt.datetime.combine(day, dt.time(2)) +
                              dt.timedelta(days=1))
        if day == D1:
            store.acknowledge(con, store.exception_id("SO-1", "missing_invoice", "erp"), "ann", "chasing ERP",
                              now=dt.datetime(2026, 10, 2, 9))


@pytest.fixture
def world(tmp_path, demo_config):
    con = connect(tmp_path / "t.duckdb")
    build_order_world(con)
    yield con, demo_config
    con.close()


def test_timeline_has_records_states_diffs_and_events_in_order(world):
    con, config = world
    timeline = build_timeline(con, config, "SO-1")
    kinds = [(e["kind"], e["title"]) for e in timeline.entries]
    titles = [t for _, t in kinds]
    assert titles[0] == "crm/accounts C-1: segment smb plan basic"
    assert "shop/orders SO-1: placed EUR 100.00 2 line(s)" in titles[1]
    assert titles[2] == "psp/charges ch_1: charge pending EUR 100.00"
    assert titles[3] == "psp/charges ch_1: charge succeeded EUR 100.00 (status pending -> succeeded)"
    assert "canonical state PAID, state owner revenue-ops" in titles
    assert any(t.startswith("missing_invoice@erp seen as of 2026-10-01") for t in titles)
    assert "missing_invoice@erp gone as of 2026-10-03" in titles
    events = [t for k, t in kinds if k == "exception"]
    assert [t.split(" (")[0] for t in events] == [
        "missing_invoice@erp opened", "missing_invoice@erp acknowledged",
        "missing_invoice@erp auto_resolved"]
    assert "by ann: chasing ERP" in events[1]
    assert titles.index("canonical state RECONCILED, state owner revenue-ops") > titles.index("erp/documents INV-1: invoice posted EUR 100.00")
    ats = [e["at"] for e in timeline.entries]
    assert ats == sorted(ats)
    # the record landed later than it was written: the landing time is shown
    shop = next(e for e in timeline.entries if e["system"] == "shop")
    assert shop["details"]["landed_at"] == dt.datetime(2026, 10, 1, 10)
    text = render_timeline(timeline)
    assert "state RECONCILED as of 2026-10-03, state owner revenue-ops" in text and "[landed 2026-10-01 10:00]" in text


def test_as_of_shows_the_order_as_it_was(world):
    con, config = world
    timeline = build_timeline(con, config, "SO-1", as_of=D2)
    titles = [e["title"] for e in timeline.entries]
    assert not any("INV-1" in t for t in titles)  # invoiced on D3
    assert not any("RECONCILED" in t for t in titles)
    assert not any("auto_resolved" in t for t in titles)
    assert not any("gone" in t for t in titles)


def test_match_and_owner_changes_appear_on_both_orders(world):
    con, config = world
    orphan = {"order_id": "PAY-X", "customer_id": None, "diff_type": "orphan_record", "system": "psp",
              "role": "payments", "severity": "medium", "owner": "payments-ops", "amount_at_risk": 7,
              "currency": "EUR", "expected_value": "an order", "actual_value": "charge ch_7", "systems_involved": "",
              "rule": "r", "reproduce_sql": "", "reproduce_command": "", "first_seen_date": D3}
    store.sync_exceptions(con, D3, [orphan], set(), ROLES, now=dt.datetime(2026, 10, 4, 2))
    ex_id = store.exception_id("PAY-X", "orphan_record", "psp")
    store.assign(con, ex_id, "ann", "bob", "yours", now=dt.datetime(2026, 10, 4, 8))
    store.match_orphan(con, ex_id, "SO-1", "ann", "same amount and customer", now=dt.datetime(2026, 10, 4, 9))
    for order in ("SO-1", "PAY-X"):
        titles = [e["title"] for e in build_timeline(con, config, order).entries]
        assert any("matched to order SO-1 by ann" in t for t in titles)
        assert any("assigned (open, owner payments-ops -> ann) by bob" in t for t in titles)


def test_unknown_order_and_json(world):
    con, config = world
    empty = build_timeline(con, config, "NOPE")
    assert empty.entries == [] and empty.order is None
    assert "nothing known" in render_timeline(empty)
    data = build_timeline(con, config, "SO-1").as_dict()
    assert data["order"]["state"] == "RECONCILED" and isinstance(data["entries"][0]["at"], str)


def test_the_text_says_which_owner_is_which_and_reads_on_the_as_of_clock(world):
    con, config = world
    mismatch = {"order_id": "SO-1", "customer_id": "C-1", "diff_type": "amount_mismatch", "system": "psp",
                "role": "payments", "severity": "medium", "owner": "payments-ops", "amount_at_risk": 1234.5,
                "currency": "EUR", "expected_value": "100", "actual_value": "1334.5", "systems_involved": "shop,psp",
                "rule": "r", "reproduce_sql": "", "reproduce_command": "", "first_seen_date": D3}
    store.sync_exceptions(con, D3, [mismatch], set(), ROLES, now=dt.datetime(2026, 12, 1, 23, 0))
    timeline = build_timeline(con, config, "SO-1")
    text = render_timeline(timeline)
    assert "exception exception" not in text and "diff      diff" not in text
    assert "state RECONCILED as of 2026-10-03, state owner revenue-ops" in text
    assert "two kinds of owner: revenue-ops owns the order's state (RECONCILED" in text
    assert "EUR 1,234.50  owner payments-ops" in text
    opened = next(e for e in timeline.entries if e["title"].startswith("amount_mismatch@psp opened"))
    # on the as-of clock (the end of D3) like the diffs of D3, with the wall-clock time of the action beside it
    assert opened["at"] == dt.datetime(2026, 10, 4) and opened["details"]["recorded_at"] == dt.datetime(2026, 12, 1, 23)
    assert "amount_mismatch@psp opened (new -> open, owner payments-ops) by recon: amount_mismatch found  " \
           "[recorded 2026-12-01 23:00 UTC]" in text
