"""An order's whole timeline (``recon order ORDER_ID``).

One list, in time order, of: each system's records of the order as they were written and landed
(with status changes between versions of the same record), the canonical state over time and its
owner, every diff the rules found (when it appeared, changed and went away), every exception event
(opened, acknowledged, escalated, reassigned, resolved ...) and manual matches. Every query filters
on the order id, so the answer stays fast on large databases (see docs/exceptions.md, benchmark).

The canonical state over time comes from ``marts.fct_order_state_history`` (one row per day on which
an order's tracked figures changed), the one order-state history of the project.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from dagster_project.exceptions.read import SHORT_ID, events_of, plain, rows
from dagster_project.exceptions.routing import cutoff, relation_columns, staged_relations
from dagster_project.lib.money import format_money

if TYPE_CHECKING:
    from dagster_project.config.model import ReconConfig

STATE_HISTORY = "marts.fct_order_state_history"
_KIND_ORDER = {"record": 0, "state": 1, "diff": 2, "exception": 3, "match": 4}
_ID_COLUMNS = ("payment_id", "invoice_id", "fulfillment_id", "order_id", "customer_id")

@dataclass
class Timeline:
    """The order, its current exceptions and its entries in time order."""

    order_id: str
    as_of: dt.date | None
    order: dict[str, Any] | None
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return plain({"order_id": self.order_id, "as_of": self.as_of, "order": self.order,
                       "exceptions": self.exceptions, "entries": self.entries})


def _naive(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _entry(at: Any, kind: str, title: str, system: str | None = None, **details: Any) -> dict[str, Any]:
    return {"at": _naive(at), "kind": kind, "system": system, "title": title,
            "details": {k: v for k, v in details.items() if v is not None}}


def build_timeline(con: duckdb.DuckDBPyConnection, config: ReconConfig | None, order_id: str,
                   as_of: dt.date | None = None) -> Timeline:
    """Everything known about one order, in time order.

    Args:
        con: a (read-only) connection to the reconciliation database.
        config: the project config (which systems and streams to read); None reads no records.
        order_id: the order.
        as_of: show the order as of this day (records visible then, diffs, states and events up to it).

    Returns:
        The timeline; empty parts when a table does not exist yet.
    """
    end = cutoff(as_of) if as_of else None
    order = None
    if relation_columns(con, "marts", "fct_orders"):
        found = rows(con, "select * from marts.fct_orders where order_id = ?", [order_id])
        order = found[0] if found else None
    entries: list[dict[str, Any]] = []
    customer_ids: set[str] = set()
    if order and order.get("customer_id"):
        customer_ids.add(order["customer_id"])

    # 1. each system's records, as written (updated_at) and landed (available_at / extracted_at)
    relations = staged_relations(con, config, roles=("orders", "payments", "invoices", "fulfillments"))
    for system, role, stream, name, columns in relations:
        entries += _record_entries(con, system, role, stream, name, columns, "order_id", order_id, end)
        if role == "orders" and "customer_id" in columns:
            customer_ids |= {e["details"].get("customer_id") for e in entries
                             if e["system"] == system and e["details"].get("customer_id")}
    for customer_id in sorted(customer_ids):
        for system, role, stream, name, columns in staged_relations(con, config, roles=("customers",)):
            entries += _record_entries(con, system, role, stream, name, columns, "customer_id", customer_id, end)

    # 2. the canonical state over time, and its owner
    if relation_columns(con, "marts", "fct_order_state_history"):
        previous: dict[str, Any] | None = None
        for row in rows(con, f"select * from {STATE_HISTORY} where order_id = ? order by as_of_date",
                         [order_id]):
            if as_of and row["as_of_date"] > as_of:
                break
            if previous and (previous["state"], previous["state_owner"], previous["hold_reason"]) == (
                    row["state"], row["state_owner"], row["hold_reason"]):
                continue
            title = f"canonical state {row['state']}" + (f" ({row['hold_reason']})" if row["hold_reason"] else "")
            if previous is None or previous["state"] != row["state"]:
                title += f", state owner {row['state_owner']}"
            elif previous["state_owner"] != row["state_owner"]:
                title = f"state owner {previous['state_owner']} -> {row['state_owner']}"
            entries.append(_entry(cutoff(row["as_of_date"]), "state", title, as_of_date=row["as_of_date"],
                                  state=row["state"], owner=row["state_owner"],
                                  from_state=previous["state"] if previous else None))
            previous = row
    elif order is not None:
        entries.append(_entry(cutoff(order["as_of_date"]), "state", f"canonical state {order['state']}, state owner "
                              f"{order.get('state_owner')}", as_of_date=order["as_of_date"], state=order["state"]))

    # 3. diffs, as runs of consecutive as-of days
    if relation_columns(con, "marts", "fct_order_diffs"):
        entries += _diff_entries(con, order_id, as_of)

    # 4. exception events and manual matches
    exceptions: list[dict[str, Any]] = []
    if relation_columns(con, "recon", "exceptions"):
        exceptions = rows(con, "select exception_id, diff_type, system, status, severity, owner, amount_at_risk, "
                                "currency, expected_value, actual_value, due_at, first_seen_date, last_seen_date, "
                                "routing_rule, lineage, matched_order_id from recon.exceptions "
                                "where order_id = ? or matched_order_id = ? order by diff_type, system",
                           [order_id, order_id])
        for ex in exceptions:
            if isinstance(ex.get("lineage"), str):
                ex["lineage"] = json.loads(ex["lineage"])
        by_id = {x["exception_id"]: x for x in exceptions}
        if by_id and relation_columns(con, "recon", "exception_events"):
            # On the as-of clock like states and diffs (the end of the event's as-of day), in the event
            # log's order; the wall-clock time of the action rides along in the details.
            for ev in events_of(con, sorted(by_id)):
                if as_of and ev["as_of_day"] > as_of:
                    continue
                ex = by_id[ev["exception_id"]]
                move = ev["to_status"] if ev["from_status"] == ev["to_status"] else \
                    f"{ev['from_status'] or 'new'} -> {ev['to_status']}"
                owner = ""
                if ev.get("to_owner") and ev.get("from_owner") != ev.get("to_owner"):
                    owner = (f", owner {ev['from_owner']} -> {ev['to_owner']}" if ev.get("from_owner")
                             else f", owner {ev['to_owner']}")
                title = (f"{ex['diff_type']}@{ex['system']} {ev['event_type']} ({move}{owner}) "
                         f"by {ev['actor']}" + (f": {ev['reason']}" if ev["reason"] else ""))
                entries.append(_entry(cutoff(ev["as_of_day"]), "exception", title, ex["system"],
                                      exception_id=ev["exception_id"], event_type=ev["event_type"],
                                      actor=ev["actor"], from_status=ev["from_status"], to_status=ev["to_status"],
                                      from_owner=ev.get("from_owner"), to_owner=ev.get("to_owner"),
                                      as_of_date=ev["as_of_day"], recorded_at=ev["recorded_at"]))
    if relation_columns(con, "recon", "manual_matches"):
        for m in rows(con, "select * from recon.manual_matches where matched_order_id = ? or record_order_id = ? "
                            "order by matched_at", [order_id, order_id]):
            if end and m["matched_at"] >= end:
                continue
            entries.append(_entry(m["matched_at"], "match",
                                  f"{m['system']} record of order {m['record_order_id']} matched to order "
                                  f"{m['matched_order_id']} by {m['actor']}: {m['note']}", m["system"]))
    entries.sort(key=lambda e: (e["at"] or dt.datetime.min, _KIND_ORDER.get(e["kind"], 9)))
    return Timeline(order_id=order_id, as_of=as_of, order=order, exceptions=exceptions, entries=entries)


def _record_entries(con: duckdb.DuckDBPyConnection, system: str, role: str, stream: str, name: str,
                    columns: list[str], key: str, value: str, end: dt.datetime | None) -> list[dict[str, Any]]:
    if key not in columns or "updated_at" not in columns:
        return []
    where = f"{key} = ?"
    params: list[Any] = [value]
    if end is not None:
        where += " and updated_at < ?"
        params.append(end)
        if "available_at" in columns:
            where += " and (available_at is null or available_at < ?)"
            params.append(end)
    order = ", _airbyte_extracted_at" if "_airbyte_extracted_at" in columns else ""
    found = rows(con, f'select * from staging."{name}" where {where} order by updated_at{order}', params)
    id_col = next((c for c in _ID_COLUMNS if c in columns), key)
    last_status: dict[Any, Any] = {}
    out = []
    for row in found:
        record_id = row.get(id_col)
        parts = [str(row[c]) for c in ("kind", "status") if row.get(c) is not None]
        amount = row.get("amount", row.get("total_amount"))
        if amount is not None:
            parts.append(format_money(amount, row.get("currency")))
        if row.get("line_count") is not None:
            parts.append(f"{row['line_count']} line(s)")
        if role == "customers":
            parts += [f"{c} {row[c]}" for c in ("segment", "plan") if row.get(c) is not None]
        previous = last_status.get(record_id, "__none__")
        change = ""
        if previous != "__none__" and previous != row.get("status"):
            change = f" (status {previous} -> {row.get('status')})"
        elif previous != "__none__":
            change = " (new version)"
        last_status[record_id] = row.get("status")
        landed = row.get("available_at") or row.get("_airbyte_extracted_at")
        title = f"{system}/{stream} {record_id}: {' '.join(parts)}{change}"
        out.append(_entry(row["updated_at"], "record", title, system, stream=stream, record_id=record_id,
                          status=row.get("status"), amount=amount, currency=row.get("currency"),
                          customer_id=row.get("customer_id"), landed_at=_naive(landed),
                          raw_id=row.get("_airbyte_raw_id")))
    return out


def _diff_entries(con: duckdb.DuckDBPyConnection, order_id: str, as_of: dt.date | None) -> list[dict[str, Any]]:
    params: list[Any] = [order_id]
    where = "order_id = ?"
    if as_of:
        where += " and as_of_date <= ?"
        params.append(as_of)
    found = rows(con, f"select as_of_date, diff_type, system, severity, expected_value, actual_value, "
                       f"amount_at_risk, currency, rule from marts.fct_order_diffs where {where} "
                       "order by diff_type, system, as_of_date", params)
    if not found:
        return []
    latest = con.execute("select max(as_of_date) from marts.fct_order_diffs").fetchall()[0][0]
    if as_of and latest and latest > as_of:
        latest = as_of
    out: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for row in [*found, None]:
        same_key = previous is not None and row is not None and \
            (row["diff_type"], row["system"]) == (previous["diff_type"], previous["system"])
        if previous is not None and not (same_key and row["as_of_date"] == previous["as_of_date"] + dt.timedelta(1)):
            gone = previous["as_of_date"] + dt.timedelta(1)
            if latest and gone <= latest:
                out.append(_entry(cutoff(gone), "diff", f"{previous['diff_type']}@{previous['system']} gone "
                                  f"as of {gone}", previous["system"], as_of_date=gone))
        if row is None:
            break
        value = (row["expected_value"], row["actual_value"], str(row["amount_at_risk"]))
        label = f"{row['diff_type']}@{row['system']}"
        detail = (f"expected {row['expected_value']}, actual {row['actual_value']}, "
                  f"{format_money(row['amount_at_risk'], row['currency'])} at risk, {row['severity']}")
        if not same_key or row["as_of_date"] != previous["as_of_date"] + dt.timedelta(1):
            out.append(_entry(cutoff(row["as_of_date"]), "diff", f"{label} seen as of {row['as_of_date']}: {detail}",
                              row["system"], as_of_date=row["as_of_date"], rule=row["rule"]))
        elif value != (previous["expected_value"], previous["actual_value"], str(previous["amount_at_risk"])):
            out.append(_entry(cutoff(row["as_of_date"]), "diff", f"{label} changed as of {row['as_of_date']}: "
                              f"{detail}", row["system"], as_of_date=row["as_of_date"]))
        previous = row
    return out


def render_timeline(timeline: Timeline) -> str:
    """Human-readable timeline."""
    lines = [f"Order {timeline.order_id}" + (f" as of {timeline.as_of}" if timeline.as_of else "")]
    order = timeline.order
    if order:
        lines.append(f"  state {order.get('state')} as of {order.get('as_of_date')}, state owner "
                     f"{order.get('state_owner')}" + (f", on hold: {order['hold_reason']}" if order.get("hold_reason")
                                                      else ""))
        facts = [("customer", order.get("customer_id")),
                 ("total", format_money(order.get("total_amount"), order.get("currency"))),
                 ("paid", format_money(order.get("net_paid_amount"), order.get("currency"))),
                 ("invoiced", format_money(order.get("net_invoiced_amount"), order.get("currency"))),
                 ("fulfilled lines", order.get("fulfilled_lines"))]
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in facts if v not in (None, "")))
    elif not timeline.entries:
        lines.append("  nothing known about this order")
    open_ex = [x for x in timeline.exceptions if x["status"] in ("open", "acknowledged")]
    if timeline.exceptions:
        lines.append(f"  exceptions: {len(open_ex)} open of {len(timeline.exceptions)}")
        for x in timeline.exceptions:
            routed = f" (routed by {x['routing_rule']})" if x.get("routing_rule") else ""
            due = f"  due {x['due_at']:%Y-%m-%d %H:%M}" if x.get("due_at") else ""
            lines.append(f"    {x['exception_id'][:SHORT_ID]}  {x['status']:<13} {x['diff_type']}@{x['system']}  "
                         f"{format_money(x['amount_at_risk'], x['currency'])}  owner {x['owner']}{routed}{due}")
        state_owner = (order or {}).get("state_owner")
        if state_owner and any(x["owner"] != state_owner for x in open_ex):
            lines.append(f"  two kinds of owner: {state_owner} owns the order's state ({order.get('state')}, from "
                         "owners.by_state) and moves the order on; an exception's owner fixes that one difference "
                         "and is routed per difference (routing rules, billing, last writer, diff type), so the "
                         "two can differ (docs/exceptions.md#owners)")
    lines.append("")
    for e in timeline.entries:
        at = e["at"].strftime("%Y-%m-%d %H:%M") if isinstance(e["at"], dt.datetime) else str(e["at"])
        landed = e["details"].get("landed_at")
        suffix = f"  [landed {landed:%Y-%m-%d %H:%M}]" if isinstance(landed, dt.datetime) else ""
        recorded = e["details"].get("recorded_at")
        suffix += f"  [recorded {recorded:%Y-%m-%d %H:%M} UTC]" if isinstance(recorded, dt.datetime) else ""
        lines.append(f"{at}  {e['kind']:<9} {e['title']}{suffix}")
    return "\n".join(lines)
