"""Reading the exception store for people: one exception by id or short prefix, an owner's queue, an event log.

Only DuckDB and the routing clock are imported here (no Dagster, no Arrow), so ``recon exceptions
list|show|queue`` and ``recon order`` start fast; the writes live in :mod:`dagster_project.exceptions.store`.

Two clocks, one meaning each (docs/exceptions.md#clocks): the **as-of day** is the day of data a
nightly run reconciled; the latest one in the store is "today" for an owner: an exception is
overdue when its due time is at or before the end of that day (the same test the escalation step
applies), whatever the wall clock says. ``recorded_at`` is the wall-clock time an action happened.
Event logs are ordered by as-of day, then wall-clock time, then event id.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb

from dagster_project.exceptions.routing import cutoff, relation_columns

SCHEMA = "recon"
OPEN_STATUSES = ("open", "acknowledged")
STATUSES = ("open", "acknowledged", "resolved", "auto_resolved", "accepted")
SEVERITIES = ("critical", "high", "medium", "low")
MIN_PREFIX = 4
SHORT_ID = 10  # printed ids: at 10 hex characters two of a million exceptions share one ~once in 2,000 stores

# An owner's order: past due first, then severity, then the largest amount within a currency (amounts in
# different currencies are never compared: the currency code sorts before the amount), then the earliest due.
QUEUE_ORDER = ("overdue desc, severity_rank, currency nulls last, amount_at_risk desc nulls last, "
               "due_at nulls last, exception_id")
_SEVERITY_RANK = "coalesce(list_position(['critical', 'high', 'medium', 'low'], severity), 5)"
# The as-of day of an event: its own, else (escalations written by older releases, stamped with the as-of
# clock, midnight plus a microsecond per event of the write, instead of the wall clock) the day whose end
# that clock was; those sort after the day's other events, as the nightly escalates after it syncs.
EVENT_AS_OF = "coalesce(as_of_date, cast(recorded_at - interval 1 minute as date))"


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Run a query and return its rows as dicts (the result is consumed)."""
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def plain(value: Any) -> Any:
    """A value ready for JSON: decimals as numbers, dates and times as ISO text, containers recursively."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def has_store(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the exception tables exist (no nightly run has written any yet otherwise)."""
    return relation_columns(con, SCHEMA, "exceptions") is not None


def latest_as_of(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The latest as-of day the store has seen (None before the first run)."""
    return con.execute(f"select max(last_as_of_date) from {SCHEMA}.exceptions").fetchall()[0][0]


def find_exception(con: duckdb.DuckDBPyConnection, ref: str) -> dict[str, Any]:
    """The exception with this id, or the only one whose id starts with ``ref`` (4+ characters).

    Raises:
        LookupError: no store, no such exception, a prefix too short, or a prefix several ids share
            (the message lists them).
    """
    ref = ref.strip().lower()
    if not has_store(con):
        raise LookupError("no exceptions yet")
    found = rows(con, f"select * from {SCHEMA}.exceptions where exception_id = ?", [ref])
    if found:
        return found[0]
    if len(ref) < MIN_PREFIX:
        raise LookupError(f"'{ref}' is too short for an exception id: give at least {MIN_PREFIX} characters")
    found = rows(con, f"select * from {SCHEMA}.exceptions where starts_with(exception_id, ?) "
                      "order by exception_id limit 6", [ref])
    if not found:
        raise LookupError(f"no exception id starts with '{ref}' (see `recon exceptions list`)")
    if len(found) > 1:
        listed = "; ".join(f"{x['exception_id']} ({x['order_id']} {x['diff_type']}@{x['system']})" for x in found[:5])
        more = " and more" if len(found) > 5 else ""
        raise LookupError(f"'{ref}' is the start of several exception ids: {listed}{more}; give more of the id")
    return found[0]


def _derived(as_of: dt.date | None) -> tuple[str, list[Any]]:
    """The store with ``age_days``, ``overdue``, ``short_id`` and ``severity_rank`` as of a day, as CTE ``x``."""
    sql = (f"with x as (select *, date_diff('day', first_seen_date, ?::date) as age_days, "
           f"coalesce(status in ('open', 'acknowledged') and due_at <= ?, false) as overdue, "
           f"left(exception_id, {SHORT_ID}) as short_id, {_SEVERITY_RANK} as severity_rank "
           f"from {SCHEMA}.exceptions) ")
    return sql, [as_of, cutoff(as_of) if as_of else None]


def list_exceptions(con: duckdb.DuckDBPyConnection, where: list[str], params: list[Any], limit: int | None,
                    as_of: dt.date | None = None) -> tuple[int, int, list[dict[str, Any]]]:
    """Exceptions matching SQL conditions, in the owner's order (:data:`QUEUE_ORDER`).

    Each row gains ``age_days`` (first seen to the as-of day), ``overdue`` (open or acknowledged and
    due by the end of the as-of day) and ``short_id``; conditions may use them.

    Args:
        con: an open connection.
        where: SQL conditions on the store's columns and the derived ones, values as ``?``.
        params: the values, in order.
        limit: at most this many rows (None: all).
        as_of: the as-of day (default: :func:`latest_as_of`).

    Returns:
        The number of matches, how many of them are past due, and the rows.
    """
    cte, args = _derived(as_of or latest_as_of(con))
    base = f"{cte}select * from x where {' and '.join(where or ['true'])}"
    args += params
    total, overdue = con.execute(f"select count(*), coalesce(count_if(overdue), 0) from ({base})", args).fetchall()[0]
    found = rows(con, f"{base} order by {QUEUE_ORDER}" + (" limit ?" if limit is not None else ""),
                 [*args, *([limit] if limit is not None else [])])
    for row in found:
        row.pop("severity_rank", None)
    return total, overdue, found


def events_of(con: duckdb.DuckDBPyConnection, exception_ids: list[str]) -> list[dict[str, Any]]:
    """Events of exceptions on one clock: by as-of day, then wall-clock time, then event id.

    Each event gains ``as_of_day`` (its as-of day; see :data:`EVENT_AS_OF`).
    """
    return rows(con, f"select *, {EVENT_AS_OF} as as_of_day from {SCHEMA}.exception_events "
                     "where exception_id in (select unnest(?::varchar[])) "
                     "order by as_of_day, as_of_date is null, recorded_at, event_id", [sorted(exception_ids)])


def queue_digest(con: duckdb.DuckDBPyConnection, owner: str, top: int) -> dict[str, Any]:
    """One owner's open queue as of the latest as-of day: counts, oldest due, money at risk, top items.

    Returns:
        ``as_of``, ``owner``, ``open`` and ``overdue`` (counts), ``by_severity`` (severity ->
        ``{"open", "overdue"}``, every severity listed), ``oldest_due`` (the earliest due time),
        ``money_at_risk`` (one row per currency, never summed across: ``currency``, ``exceptions``,
        ``amount``, ``overdue_amount``) and ``top`` (the first ``top`` exceptions in the owner's order).
    """
    as_of = latest_as_of(con)
    cte, args = _derived(as_of)
    mine = f"{cte}, q as (select * from x where owner = ? and status in ('open', 'acknowledged')) "
    args.append(owner)
    by_severity = {s: {"open": 0, "overdue": 0} for s in SEVERITIES}
    for severity, n, late in con.execute(f"{mine}select coalesce(severity, 'none'), count(*), count_if(overdue) "
                                         "from q group by all", args).fetchall():
        by_severity[severity] = {"open": n, "overdue": late}
    money = rows(con, f"{mine}select currency, count(*) as exceptions, sum(amount_at_risk) as amount, "
                      "coalesce(sum(amount_at_risk) filter (where overdue), 0) as overdue_amount "
                      "from q group by currency order by currency nulls last", args)
    oldest_due = con.execute(f"{mine}select min(due_at) from q", args).fetchall()[0][0]
    total, overdue, found = list_exceptions(con, ["owner = ?", "status in ('open', 'acknowledged')"], [owner], top,
                                            as_of)
    return {
        "as_of": as_of, "owner": owner, "open": total, "overdue": overdue,
        "by_severity": by_severity, "oldest_due": oldest_due, "money_at_risk": money, "top": found,
    }
