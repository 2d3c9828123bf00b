"""Exception lifecycle against a real DuckDB file: open, rerun, auto-resolve, reopen, backfill, hold."""

from __future__ import annotations

import datetime as dt

import pytest

from dagster_project.lib.duckdb_resource import connect
from dagster_project.lib.exceptions_store import exception_id, sync_exceptions

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


def test_failure_rolls_back_everything(con, monkeypatch):
    import dagster_project.lib.exceptions_store as store

    sync_exceptions(con, D1, [diff()], set(), ROLES)
    before = (table(con, "exceptions"), table(con, "exception_events"))

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_column_types", boom)
    with pytest.raises(RuntimeError):
        sync_exceptions(con, D2, [diff(order_id="SO-2")], set(), ROLES)
    assert (table(con, "exceptions"), table(con, "exception_events")) == before
