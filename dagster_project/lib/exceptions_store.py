"""The exception store: owned, SLA'd units of work made from diffs (DESIGN.md section 6).

Identity is deterministic from (order_id, diff_type, system), so reruns never duplicate. Updates
move forward only: a diff seen as of day D changes an exception only when D is not older than the
day the exception last saw. Every change is an event in the append-only ``exception_events`` table.
Running the same day twice writes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd

SCHEMA = "recon"
OPEN_STATUSES = ("open", "acknowledged")
# Due time by severity, in hours from the end of the as-of day the exception opened.
DEFAULT_SLA_HOURS = {"critical": 4, "high": 24, "medium": 72, "low": 168}

# Roles whose data each diff type reads (docs/reconciliation-rules.md). An exception is held (not
# auto-resolved) on a day when any system of these roles is stale.
INVOLVED_ROLES: dict[str, tuple[str, ...]] = {
    "missing_payment": ("orders", "payments"),
    "missing_invoice": ("payments", "invoices"),
    "missing_fulfillment": ("payments", "fulfillments"),
    "unpaid_fulfillment": ("orders", "payments", "fulfillments"),
    "amount_mismatch": ("orders", "payments", "invoices"),
    "currency_mismatch": ("orders", "payments", "invoices"),
    "duplicate_record": ("orders", "payments", "invoices", "fulfillments"),
    "orphan_record": ("orders", "payments", "invoices", "fulfillments"),
    "status_conflict": ("orders", "payments", "invoices", "fulfillments"),
    "customer_mismatch": ("orders", "payments", "invoices"),
    "missing_enrichment": ("orders", "customers"),
    "contract_violation": (),
}

_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.exceptions (
    exception_id varchar primary key,
    order_id varchar not null,
    customer_id varchar,
    diff_type varchar not null,
    system varchar not null,
    status varchar not null,
    severity varchar,
    owner varchar,
    amount_at_risk decimal(20, 4),
    currency varchar,
    expected_value varchar,
    actual_value varchar,
    systems_involved varchar,
    rule varchar,
    reproduce_sql varchar,
    reproduce_command varchar,
    first_seen_date date not null,
    last_seen_date date not null,
    last_as_of_date date not null,
    opened_as_of_date date not null,
    due_at timestamp,
    resolved_as_of_date date,
    resolution_note varchar,
    accepted_value varchar
);
create table if not exists {SCHEMA}.exception_events (
    event_id varchar primary key,
    exception_id varchar not null,
    as_of_date date,
    event_type varchar not null,
    actor varchar not null,
    from_status varchar,
    to_status varchar,
    reason varchar,
    details json,
    recorded_at timestamp not null
);
"""


@dataclass
class SyncStats:
    """What one as-of day did to the exceptions."""

    as_of_date: dt.date
    diffs: int = 0
    opened: int = 0
    updated: int = 0
    reopened: int = 0
    auto_resolved: int = 0
    unchanged: int = 0
    held: int = 0
    skipped_older: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def as_metadata(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


def exception_id(order_id: str, diff_type: str, system: str) -> str:
    """Deterministic identity of an exception."""
    return hashlib.sha256(f"{order_id}\x1f{diff_type}\x1f{system}".encode()).hexdigest()[:20]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the exception tables if they do not exist."""
    con.execute(_DDL)


_MATERIAL = ("severity", "owner", "amount_at_risk", "expected_value", "actual_value", "customer_id")
_DIFF_COLUMNS = (
    "order_id", "customer_id", "diff_type", "system", "severity", "owner", "amount_at_risk", "currency",
    "expected_value", "actual_value", "systems_involved", "rule", "reproduce_sql", "reproduce_command",
    "first_seen_date",
)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _event(ex_id: str, as_of: dt.date, kind: str, old: str | None, new: str | None, reason: str,
           details: dict[str, Any] | None = None, actor: str = "recon") -> dict[str, Any]:
    seed = f"{ex_id}|{as_of}|{kind}|{old}|{new}|{reason}|{json.dumps(details, sort_keys=True, default=str)}"
    return {
        "event_id": hashlib.sha256(seed.encode()).hexdigest()[:24],
        "exception_id": ex_id,
        "as_of_date": as_of,
        "event_type": kind,
        "actor": actor,
        "from_status": old,
        "to_status": new,
        "reason": reason,
        "details": json.dumps(details or {}, sort_keys=True, default=str),
    }


def _due_at(as_of: dt.date, severity: str | None, sla_hours: dict[str, float]) -> dt.datetime:
    hours = sla_hours.get(severity or "medium", sla_hours.get("medium", 72))
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()) + dt.timedelta(hours=hours)


def sync_exceptions(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    diffs: list[dict[str, Any]],
    stale_systems: set[str],
    systems_by_role: dict[str, list[str]],
    sla_hours: dict[str, float] | None = None,
) -> SyncStats:
    """Open, update, reopen and auto-resolve exceptions from one as-of day's diffs.

    Args:
        con: an open DuckDB connection; the work is one transaction.
        as_of: the as-of day the diffs belong to.
        diffs: that day's rows of ``marts.fct_order_diffs`` (dicts).
        stale_systems: systems stale as of the day; their exceptions are held, not auto-resolved.
        systems_by_role: configured systems per role.
        sla_hours: due time per severity; defaults to DEFAULT_SLA_HOURS.

    Returns:
        Counts of what changed, and the events written.
    """
    sla = {**DEFAULT_SLA_HOURS, **(sla_hours or {})}
    stats = SyncStats(as_of_date=as_of, diffs=len(diffs))
    ensure_schema(con)
    con.begin()
    try:
        existing = {r["exception_id"]: r for r in _rows(con, f"select * from {SCHEMA}.exceptions")}
        seen: set[str] = set()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for diff in diffs:
            ex_id = exception_id(diff["order_id"], diff["diff_type"], diff["system"])
            seen.add(ex_id)
            current = existing.get(ex_id)
            values = {k: diff.get(k) for k in _DIFF_COLUMNS}
            if current is None:
                row = {**values, "exception_id": ex_id, "status": "open", "last_seen_date": as_of,
                       "last_as_of_date": as_of, "opened_as_of_date": as_of,
                       "due_at": _due_at(as_of, diff.get("severity"), sla), "resolved_as_of_date": None,
                       "resolution_note": None, "accepted_value": None}
                inserts.append(row)
                events.append(_event(ex_id, as_of, "opened", None, "open", f"{diff['diff_type']} found",
                                     {"expected": diff.get("expected_value"), "actual": diff.get("actual_value"),
                                      "amount_at_risk": diff.get("amount_at_risk")}))
                stats.opened += 1
                continue
            if as_of < current["last_as_of_date"]:
                stats.skipped_older += 1
                continue
            changed = {k: values[k] for k in _MATERIAL if _norm(values[k]) != _norm(current[k])}
            status = current["status"]
            new_row = {**current, **values, "last_seen_date": as_of, "last_as_of_date": as_of}
            new_row["first_seen_date"] = current["first_seen_date"]
            if status == "auto_resolved" or (status == "resolved" and as_of > (current["resolved_as_of_date"] or as_of)):
                reason = "diff is back" if status == "auto_resolved" else "diff still present after manual resolution"
                new_row.update(status="open", resolved_as_of_date=None,
                               due_at=_due_at(as_of, diff.get("severity"), sla))
                events.append(_event(ex_id, as_of, "reopened", status, "open", reason, changed or None))
                stats.reopened += 1
            elif status == "accepted":
                accepted = current.get("accepted_value")
                now_value = f"{diff.get('expected_value')}|{diff.get('actual_value')}"
                if accepted is not None and accepted != now_value:
                    new_row.update(status="open", accepted_value=None)
                    events.append(_event(ex_id, as_of, "reopened", status, "open",
                                         "accepted difference changed", {"accepted": accepted, "now": now_value}))
                    stats.reopened += 1
            elif changed:
                events.append(_event(ex_id, as_of, "updated", status, status, "diff changed",
                                     {k: {"from": current[k], "to": v} for k, v in changed.items()}))
                stats.updated += 1
            if new_row == current:
                stats.unchanged += 1
                continue
            updates.append(new_row)

        involved_systems = {
            diff_type: {s for role in roles for s in systems_by_role.get(role, [])}
            for diff_type, roles in INVOLVED_ROLES.items()
        }
        for ex_id, current in existing.items():
            if ex_id in seen or current["status"] not in OPEN_STATUSES:
                continue
            if as_of < current["last_as_of_date"]:
                continue
            if current["last_seen_date"] >= as_of:
                continue
            held_by = stale_systems & (involved_systems.get(current["diff_type"], set())
                                       | set(current["system"].split("+")))
            if held_by:
                stats.held += 1
                continue
            new_row = {**current, "status": "auto_resolved", "resolved_as_of_date": as_of, "last_as_of_date": as_of}
            updates.append(new_row)
            events.append(_event(ex_id, as_of, "auto_resolved", current["status"], "auto_resolved",
                                 "diff no longer present"))
            stats.auto_resolved += 1

        _write(con, inserts, updates, events)
        con.commit()
    except Exception:
        con.rollback()
        raise
    stats.events = events
    return stats


def _norm(value: Any) -> Any:
    """Compare money as exact 4-place decimals and everything else as text."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).quantize(Decimal("0.0001"))
    return str(value)


def _write(con: duckdb.DuckDBPyConnection, inserts: list[dict[str, Any]], updates: list[dict[str, Any]],
           events: list[dict[str, Any]]) -> None:
    """Write in bulk through registered data frames (row-by-row inserts are slow in DuckDB)."""
    columns = [d[0] for d in con.execute(f"select * from {SCHEMA}.exceptions limit 0").description]
    col_list = ", ".join(columns)
    if updates:
        ids = pd.DataFrame({"exception_id": [u["exception_id"] for u in updates]})
        con.register("_recon_updated_ids", ids)
        con.execute(f"delete from {SCHEMA}.exceptions where exception_id in "
                    "(select exception_id from _recon_updated_ids)")
        con.unregister("_recon_updated_ids")
    rows = [*inserts, *updates]
    if rows:
        frame = pd.DataFrame([[row.get(c) for c in columns] for row in rows], columns=columns, dtype=object)
        con.register("_recon_rows", frame)
        casts = ", ".join(f"cast({c} as {t})" for c, t in _column_types(con))
        con.execute(f"insert into {SCHEMA}.exceptions ({col_list}) select {casts} from _recon_rows")
        con.unregister("_recon_rows")
    if events:
        ev_cols = ["event_id", "exception_id", "as_of_date", "event_type", "actor", "from_status", "to_status",
                   "reason", "details"]
        frame = pd.DataFrame([[e[c] for c in ev_cols] for e in events], columns=ev_cols, dtype=object)
        con.register("_recon_events", frame)
        con.execute(
            f"insert into {SCHEMA}.exception_events ({', '.join(ev_cols)}, recorded_at) "
            "select event_id, exception_id, cast(as_of_date as date), event_type, actor, from_status, to_status, "
            "reason, cast(details as json), current_timestamp::timestamp from _recon_events "
            "on conflict do nothing"
        )
        con.unregister("_recon_events")


def _column_types(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [
        (name, dtype)
        for name, dtype in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = 'exceptions' order by ordinal_position",
            [SCHEMA],
        ).fetchall()
    ]
