"""The exception store: owned, SLA'd units of work made from diffs (DESIGN.md section 6).

Identity is deterministic from (order_id, diff_type, system), so reruns never duplicate. Updates
move forward only: a diff seen as of day D changes an exception only when D is not older than the
day the exception last saw. Every change is an event in the append-only ``exception_events`` table
(actor, time, from -> to status and owner, reason). Running the same day twice writes nothing the
second time.

Lifecycle: open -> acknowledged -> resolved (a person, with a note) / auto_resolved (the diff
vanished) / accepted (a known difference; stays closed while the difference stays the same). A
vanished diff that comes back reopens the same exception; so does a manually resolved one that is
still there on a later day. Humans act through :func:`acknowledge`, :func:`assign`, :func:`resolve`,
:func:`accept`, :func:`reopen` and :func:`match_orphan`; the clock acts through :func:`escalate`.

The nightly sync is planned by a pure function (:func:`plan_sync`) and then written in one
transaction together with the notifications it causes (a transactional outbox), so the dry run
(``dry_run.plan_exceptions``) shows exactly what the sync would do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb

from dagster_project.config.exceptions import DEFAULT_SLA_HOURS
from dagster_project.exceptions.read import OPEN_STATUSES, SCHEMA, find_exception, latest_as_of, rows
from dagster_project.exceptions.read import plain as _jsonable
from dagster_project.exceptions.routing import (
    DIFF_MODEL,
    OrderContext,
    Router,
    cutoff,
    load_order_contexts,
    relation_columns,
)
from dagster_project.lib.bulk_write import delete_keys, insert_rows

if TYPE_CHECKING:
    from dagster_project.config.model import ReconConfig

SYSTEM_ACTOR = "recon"
ROUTING_ACTOR = "recon-routing"
ESCALATION_ACTOR = "recon-escalation"


_EXCEPTION_COLUMNS = """
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
    accepted_value varchar"""

# Columns added after the first release; `ensure_schema` adds them to older databases.
_ADDED_EXCEPTION_COLUMNS = (
    ("role", "varchar"),
    ("state", "varchar"),
    ("dbt_model", "varchar"),
    ("lineage", "json"),
    ("routing_rule", "varchar"),
    ("base_owner", "varchar"),
    ("owner_source", "varchar"),
    ("owner_until", "timestamp"),
    ("next_owner", "varchar"),
    ("next_routing_rule", "varchar"),
    ("escalation_level", "integer"),
    ("matched_order_id", "varchar"),
    ("opened_at", "timestamp"),
    ("updated_at", "timestamp"),
)
_ADDED_EVENT_COLUMNS = (("from_owner", "varchar"), ("to_owner", "varchar"))

_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.exceptions ({_EXCEPTION_COLUMNS}
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
create table if not exists {SCHEMA}.manual_matches (
    match_id varchar primary key,
    exception_id varchar not null,
    system varchar not null,
    record_order_id varchar not null,
    matched_order_id varchar not null,
    actor varchar not null,
    note varchar,
    matched_at timestamp not null
);
"""

_EVENT_COLUMNS = ["event_id", "exception_id", "as_of_date", "event_type", "actor", "from_status", "to_status",
                  "from_owner", "to_owner", "reason", "details", "recorded_at"]


class TransitionError(ValueError):
    """A human action that the exception's status does not allow."""


class _Counts:
    """A pass's counts; ``as_metadata``: its whole-number fields, as Dagster metadata."""

    def as_metadata(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


@dataclass
class SyncStats(_Counts):
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
    handed_over: int = 0
    notifications: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PlannedChange:
    """One exception the sync would open, update, reopen, resolve, hold or hand over."""

    action: str
    exception_id: str
    order_id: str
    diff_type: str
    system: str
    from_status: str | None
    to_status: str | None
    owner: str | None
    severity: str | None
    amount_at_risk: Any
    reason: str
    changes: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (_jsonable(v)) for k, v in self.__dict__.items()}


@dataclass
class SyncPlan:
    """The writes one as-of day needs (pure: computing it touches nothing)."""

    stats: SyncStats
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    changes: list[PlannedChange] = field(default_factory=list)


def exception_id(order_id: str, diff_type: str, system: str) -> str:
    """Deterministic identity of an exception."""
    return hashlib.sha256(f"{order_id}\x1f{diff_type}\x1f{system}".encode()).hexdigest()[:20]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the exception tables if they do not exist, and add columns newer releases need."""
    con.execute(_DDL)
    for name, dtype in _ADDED_EXCEPTION_COLUMNS:
        con.execute(f"alter table {SCHEMA}.exceptions add column if not exists {name} {dtype}")
    for name, dtype in _ADDED_EVENT_COLUMNS:
        con.execute(f"alter table {SCHEMA}.exception_events add column if not exists {name} {dtype}")


_MATERIAL = ("severity", "amount_at_risk", "expected_value", "actual_value", "customer_id")
_DIFF_COLUMNS = (
    "order_id", "customer_id", "diff_type", "system", "role", "severity", "amount_at_risk", "currency",
    "expected_value", "actual_value", "systems_involved", "rule", "reproduce_sql", "reproduce_command",
    "first_seen_date",
)


_rows = rows  # kept for callers of the first release


def _event(ex_id: str, as_of: dt.date | None, kind: str, old: str | None, new: str | None, reason: str,
           details: dict[str, Any] | None = None, actor: str = SYSTEM_ACTOR, from_owner: str | None = None,
           to_owner: str | None = None, recorded_at: dt.datetime | None = None,
           unique: str = "") -> dict[str, Any]:
    """An event row. Nightly events hash to the same id on a rerun; human ones add their time."""
    seed = (f"{ex_id}|{as_of}|{kind}|{old}|{new}|{reason}|"
            f"{json.dumps(details, sort_keys=True, default=str)}")
    if from_owner is not None or to_owner is not None:
        seed += f"|{from_owner}|{to_owner}"
    seed += unique
    return {
        "event_id": hashlib.sha256(seed.encode()).hexdigest()[:24],
        "exception_id": ex_id,
        "as_of_date": as_of,
        "event_type": kind,
        "actor": actor,
        "from_status": old,
        "to_status": new,
        "from_owner": from_owner,
        "to_owner": to_owner,
        "reason": reason,
        "details": json.dumps(_jsonable(details or {}), sort_keys=True),
        "recorded_at": recorded_at,
    }


def sla_hours_for(config: ReconConfig | None, sla_hours: dict[str, float] | None = None) -> dict[str, float]:
    """Due hours per severity: defaults, then the config's ``sla`` section, then an explicit override."""
    base = dict(DEFAULT_SLA_HOURS)
    if config is not None:
        base.update(config.sla.hours_by_severity)
    return {**base, **(sla_hours or {})}


def _due_at(as_of: dt.date, severity: str | None, sla_hours: dict[str, float]) -> dt.datetime:
    hours = sla_hours.get(severity or "medium", sla_hours.get("medium", 72))
    return cutoff(as_of) + dt.timedelta(hours=hours)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# ---- lineage ------------------------------------------------------------------------------------


def load_stream_syncs(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """When each stream of each system last synced, from ``recon_meta.landed_files`` (empty if absent)."""
    if not relation_columns(con, "recon_meta", "landed_files"):
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for system, stream, landed, modified in con.execute(
        "select system, stream, max(landed_at)::timestamp, max(file_modified_at)::timestamp "
        "from recon_meta.landed_files group by system, stream order by system, stream"
    ).fetchall():
        out.setdefault(system, []).append(
            {"system": system, "stream": stream, "last_synced_at": landed, "last_file_modified_at": modified})
    return out


def _systems_of(row: dict[str, Any]) -> list[str]:
    """The systems a diff (or exception) read: its ``systems_involved`` (from the dbt rule) and its system."""
    systems: list[str] = []
    for part in f"{row.get('systems_involved') or ''},{row.get('system') or ''}".replace("+", ",").split(","):
        if part.strip() and part.strip() not in systems:
            systems.append(part.strip())
    return systems


def _lineage(diff: dict[str, Any], syncs: dict[str, list[dict[str, Any]]]) -> str:
    systems = _systems_of(diff)
    streams = [s for system in systems for s in syncs.get(system, [{"system": system, "stream": None,
                                                                  "last_synced_at": None,
                                                                  "last_file_modified_at": None}])]
    return json.dumps(_jsonable({
        "dbt_model": diff.get("dbt_model") or DIFF_MODEL,
        "rule": diff.get("rule"),
        "streams": streams,
    }), sort_keys=True)


# ---- the nightly sync ---------------------------------------------------------------------------


def plan_sync(
    existing: dict[str, dict[str, Any]],
    as_of: dt.date,
    diffs: list[dict[str, Any]],
    stale_systems: set[str],
    systems_by_role: dict[str, list[str]],
    *,
    router: Router,
    sla: dict[str, float],
    contexts: dict[str, OrderContext] | None = None,
    stream_syncs: dict[str, list[dict[str, Any]]] | None = None,
    now: dt.datetime | None = None,
) -> SyncPlan:
    """What one as-of day does to the exceptions, without writing anything.

    Args:
        existing: the current exceptions by id.
        as_of: the as-of day of the diffs.
        diffs: that day's rows of ``marts.fct_order_diffs``.
        stale_systems: systems stale as of the day; their exceptions are held, not auto-resolved.
        systems_by_role: configured systems per role (kept for callers; the systems a diff depends on
            come with the diff itself, in ``systems_involved``).
        router: picks owners for opened and reopened exceptions.
        sla: due hours per severity.
        contexts: each order's state, segment and last writer (for routing).
        stream_syncs: when each stream last synced (for lineage).
        now: the wall-clock time stamped on new rows.

    Returns:
        The rows to insert and update, the events, the counts and a change list for the dry run.
    """
    contexts = contexts or {}
    stream_syncs = stream_syncs or {}
    now = now or _now()
    at = cutoff(as_of)
    stats = SyncStats(as_of_date=as_of, diffs=len(diffs))
    plan = SyncPlan(stats=stats)
    seen: set[str] = set()
    lineages: dict[tuple[Any, ...], str] = {}

    def change(action: str, row: dict[str, Any], old: str | None, new: str | None, reason: str,
               changes: dict[str, Any] | None = None) -> None:
        plan.changes.append(PlannedChange(action, row["exception_id"], row["order_id"], row["diff_type"],
                                          row["system"], old, new, row.get("owner"), row.get("severity"),
                                          row.get("amount_at_risk"), reason, changes))

    def routed(diff: dict[str, Any]) -> dict[str, Any]:
        route = router.route(diff, contexts.get(diff["order_id"]), at)
        context = contexts.get(diff["order_id"])
        return {"owner": route.owner, "base_owner": route.owner, "routing_rule": route.rule,
                "owner_source": "routing", "owner_until": route.owner_until, "next_owner": route.next_owner,
                "next_routing_rule": route.next_rule, "escalation_level": 0,
                "state": context.state if context else None}

    for diff in diffs:
        ex_id = exception_id(diff["order_id"], diff["diff_type"], diff["system"])
        if ex_id in seen:
            continue
        seen.add(ex_id)
        current = existing.get(ex_id)
        values = {k: diff.get(k) for k in _DIFF_COLUMNS}
        values["dbt_model"] = diff.get("dbt_model") or DIFF_MODEL
        lineage_key = (diff.get("systems_involved"), diff.get("system"), diff.get("dbt_model"), diff.get("rule"))
        if lineage_key not in lineages:  # one JSON per rule and systems, not one per diff
            lineages[lineage_key] = _lineage(diff, stream_syncs)
        values["lineage"] = lineages[lineage_key]
        if current is None:
            row = {**values, **routed(diff), "exception_id": ex_id, "status": "open", "last_seen_date": as_of,
                   "last_as_of_date": as_of, "opened_as_of_date": as_of,
                   "due_at": _due_at(as_of, diff.get("severity"), sla), "resolved_as_of_date": None,
                   "resolution_note": None, "accepted_value": None, "matched_order_id": None,
                   "opened_at": now, "updated_at": now}
            plan.inserts.append(row)
            plan.events.append(_event(ex_id, as_of, "opened", None, "open", f"{diff['diff_type']} found",
                                      {"expected": diff.get("expected_value"), "actual": diff.get("actual_value"),
                                       "amount_at_risk": diff.get("amount_at_risk"),
                                       "routing_rule": row["routing_rule"]},
                                      to_owner=row["owner"], recorded_at=now))
            change("open", row, None, "open", f"{diff['diff_type']} found")
            stats.opened += 1
            continue
        if as_of < current["last_as_of_date"]:
            stats.skipped_older += 1
            continue
        changed = {k: values[k] for k in _MATERIAL if _norm(values[k]) != _norm(current[k])}
        status = current["status"]
        new_row = {**current, **values, "last_seen_date": as_of, "last_as_of_date": as_of}
        new_row["first_seen_date"] = current["first_seen_date"]
        now_value = f"{diff.get('expected_value')}|{diff.get('actual_value')}"
        accepted = current.get("accepted_value")
        if status in ("accepted", "resolved") and accepted is not None:
            # Accepted (or matched by hand): closed while the difference stays the same.
            if accepted != now_value:
                new_row.update(status="open", accepted_value=None, resolved_as_of_date=None,
                               due_at=_due_at(as_of, diff.get("severity"), sla), **routed(diff))
                plan.events.append(_event(ex_id, as_of, "reopened", status, "open", "accepted difference changed",
                                          {"accepted": accepted, "now": now_value}, from_owner=current["owner"],
                                          to_owner=new_row["owner"], recorded_at=now))
                change("reopen", new_row, status, "open", "accepted difference changed")
                stats.reopened += 1
        elif status == "auto_resolved" or (
                status == "resolved" and as_of > (current["resolved_as_of_date"] or as_of)):
            reason = "diff is back" if status == "auto_resolved" else "diff still present after manual resolution"
            new_row.update(status="open", resolved_as_of_date=None,
                           due_at=_due_at(as_of, diff.get("severity"), sla), **routed(diff))
            plan.events.append(_event(ex_id, as_of, "reopened", status, "open", reason, changed or None,
                                      from_owner=current["owner"], to_owner=new_row["owner"], recorded_at=now))
            change("reopen", new_row, status, "open", reason, changed or None)
            stats.reopened += 1
        elif changed:
            if "severity" in changed:
                new_row["due_at"] = _due_at(current["opened_as_of_date"], diff.get("severity"), sla)
            plan.events.append(_event(ex_id, as_of, "updated", status, status, "diff changed",
                                      {k: {"from": current[k], "to": v} for k, v in changed.items()},
                                      recorded_at=now))
            change("update", new_row, status, status, "diff changed",
                   {k: {"from": current[k], "to": v} for k, v in changed.items()})
            stats.updated += 1
        handed = _handover(new_row, at, as_of, now)
        if handed is not None:
            new_row, event = handed
            plan.events.append(event)
            change("handover", new_row, new_row["status"], new_row["status"], event["reason"])
            stats.handed_over += 1
        if _same(new_row, current):
            stats.unchanged += 1
            continue
        new_row["updated_at"] = now
        plan.updates.append(new_row)

    for ex_id, current in existing.items():
        if ex_id in seen or current["status"] not in OPEN_STATUSES:
            continue
        if as_of < current["last_as_of_date"]:
            continue
        if current["last_seen_date"] >= as_of:
            continue
        # The same systems whose staleness suppresses the diff in dbt: the rule's systems_involved.
        held_by = stale_systems & set(_systems_of(current))
        if held_by:
            stats.held += 1
            change("hold", current, current["status"], current["status"],
                   f"stale source: {', '.join(sorted(held_by))}")
            continue
        new_row = {**current, "status": "auto_resolved", "resolved_as_of_date": as_of, "last_as_of_date": as_of,
                   "updated_at": now}
        plan.updates.append(new_row)
        plan.events.append(_event(ex_id, as_of, "auto_resolved", current["status"], "auto_resolved",
                                  "diff no longer present", recorded_at=now))
        change("auto_resolve", new_row, current["status"], "auto_resolved", "diff no longer present")
        stats.auto_resolved += 1
    stats.events = plan.events
    return plan


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = set(a) | set(b)
    return all(_norm(a.get(k)) == _norm(b.get(k)) for k in keys if k != "updated_at")


def _handover(row: dict[str, Any], at: dt.datetime, as_of: dt.date | None,
              now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """End a temporary (last-writer) ownership whose window closed by ``at``."""
    if (row.get("status") not in OPEN_STATUSES or row.get("owner_source") != "routing"
            or row.get("owner_until") is None or row["owner_until"] > at or not row.get("next_owner")):
        return None
    new_row = {**row, "owner": row["next_owner"], "base_owner": row["next_owner"],
               "routing_rule": row.get("next_routing_rule"), "owner_until": None, "next_owner": None,
               "next_routing_rule": None}
    reason = f"{row.get('routing_rule')} window ended at {row['owner_until']}"
    event = _event(row["exception_id"], as_of, "reassigned", row["status"], row["status"], reason,
                   {"routing_rule": new_row["routing_rule"]}, actor=ROUTING_ACTOR, from_owner=row["owner"],
                   to_owner=new_row["owner"], recorded_at=now)
    return new_row, event


def load_exceptions(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Every exception by id (empty when the store does not exist yet)."""
    if not relation_columns(con, SCHEMA, "exceptions"):
        return {}
    return {r["exception_id"]: r for r in rows(con, f"select * from {SCHEMA}.exceptions")}


def sync_exceptions(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    diffs: list[dict[str, Any]],
    stale_systems: set[str],
    systems_by_role: dict[str, list[str]],
    sla_hours: dict[str, float] | None = None,
    *,
    config: ReconConfig | None = None,
    now: dt.datetime | None = None,
    router: Router | None = None,
) -> SyncStats:
    """Open, update, reopen and auto-resolve exceptions from one as-of day's diffs.

    With a config, owners are routed (``routing``), due times follow ``sla``, notifications for
    the day's events are queued in the outbox in the same transaction, and the canonical state of
    each order is in ``marts.fct_order_state_history`` (written by dbt before this step).

    Args:
        con: an open DuckDB connection; the work is one transaction.
        as_of: the as-of day the diffs belong to.
        diffs: that day's rows of ``marts.fct_order_diffs`` (dicts).
        stale_systems: systems stale as of the day; their exceptions are held, not auto-resolved.
        systems_by_role: configured systems per role (kept for callers; the systems a diff depends on
            come with the diff itself, in ``systems_involved``).
        sla_hours: due time per severity; overrides the config's ``sla`` and DEFAULT_SLA_HOURS.
        config: the project config (routing, SLA, notifications); None keeps dbt's owner.
        now: wall-clock time for the rows written (default: now, UTC).
        router: a router to use instead of one built from the config.

    Returns:
        Counts of what changed, and the events written.
    """
    from dagster_project.notifications.outbox import enqueue_for_events

    now = now or _now()
    ensure_schema(con)
    router = router or Router(config)
    contexts = load_order_contexts(con, config, as_of, [d["order_id"] for d in diffs])
    syncs = load_stream_syncs(con)
    con.begin()
    try:
        existing = load_exceptions(con)
        plan = plan_sync(existing, as_of, diffs, stale_systems, systems_by_role, router=router,
                         sla=sla_hours_for(config, sla_hours), contexts=contexts, stream_syncs=syncs, now=now)
        _write(con, plan.inserts, plan.updates, plan.events, now)
        if config is not None:
            plan.stats.notifications = enqueue_for_events(con, config, plan.events, now)
        con.commit()
    except Exception:
        con.rollback()
        raise
    return plan.stats


def _norm(value: Any) -> Any:
    """Compare money as exact 4-place decimals and everything else as text."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).quantize(Decimal("0.0001"))
    return str(value)


def _write(con: duckdb.DuckDBPyConnection, inserts: list[dict[str, Any]], updates: list[dict[str, Any]],
           events: list[dict[str, Any]], now: dt.datetime | None = None) -> None:
    """Write exceptions and events in bulk, each column typed as its table declares it.

    Updates are a delete and an insert of the whole row. Money is never typed by inference: the
    rows go through an Arrow table whose schema is read from the table (``lib.bulk_write``), so an
    amount as large as ``amount_at_risk``'s DECIMAL(20,4) allows is stored exactly wherever it
    comes in the batch.

    Args:
        con: the connection holding the writer's transaction.
        inserts: new exception rows.
        updates: changed exception rows (whole rows).
        events: event rows; those without ``recorded_at`` get ``now``.
        now: the time stamped on events that carry none (default: now, UTC).

    Raises:
        BulkWriteError: a value that does not fit its column (named in the message).
    """
    delete_keys(con, SCHEMA, "exceptions", "exception_id", [u["exception_id"] for u in updates])
    insert_rows(con, SCHEMA, "exceptions", [*inserts, *updates])
    if events:
        stamp = now or _now()
        # Events of one write share a time; a microsecond apart keeps their order in the log.
        stamped = [{**e, "recorded_at": (e.get("recorded_at") or stamp) + dt.timedelta(microseconds=i)}
                   for i, e in enumerate(events)]
        insert_rows(con, SCHEMA, "exception_events", stamped, _EVENT_COLUMNS, ignore_conflicts=True)


# ---- human actions ------------------------------------------------------------------------------


_VERBS = {"acknowledged": "acknowledge", "assigned": "assign", "resolved": "resolve", "accepted": "accept",
          "reopened": "reopen", "matched": "match"}


def _human_action(con: duckdb.DuckDBPyConnection, ref: str, kind: str, allowed: tuple[str, ...],
                  to_status: str | None, actor: str, note: str | None, *, changes: dict[str, Any] | None = None,
                  to_owner: str | None = None, now: dt.datetime | None = None,
                  config: ReconConfig | None = None, require_note: bool = False,
                  extra_sql: tuple[str, list[Any]] | None = None) -> dict[str, Any]:
    from dagster_project.notifications.outbox import enqueue_for_events

    if not actor or not actor.strip():
        raise ValueError("an actor is required (who is doing this)")
    if require_note and not (note and note.strip()):
        raise ValueError(f"{kind} needs a note saying why")
    now = now or _now()
    con.begin()
    try:
        current = find_exception(con, ref)
        if current["status"] not in allowed:
            raise TransitionError(
                f"cannot {_VERBS.get(kind, kind)} exception {current['exception_id']}: it is {current['status']} "
                f"(allowed from: {', '.join(allowed)})")
        new_status = to_status or current["status"]
        new_row = {**current, **(changes or {}), "status": new_status, "updated_at": now}
        event = _event(current["exception_id"], latest_as_of(con), kind, current["status"], new_status,
                       note or "", {k: {"from": current.get(k), "to": v} for k, v in (changes or {}).items()},
                       actor=actor.strip(), from_owner=current["owner"] if to_owner else None,
                       to_owner=to_owner, recorded_at=now, unique=f"|{now.isoformat()}|{actor}")
        _write(con, [], [new_row], [event], now)
        if extra_sql is not None:
            con.execute(*extra_sql)
        if config is not None:
            enqueue_for_events(con, config, [event], now)
        con.commit()
    except Exception:
        con.rollback()
        raise
    return event


def acknowledge(con: duckdb.DuckDBPyConnection, ref: str, actor: str, note: str | None = None, *,
                now: dt.datetime | None = None, config: ReconConfig | None = None) -> dict[str, Any]:
    """open -> acknowledged: the owner has seen it and is on it."""
    return _human_action(con, ref, "acknowledged", ("open",), "acknowledged", actor, note, now=now, config=config)


def assign(con: duckdb.DuckDBPyConnection, ref: str, owner: str, actor: str, note: str | None = None, *,
           now: dt.datetime | None = None, config: ReconConfig | None = None) -> dict[str, Any]:
    """Give an open or acknowledged exception to another owner (routing no longer moves it)."""
    owner = owner.strip()
    if not owner:
        raise ValueError("give the new owner")
    changes = {"owner": owner, "base_owner": owner, "owner_source": "manual", "owner_until": None,
               "next_owner": None, "next_routing_rule": None, "routing_rule": "manual"}
    return _human_action(con, ref, "assigned", OPEN_STATUSES, None, actor, note, changes=changes,
                         to_owner=owner, now=now, config=config)


def resolve(con: duckdb.DuckDBPyConnection, ref: str, actor: str, note: str, *,
            now: dt.datetime | None = None, config: ReconConfig | None = None) -> dict[str, Any]:
    """open/acknowledged -> resolved, with a note. It reopens if the diff is still there on a later day."""
    latest = latest_as_of(con) if relation_columns(con, SCHEMA, "exceptions") else None
    changes = {"resolution_note": note, "resolved_as_of_date": latest}
    return _human_action(con, ref, "resolved", OPEN_STATUSES, "resolved", actor, note, changes=changes,
                         now=now, config=config, require_note=True)


def accept(con: duckdb.DuckDBPyConnection, ref: str, actor: str, note: str, *,
           now: dt.datetime | None = None, config: ReconConfig | None = None) -> dict[str, Any]:
    """open/acknowledged -> accepted: a known difference; stays closed while it stays the same."""
    current = find_exception(con, ref)
    latest = latest_as_of(con)
    changes = {"resolution_note": note, "resolved_as_of_date": latest,
               "accepted_value": f"{current.get('expected_value')}|{current.get('actual_value')}"}
    return _human_action(con, ref, "accepted", OPEN_STATUSES, "accepted", actor, note, changes=changes,
                         now=now, config=config, require_note=True)


def reopen(con: duckdb.DuckDBPyConnection, ref: str, actor: str, note: str, *,
           now: dt.datetime | None = None, config: ReconConfig | None = None) -> dict[str, Any]:
    """resolved/auto_resolved/accepted -> open, with a note; the SLA clock restarts now."""
    now = now or _now()
    current = find_exception(con, ref)
    hours = sla_hours_for(config).get(current.get("severity") or "medium", 72)
    changes = {"resolved_as_of_date": None, "accepted_value": None, "matched_order_id": None,
               "resolution_note": None, "due_at": now + dt.timedelta(hours=hours), "escalation_level": 0}
    return _human_action(con, ref, "reopened", ("resolved", "auto_resolved", "accepted"), "open", actor, note,
                         changes=changes, now=now, config=config, require_note=True)


def match_orphan(con: duckdb.DuckDBPyConnection, ref: str, order_id: str, actor: str, note: str, *,
                 now: dt.datetime | None = None, config: ReconConfig | None = None) -> dict[str, Any]:
    """Link an orphan record to an order by hand: resolves the orphan_record exception and records the match.

    The match is kept in ``recon.manual_matches`` (for the models and the timeline); the exception
    stays closed while the orphan diff stays the same, and reopens if it changes.
    """
    now = now or _now()
    order_id = order_id.strip()
    if not order_id:
        raise ValueError("give the order id to match the record to")
    current = find_exception(con, ref)
    if current["diff_type"] != "orphan_record":
        raise TransitionError(f"only orphan_record exceptions can be matched; this one is {current['diff_type']}")
    latest = latest_as_of(con)
    changes = {"matched_order_id": order_id, "resolution_note": note, "resolved_as_of_date": latest,
               "accepted_value": f"{current.get('expected_value')}|{current.get('actual_value')}"}
    match_id = hashlib.sha256(f"{current['exception_id']}|{order_id}|{now.isoformat()}".encode()).hexdigest()[:24]
    insert = (f"insert into {SCHEMA}.manual_matches values (?, ?, ?, ?, ?, ?, ?, ?)",
              [match_id, current["exception_id"], current["system"], current["order_id"], order_id,
               actor.strip() if actor else actor, note, now])
    return _human_action(con, ref, "matched", OPEN_STATUSES, "resolved", actor, note, changes=changes, now=now,
                         config=config, require_note=True, extra_sql=insert)


# ---- the clock: hand-over and escalation --------------------------------------------------------


@dataclass
class EscalationStats(_Counts):
    """What one escalation pass did."""

    checked: int = 0
    escalated: int = 0
    steps: int = 0
    handed_over: int = 0
    notifications: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


def escalate(con: duckdb.DuckDBPyConnection, config: ReconConfig, now: dt.datetime | None = None,
             router: Router | None = None, *, wall: dt.datetime | None = None) -> EscalationStats:
    """Hand over expired temporary owners and escalate breached exceptions along their chain.

    An exception past its due time climbs one step of its chain (``routing.escalation``) for every
    step whose ``after_hours`` have passed since the due time; each step is its own event, so the
    log shows the whole climb even when the sensor was off for a while. Running it again at the
    same time changes nothing.

    Args:
        con: an open DuckDB connection.
        config: the project config (routing chains, notifications).
        now: the SLA clock (naive UTC); default now. The nightly step passes the end of its as-of day.
        router: a router to use instead of one built from the config.
        wall: the wall-clock time stamped on the events (default now). Each event's as-of day is the
            day ``now`` ends (or falls in), so the event log reads on one clock: as-of day, then wall time.
    """
    from dagster_project.notifications.outbox import enqueue_for_events

    now = now or _now()
    wall = wall or _now()
    judged_as_of = (now - dt.timedelta(microseconds=1)).date()
    router = router or Router(config, dbt_owners={})
    stats = EscalationStats()
    ensure_schema(con)
    con.begin()
    try:
        candidates = rows(
            con, f"select * from {SCHEMA}.exceptions where status in ('open', 'acknowledged') "
                 "and (due_at <= ? or owner_until <= ?) order by exception_id", [now, now])
        updates, events = [], []
        for current in candidates:
            stats.checked += 1
            row = current
            handed = _handover(row, now, judged_as_of, wall)
            if handed is not None:
                row, event = handed
                events.append(event)
                stats.handed_over += 1
            if row.get("due_at") is not None and row["due_at"] <= now:
                chain = router.escalation_chain(row.get("base_owner") or row["owner"])
                level = int(row.get("escalation_level") or 0)
                climbed = False
                for index, step in enumerate(chain, start=1):
                    step_at = row["due_at"] + dt.timedelta(hours=step.after_hours)
                    if index <= level or step_at > now:
                        continue
                    reason = (f"SLA breached (due {row['due_at']:%Y-%m-%d %H:%M} UTC); "
                              f"escalation step {index}/{len(chain)}")
                    events.append(_event(row["exception_id"], judged_as_of, "escalated", row["status"],
                                         row["status"], reason, {"step": index, "step_at": step_at},
                                         actor=ESCALATION_ACTOR, from_owner=row["owner"], to_owner=step.owner,
                                         recorded_at=wall))
                    row = {**row, "owner": step.owner, "owner_source": "escalation", "escalation_level": index,
                           "owner_until": None, "next_owner": None}
                    stats.steps += 1
                    climbed = True
                stats.escalated += int(climbed)
            if row is not current:
                updates.append({**row, "updated_at": now})
        _write(con, [], updates, events, now)
        stats.notifications = enqueue_for_events(con, config, events, now)
        con.commit()
    except Exception:
        con.rollback()
        raise
    stats.events = events
    return stats
