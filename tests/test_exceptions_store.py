"""Exception lifecycle against a real DuckDB file: open, rerun, auto-resolve, reopen, backfill, hold."""

from __future__ import annotations

import datetime as dt

import pytest

from dagster_project.exceptions.store import exception_id, sync_exceptions
from dagster_project.lib.database import connect

D1, D2, D3, D4 = (dt.date(2026, 10, d) for d in (1, 2, 3, 4))
ROLES = {"orders": ["shop"], "payments": ["psp"], "invoices": ["erp"]}


def diff(order_id="SO-1", diff_type="missing_invoice", system="erp", amount=100, **extra):
    row = {
        "order_id": order_id, "customer_id": "CUS-1", "diff_type": diff_type, "system": system,
        "severity": "high", "owner": "revenue-ops", "amount_at_risk": amount, "currency": "EUR",
        "expected_value": "posted invoice", "actual_value": "none", "systems_involved": "psp,erp",
        "rule": diff_type, "reproduce_sql": "select 1", "reproduce_command": f"recon order {order_id}",
        "first_seen_date": D1,
    }
    row.update(extra)
    return row


@pytest.fixture
def con(tmp_path):
    connection = connect(tmp_path / "x.duckdb")
    yield connection
    connection.close()


def table(con, name):
    return con.execute(f"select * from recon.{name} order by all").fetchall()


def status(con, order_id="SO-1", diff_type="missing_invoice", system="erp"):
    return con.execute("select status from recon.exceptions where exception_id = ?",
                       [exception_id(order_id, diff_type, system)]).fetchall()[0][0]


def test_open_then_rerun_changes_nothing(con):
    stats = sync_exceptions(con, D1, [diff()], set(), ROLES)
    assert stats.opened == 1 and status(con) == "open"
    before = (table(con, "exceptions"), table(con, "exception_events"))
    again = sync_exceptions(con, D1, [diff()], set(), ROLES)
    assert again.opened == 0 and again.events == []
    assert (table(con, "exceptions"), table(con, "exception_events")) == before


def test_identity_is_deterministic_and_distinct():
    assert exception_id("SO-1", "missing_invoice", "erp") == exception_id("SO-1", "missing_invoice", "erp")
    assert exception_id("SO-1", "missing_invoice", "erp") != exception_id("SO-1", "missing_invoice", "erp2")
    # separators keep composite keys from colliding
    assert exception_id("SO-1a", "b", "c") != exception_id("SO-1", "ab", "c")


def test_persisting_diff_updates_only_on_material_change(con):
    sync_exceptions(con, D1, [diff()], set(), ROLES)
    quiet = sync_exceptions(con, D2, [diff()], set(), ROLES)
    assert quiet.updated == 0 and quiet.events == []
    loud = sync_exceptions(con, D3, [diff(amount=120)], set(), ROLES)
    assert loud.updated == 1 and loud.events[0]["event_type"] == "updated"
    assert con.execute("select last_seen_date, amount_at_risk from recon.exceptions").fetchall() == [(D3, 120)]


def test_vanished_diff_auto_resolves_and_reopens_when_back(con):
    sync_exceptions(con, D1, [diff()], set(), ROLES)
    gone = sync_exceptions(con, D2, [], set(), ROLES)
    assert gone.auto_resolved == 1 and status(con) == "auto_resolved"
    back = sync_exceptions(con, D3, [diff()], set(), ROLES)
    assert back.reopened == 1 and status(con) == "open"
    kinds = [r[0] for r in con.execute(
        "select event_type from recon.exception_events order by as_of_date").fetchall()]
    assert kinds == ["opened", "auto_resolved", "reopened"]
    assert con.execute("select count(*) from recon.exceptions").fetchall()[0][0] == 1


def test_backfill_of_an_older_day_never_regresses(con):
    sync_exceptions(con, D1, [diff()], set(), ROLES)
    sync_exceptions(con, D3, [diff()], set(), ROLES)
    before = (table(con, "exceptions"), table(con, "exception_events"))
    older = sync_exceptions(con, D2, [], set(), ROLES)  # the diff was absent on D2 in a backfill
    assert older.auto_resolved == 0
    older = sync_exceptions(con, D2, [diff(amount=5)], set(), ROLES)
    assert older.skipped_older == 1
    assert (table(con, "exceptions"), table(con, "exception_events")) == before


def test_stale_system_holds_instead_of_resolving(con):
    sync_exceptions(con, D1, [diff()], set(), ROLES)
    held = sync_exceptions(con, D2, [], {"erp"}, ROLES)
    assert held.held == 1 and status(con) == "open"
    resolved = sync_exceptions(con, D3, [], set(), ROLES)
    assert resolved.auto_resolved == 1


def test_accepted_stays_closed_while_the_difference_is_the_same(con):
    sync_exceptions(con, D1, [diff()], set(), ROLES)
    con.execute("update recon.exceptions set status = 'accepted', accepted_value = 'posted invoice|none'")
    same = sync_exceptions(con, D2, [diff()], set(), ROLES)
    assert same.reopened == 0 and status(con) == "accepted"
    changed = sync_exceptions(con, D3, [diff(actual_value="draft")], set(), ROLES)
    assert changed.reopened == 1 and status(con) == "open"


def test_manually_resolved_but_still_present_reopens_next_day(con):
    sync_exceptions(con, D1, [diff()], set(), ROLES)
    con.execute("update recon.exceptions set status = 'resolved', resolved_as_of_date = ?", [D2])
    same_day = sync_exceptions(con, D2, [diff()], set(), ROLES)
    assert same_day.reopened == 0 and status(con) == "resolved"
    next_day = sync_exceptions(con, D4, [diff()], set(), ROLES)
    assert next_day.reopened == 1 and status(con) == "open"


def test_failure_rolls_back_everything(con):
    from dagster_project.lib.bulk_write import BulkWriteError

    sync_exceptions(con, D1, [diff()], set(), ROLES)
    before = (table(con, "exceptions"), table(con, "exception_events"))
    # D2 changes SO-1 (its row is deleted, then rewritten) and brings an amount no DECIMAL(20,4) holds:
    # the write fails on it, naming the column, the exception and the value, and nothing of D2 remains.
    with pytest.raises(BulkWriteError, match=r"recon\.exceptions\.amount_at_risk: value 1e\+30 of row '"
                                             + exception_id("SO-2", "missing_invoice", "erp")):
        sync_exceptions(con, D2, [diff(amount=120), diff(order_id="SO-2", amount=1e30)], set(), ROLES)
    assert (table(con, "exceptions"), table(con, "exception_events")) == before


# ---- routing, SLA and lineage on open -------------------------------------------------------------

import datetime as _dt  # noqa: E402
import json  # noqa: E402

from dagster_project.exceptions import store  # noqa: E402
from dagster_project.runs.dry_run import plan_exceptions  # noqa: E402

NOW = _dt.datetime(2026, 10, 2, 3, 0)


def one(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()[0]


def events_of(con, kind=None):
    sql = "select event_type, actor, from_status, to_status, from_owner, to_owner, reason from recon.exception_events"
    rows = con.execute(sql + " order by recorded_at, event_id").fetchall()
    return [r for r in rows if kind is None or r[0] == kind]


@pytest.fixture
def cfg(demo_config):
    return demo_config


def test_config_routes_and_sets_sla_and_lineage_on_open(con, cfg):
    con.execute("create schema recon_meta")
    con.execute("create table recon_meta.landed_files (system varchar, stream varchar, file_path varchar, "
                "file_modified_at timestamptz, landed_at timestamptz)")
    con.execute("insert into recon_meta.landed_files values ('erp', 'documents', 'f', '2026-10-01 20:00+00', "
                "'2026-10-02 02:00+00')")
    sync_exceptions(con, D1, [diff(diff_type="missing_payment", system="psp", role="payments", severity="critical")],
                    set(), ROLES, config=cfg, now=NOW)
    sync_exceptions(con, D1, [diff(role="invoices")], set(), ROLES, config=cfg, now=NOW)
    owner, rule, due, lineage = one(con, "select owner, routing_rule, due_at, lineage from recon.exceptions "
                                         "where diff_type = 'missing_invoice'")
    assert (owner, rule) == ("revenue-ops", "billing")
    assert due == _dt.datetime(2026, 10, 3)  # high: 24 h after the end of D1
    lineage = json.loads(lineage)
    assert lineage["dbt_model"] == "fct_order_diffs" and lineage["rule"] == "missing_invoice"
    assert {"system": "erp", "stream": "documents", "last_synced_at": "2026-10-02T02:00:00",
            "last_file_modified_at": "2026-10-01T20:00:00"} in lineage["streams"]
    owner, due = one(con, "select owner, due_at from recon.exceptions where diff_type = 'missing_payment'")
    assert owner == "payments-ops" and due == _dt.datetime(2026, 10, 2, 4)  # critical: 4 h after the day


def test_sla_hours_come_from_config(con, cfg):
    custom = cfg.model_copy(update={"sla": cfg.sla.model_copy(update={"hours_by_severity": {
        **cfg.sla.hours_by_severity, "high": 10}})})
    sync_exceptions(con, D1, [diff()], set(), ROLES, config=custom, now=NOW)
    assert one(con, "select due_at from recon.exceptions")[0] == _dt.datetime(2026, 10, 2, 10)


def test_rerun_with_config_writes_nothing_twice(con, cfg):
    sync_exceptions(con, D1, [diff(role="invoices")], set(), ROLES, config=cfg, now=NOW)
    before = (table(con, "exceptions"), table(con, "exception_events"))
    again = sync_exceptions(con, D1, [diff(role="invoices")], set(), ROLES, config=cfg,
                            now=NOW + _dt.timedelta(hours=1))
    assert again.events == [] and again.unchanged == 1
    assert (table(con, "exceptions"), table(con, "exception_events")) == before


def test_backfills_never_duplicate_or_regress(con, cfg):
    days = [D1, D2, D3, D4]
    for day in days:
        sync_exceptions(con, day, [diff(role="invoices")] if day != D2 else [], set(), ROLES, config=cfg, now=NOW)
    before = (table(con, "exceptions"), table(con, "exception_events"))
    for day in days:  # backfill the whole range again, with and without the diff
        sync_exceptions(con, day, [diff(role="invoices")], set(), ROLES, config=cfg, now=NOW)
        sync_exceptions(con, day, [], set(), ROLES, config=cfg, now=NOW)
    after = (table(con, "exceptions"), table(con, "exception_events"))
    assert before[0] == after[0] and len(after[0]) == 1
    assert status(con) == "open"


# ---- human actions --------------------------------------------------------------------------------


def test_each_human_transition_records_actor_and_note(con, cfg):
    sync_exceptions(con, D1, [diff()], set(), ROLES, config=cfg, now=NOW)
    ex_id = exception_id("SO-1", "missing_invoice", "erp")
    minute = _dt.timedelta(minutes=1)
    store.acknowledge(con, ex_id[:8], "ann", "looking", now=NOW + minute)
    assert status(con) == "acknowledged"
    store.assign(con, ex_id, "billing-team", "ann", "theirs", now=NOW + 2 * minute)
    assert one(con, "select owner, owner_source from recon.exceptions") == ("billing-team", "manual")
    store.resolve(con, ex_id, "bob", "invoice posted by hand", now=NOW + 3 * minute)
    assert one(con, "select status, resolution_note, resolved_as_of_date from recon.exceptions") == (
        "resolved", "invoice posted by hand", D1)
    store.reopen(con, ex_id, "bob", "not posted after all", now=NOW + 4 * minute)
    assert status(con) == "open"
    store.accept(con, ex_id, "cat", "known ERP lag", now=NOW + 5 * minute)
    assert one(con, "select status, accepted_value from recon.exceptions") == ("accepted", "posted invoice|none")
    human = [e for e in events_of(con) if e[1] != "recon"]
    assert [(e[0], e[1], e[2], e[3], e[6]) for e in human] == [
        ("acknowledged", "ann", "open", "acknowledged", "looking"),
        ("assigned", "ann", "acknowledged", "acknowledged", "theirs"),
        ("resolved", "bob", "acknowledged", "resolved", "invoice posted by hand"),
        ("reopened", "bob", "resolved", "open", "not posted after all"),
        ("accepted", "cat", "open", "accepted", "known ERP lag"),
    ]
    assert human[1][4:6] == ("revenue-ops", "billing-team")


def test_invalid_transitions_and_missing_notes_are_refused(con, cfg):
    sync_exceptions(con, D1, [diff()], set(), ROLES, now=NOW)
    ex_id = exception_id("SO-1", "missing_invoice", "erp")
    with pytest.raises(store.TransitionError):
        store.reopen(con, ex_id, "ann", "why not")
    with pytest.raises(ValueError, match="note"):
        store.resolve(con, ex_id, "ann", "  ")
    with pytest.raises(ValueError, match="actor"):
        store.acknowledge(con, ex_id, "")
    with pytest.raises(LookupError):
        store.acknowledge(con, "nope", "ann")
    with pytest.raises(store.TransitionError, match="orphan"):
        store.match_orphan(con, ex_id, "SO-9", "ann", "same customer")
    store.acknowledge(con, ex_id, "ann")
    with pytest.raises(store.TransitionError):
        store.acknowledge(con, ex_id, "ann")
    assert status(con) == "acknowledged"


def test_manual_resolution_reopens_when_still_there_the_next_day(con):
    sync_exceptions(con, D1, [diff()], set(), ROLES, now=NOW)
    store.resolve(con, exception_id("SO-1", "missing_invoice", "erp"), "ann", "fixed", now=NOW)
    assert sync_exceptions(con, D1, [diff()], set(), ROLES).reopened == 0
    assert sync_exceptions(con, D2, [diff()], set(), ROLES).reopened == 1 and status(con) == "open"


def test_match_links_an_orphan_and_stays_closed_while_the_same(con):
    orphan = diff(order_id="PAY-SO-X", diff_type="orphan_record", system="psp", actual_value="charge ch_9")
    sync_exceptions(con, D1, [orphan], set(), ROLES, now=NOW)
    ex_id = exception_id("PAY-SO-X", "orphan_record", "psp")
    store.match_orphan(con, ex_id, "SO-7", "ann", "same customer and amount", now=NOW)
    assert status(con, "PAY-SO-X", "orphan_record", "psp") == "resolved"
    assert one(con, "select record_order_id, matched_order_id, actor, note from recon.manual_matches") == (
        "PAY-SO-X", "SO-7", "ann", "same customer and amount")
    assert sync_exceptions(con, D2, [orphan], set(), ROLES).reopened == 0
    changed = {**orphan, "actual_value": "charge ch_9 and ch_10"}
    assert sync_exceptions(con, D3, [changed], set(), ROLES).reopened == 1


# ---- escalation and hand-over with a controlled clock ---------------------------------------------


def test_escalation_climbs_the_chain_step_by_step(con, cfg):
    sync_exceptions(con, D1, [diff(diff_type="missing_payment", system="psp", role="payments", severity="medium")],
                    set(), ROLES, config=cfg, now=NOW)
    due = one(con, "select due_at from recon.exceptions")[0]  # medium: 72 h after the end of D1
    assert due == _dt.datetime(2026, 10, 5)
    assert store.escalate(con, cfg, due - _dt.timedelta(seconds=1)).steps == 0
    first = store.escalate(con, cfg, due)
    assert first.steps == 1 and one(con, "select owner, escalation_level from recon.exceptions") == ("ops-leads", 1)
    assert store.escalate(con, cfg, due + _dt.timedelta(hours=1)).steps == 0  # idempotent between steps
    # the sensor was off for 3 days: both remaining steps are recorded, in order
    late = store.escalate(con, cfg, due + _dt.timedelta(hours=80))
    assert late.steps == 2
    steps = events_of(con, "escalated")
    assert [(e[1], e[4], e[5]) for e in steps] == [
        ("recon-escalation", "payments-ops", "ops-leads"),
        ("recon-escalation", "ops-leads", "finance-controller"),
        ("recon-escalation", "finance-controller", "data-engineering"),
    ]
    assert "step 3/3" in steps[-1][6]
    assert store.escalate(con, cfg, due + _dt.timedelta(days=30)).steps == 0


def test_resolved_exceptions_do_not_escalate_and_owner_chain_is_per_owner(con, cfg):
    sync_exceptions(con, D1, [diff(role="invoices"), diff(order_id="SO-2", role="invoices")], set(), ROLES,
                    config=cfg, now=NOW)
    store.resolve(con, exception_id("SO-2", "missing_invoice", "erp"), "ann", "done", now=NOW)
    stats = store.escalate(con, cfg, _dt.datetime(2026, 10, 3, 1))
    assert stats.escalated == 1
    assert one(con, "select owner from recon.exceptions where order_id = 'SO-1'")[0] == "revenue-ops-lead"


def test_last_writer_owner_is_handed_over_when_the_window_ends(con, cfg):
    con.execute("create schema staging")
    con.execute("create table staging.stg_wms__shipments (order_id varchar, updated_at timestamp, "
                "available_at timestamp)")
    con.execute("insert into staging.stg_wms__shipments values ('SO-1', '2026-10-01 20:00', null)")
    missing_payment = diff(diff_type="missing_payment", system="psp", role="payments")
    sync_exceptions(con, D1, [missing_payment], set(), ROLES, config=cfg, now=NOW)
    assert one(con, "select owner, routing_rule, owner_until from recon.exceptions") == (
        "fulfillment-ops", "last_writer:wms", _dt.datetime(2026, 10, 2, 20))
    assert store.escalate(con, cfg, _dt.datetime(2026, 10, 2, 19)).handed_over == 0
    assert store.escalate(con, cfg, _dt.datetime(2026, 10, 2, 20)).handed_over == 1
    assert one(con, "select owner, routing_rule, owner_until from recon.exceptions") == (
        "payments-ops", "diff_type", None)
    ev = events_of(con, "reassigned")
    assert [(e[1], e[4], e[5]) for e in ev] == [("recon-routing", "fulfillment-ops", "payments-ops")]


def test_next_nightly_sync_also_hands_over(con, cfg):
    con.execute("create schema staging")
    con.execute("create table staging.stg_wms__shipments (order_id varchar, updated_at timestamp)")
    con.execute("insert into staging.stg_wms__shipments values ('SO-1', '2026-10-01 20:00')")
    missing_payment = diff(diff_type="missing_payment", system="psp", role="payments")
    sync_exceptions(con, D1, [missing_payment], set(), ROLES, config=cfg, now=NOW)
    stats = sync_exceptions(con, D2, [missing_payment], set(), ROLES, config=cfg, now=NOW)
    assert stats.handed_over == 1 and one(con, "select owner from recon.exceptions")[0] == "payments-ops"


# ---- dry run ----------------------------------------------------------------------------------------


def test_dry_run_plans_without_writing(con, cfg, tmp_path):
    sync_exceptions(con, D1, [diff(role="invoices"), diff(order_id="SO-2", role="invoices")], set(), ROLES,
                    config=cfg, now=NOW)
    con.close()
    from dagster_project.lib.database import connect as _connect

    ro = _connect(tmp_path / "x.duckdb", read_only=True)
    before = (table(ro, "exceptions"), table(ro, "exception_events"))
    new_rules = [diff(role="invoices", amount=500), diff(order_id="SO-3", diff_type="missing_payment",
                                                          system="psp", role="payments")]
    plan = plan_exceptions(ro, D2, new_rules, set(), cfg)
    assert [c.order_id for c in plan.opened] == ["SO-3"] and plan.opened[0].owner == "payments-ops"
    assert [c.order_id for c in plan.updated] == ["SO-1"]
    assert [c.order_id for c in plan.resolved] == ["SO-2"]
    assert (table(ro, "exceptions"), table(ro, "exception_events")) == before
    text = plan.render()
    assert "would open (1)" in text and "would auto-resolve (1)" in text
    assert plan.as_dict()["counts"]["open"] == 1
    ro.close()


def test_dry_run_matches_the_real_sync(con, cfg):
    sync_exceptions(con, D1, [diff(role="invoices")], set(), ROLES, config=cfg, now=NOW)
    day2 = [diff(order_id="SO-2", role="invoices")]
    plan = plan_exceptions(con, D2, day2, set(), cfg)
    stats = sync_exceptions(con, D2, day2, set(), ROLES, config=cfg, now=NOW)
    assert (len(plan.opened), len(plan.resolved)) == (stats.opened, stats.auto_resolved) == (1, 1)
