"""The day's orders and exceptions for the daily reconciliation report, read from DuckDB as of one day.

Everything is read as of the day D, from history tables, so a report of a past day shows that day:
the order as of D is its latest row of ``marts.fct_order_state_history`` on or before D, the diffs are
D's rows of ``marts.fct_order_diffs``, and an exception's status as of D is the ``to_status`` of its latest
event in ``recon.exception_events`` with ``as_of_date <= D``. Money stays DECIMAL end to end and is never
added across currencies: an order whose currency nothing states (records without an order, in no single
currency) and an exception without a currency are counted and listed with the reason, outside the
per-currency figures. :mod:`.collect` reads the previous reconciled day the same way for the changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

ZERO = Decimal("0.0000")
OPEN_STATUSES = ("open", "acknowledged")
SYSTEM_ACTORS = ("recon", "recon-routing", "recon-escalation")
AGE_BUCKETS = ("0-1 days", "2-3 days", "4-7 days", "8-14 days", "15-30 days", "over 30 days")
TREND_DAYS = 30

# The tie-out buckets, in bridge order; every order of the day is in exactly one (first match wins).
BUCKETS: tuple[tuple[str, str], ...] = (
    ("reconciled", "Reconciled"),
    ("open_exceptions", "Orders with open exceptions"),
    ("closed_by_people", "Differences accepted or resolved by a person"),
    ("in_progress", "In progress, within grace windows"),
    ("cancelled_refunded", "Cancelled or refunded"),
    ("on_hold", "On hold (stale source or no order record)"),
)
# What each role's system reports, per order, in the order currency.
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("sold", "orders", "Sold (order totals)"),
    ("paid", "payments", "Paid (net of refunds)"),
    ("invoiced", "invoices", "Invoiced (net of credit notes)"),
    ("fulfilled", "fulfillments", "Fulfilled (order value shipped or activated)"),
)
PAIR_ROLES = ("orders", "payments", "invoices", "fulfillments")
# Why an order has no currency (it has no order record, so only its records could say).
NO_CURRENCY_REASONS = {
    "orphan_no_single_currency": "records without an order whose records state no single currency "
                                 "(shipments carry none); flagged as a record without an order",
    "orphan_not_flagged_yet": "records without an order, still inside the grace window before they are "
                              "flagged as records without an order",
}
# Why an open exception has no currency (its amount at risk is then 0: nothing to put in a currency).
NO_CURRENCY_EXCEPTIONS = {
    "contract_violation": "a source record broke its contract and was quarantined: no amount",
    "stale_source": "a source delivered late: no amount, its orders are on hold",
    "orphan_record": "records without an order that state no single currency (shipments carry none)",
}


@dataclass
class ReportData:
    """The report's sections: lists of plain dicts, ready for HTML, CSV, XLSX and JSON."""

    as_of_date: dt.date
    systems_by_role: dict[str, list[str]]
    currencies: list[str]
    previous_date: dt.date | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    tie_out: list[dict[str, Any]] = field(default_factory=list)
    tie_out_checks: list[dict[str, Any]] = field(default_factory=list)
    headline: list[dict[str, Any]] = field(default_factory=list)
    match_rates: list[dict[str, Any]] = field(default_factory=list)
    money_at_risk: list[dict[str, Any]] = field(default_factory=list)
    at_risk: dict[str, dict[str, Any]] = field(default_factory=dict)
    open_exceptions_by_system: list[dict[str, Any]] = field(default_factory=list)
    open_list: list[dict[str, Any]] = field(default_factory=list)
    no_currency_exceptions: list[dict[str, Any]] = field(default_factory=list)
    orders_not_reconciled: list[dict[str, Any]] = field(default_factory=list)
    no_currency_orders: list[dict[str, Any]] = field(default_factory=list)
    trend: list[dict[str, Any]] = field(default_factory=list)
    trend_money: list[dict[str, Any]] = field(default_factory=list)
    exception_rates: list[dict[str, Any]] = field(default_factory=list)
    resolution: list[dict[str, Any]] = field(default_factory=list)
    freshness: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def tie_out_ok(self) -> bool:
        return all(check["ok"] for check in self.tie_out_checks)


def query_rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def to_decimal(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value).quantize(ZERO)


# The order as of D (latest state-history row on or before D) with its bucket, its currency and its diffs.
_ORDERS_AS_OF = """
with ranked as (
    select *, row_number() over (partition by order_id order by as_of_date desc) as recency
    from marts.fct_order_state_history
    where as_of_date <= $as_of
),
orders as (
    select * from ranked where recency = 1
),
diffs as (
    select d.*, {status_expr} as exception_status
    from marts.fct_order_diffs d
    {status_join}
    where d.as_of_date = $as_of
),
order_diffs as (
    select
        order_id,
        count(*) as diffs,
        sum(case when exception_status is null or exception_status in ('open', 'acknowledged')
                 then 1 else 0 end) as open_diffs,
        count(distinct case when diff_type = 'orphan_record' then currency end) as orphan_currencies,
        min(case when diff_type = 'orphan_record' then currency end) as orphan_currency,
        bool_or(diff_type = 'orphan_record') as has_orphan_diff
    from diffs
    group by order_id
)
select
    orders.order_id,
    orders.state,
    orders.hold_reason,
    orders.has_order_record,
    coalesce(orders.currency,
             case when order_diffs.orphan_currencies = 1 then order_diffs.orphan_currency end) as currency,
    case
        when orders.currency is not null or order_diffs.orphan_currencies = 1 then null
        when order_diffs.has_orphan_diff then 'orphan_no_single_currency'
        else 'orphan_not_flagged_yet'
    end as no_currency_reason,
    case when orders.has_order_record then orders.total_amount else 0 end as sold,
    coalesce(orders.net_paid_amount, 0) as paid,
    coalesce(orders.net_invoiced_amount, 0) as invoiced,
    case when orders.is_fulfilled and orders.has_order_record then orders.total_amount else 0 end as fulfilled,
    coalesce(orders.is_paid, false) as is_paid,
    coalesce(orders.is_invoiced, false) as is_invoiced,
    coalesce(orders.is_fulfilled, false) as is_fulfilled,
    cast(orders.ordered_at as date) as ordered_date,
    case
        when coalesce(order_diffs.open_diffs, 0) > 0 then 'open_exceptions'
        when coalesce(order_diffs.diffs, 0) > 0 then 'closed_by_people'
        when orders.state = 'RECONCILED' then 'reconciled'
        when orders.state = 'ON_HOLD' then 'on_hold'
        when orders.state in ('CANCELLED', 'REFUNDED') then 'cancelled_refunded'
        else 'in_progress'
    end as bucket
from orders
left join order_diffs on orders.order_id = order_diffs.order_id
"""

# An exception's status as of D: its latest event on or before D (events of one write keep their order).
_STATUS_AS_OF = """
exception_status as (
    select exception_id, to_status as status from (
        select exception_id, to_status,
               row_number() over (partition by exception_id order by recorded_at desc, event_id desc) as recency
        from recon.exception_events
        where as_of_date <= $as_of and to_status is not null
    ) where recency = 1
)"""


class ReportDataError(RuntimeError):
    """The database lacks what the report needs (the day has not been reconciled)."""


def headline_figures(con: duckdb.DuckDBPyConnection, data: ReportData, has_store: bool) -> None:
    """The figures a day's first screen compares: the tie-out and the open exceptions as of the day."""
    params = {"as_of": data.as_of_date}
    _order_table(con, params, has_store)
    _tie_out(con, data)
    _open_exceptions(con, data, params, has_store)
    data.metrics["reconciled_rate"] = con.execute(
        "select reconciled_rate from marts.fct_reconciliation_daily where as_of_date = ?",
        [data.as_of_date]).fetchall()[0][0]


def _order_table(con: duckdb.DuckDBPyConnection, params: dict[str, Any], has_store: bool) -> None:
    if has_store:
        status_join = (
            "left join recon.exceptions x on x.order_id = d.order_id and x.diff_type = d.diff_type "
            "and x.system = d.system left join exception_status s on s.exception_id = x.exception_id")
        status_expr = "s.status"
        sql = _ORDERS_AS_OF.replace("with ranked as (", "with" + _STATUS_AS_OF + ",\nranked as (", 1)
    else:
        status_join, status_expr, sql = "", "cast(null as varchar)", _ORDERS_AS_OF
    sql = sql.format(status_expr=status_expr, status_join=status_join)
    # A temp table: the sections below all read the same as-of view of the orders.
    con.execute("create or replace temp table _report_orders as " + sql, params)


# How many orders each measure counts: the orders the measure's system reported.
_MEASURE_COUNTS = {"sold": "has_order_record", "paid": "is_paid", "invoiced": "is_invoiced",
                   "fulfilled": "is_fulfilled and has_order_record"}


def _tie_out(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    measures = ", ".join(f"cast(sum({m}) as decimal(20, 4)) as {m}, count(*) filter (where {c}) as {m}_orders"
                         for m, c in _MEASURE_COUNTS.items())
    by_bucket = query_rows(con, f"select currency, bucket, count(*) as orders, {measures} "
                           "from _report_orders where currency is not null group by currency, bucket")
    totals = {r["currency"]: r for r in query_rows(
        con, f"select currency, count(*) as orders, {measures} from _report_orders "
             "where currency is not null group by currency")}
    currencies = sorted(totals)
    data.currencies = currencies
    for currency in currencies:
        for key, label in BUCKETS:
            found = next((r for r in by_bucket if r["currency"] == currency and r["bucket"] == key), None)
            row = {"currency": currency, "bucket": key, "line": label, "orders": int(found["orders"]) if found else 0}
            for m, _, _ in MEASURES:
                row[m] = to_decimal(found[m]) if found else ZERO
            data.tie_out.append(row)
        total = {"currency": currency, "bucket": "total", "line": "System total",
                 "orders": int(totals[currency]["orders"])}
        for m, _, _ in MEASURES:
            total[m] = to_decimal(totals[currency][m])
        data.tie_out.append(total)
        lines = [r for r in data.tie_out if r["currency"] == currency and r["bucket"] != "total"]
        for m, role, label in MEASURES:
            summed = sum((r[m] for r in lines), ZERO)
            data.tie_out_checks.append({
                "currency": currency, "measure": m, "system": _system_label(data, role), "label": label,
                "system_total": total[m], "bridged_total": summed, "difference": total[m] - summed,
                "ok": summed == total[m]})
        by = {r["bucket"]: r for r in lines}
        data.headline.append({
            "currency": currency,
            "orders": total["orders"],
            **{m: total[m] for m, _, _ in MEASURES},
            **{f"{m}_orders": int(totals[currency][f"{m}_orders"]) for m, _, _ in MEASURES},
            "reconciled": by["reconciled"]["sold"],
            "reconciled_orders": by["reconciled"]["orders"],
            "open_exceptions_sold": by["open_exceptions"]["sold"],
            "open_exceptions_orders": by["open_exceptions"]["orders"],
        })
    data.no_currency_orders = query_rows(con, """
        select order_id, state, hold_reason, no_currency_reason as reason, is_paid, is_invoiced, is_fulfilled
        from _report_orders where currency is null order by no_currency_reason, order_id""")
    for row in data.no_currency_orders:
        row["reason_text"] = NO_CURRENCY_REASONS[row["reason"]]


def order_lists(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """Every order of the day outside the reconciled line, with its line: the drill-down of the tie-out."""
    data.orders_not_reconciled = [
        {**r, **{m: to_decimal(r[m]) for m, _, _ in MEASURES}}
        for r in query_rows(con, f"""
            select currency, bucket, order_id, state, hold_reason, ordered_date, {", ".join(m for m, _, _ in MEASURES)}
            from _report_orders where currency is not null and bucket <> 'reconciled'
            order by currency, bucket, sold desc, order_id""")]


def _system_label(data: ReportData, role: str) -> str:
    systems = data.systems_by_role.get(role) or []
    return "+".join(systems) if systems else f"({role} not configured)"


_PRESENT = {"orders": "has_order_record", "payments": "is_paid", "invoices": "is_invoiced",
            "fulfillments": "is_fulfilled"}


def match_rates(con: duckdb.DuckDBPyConnection, data: ReportData, params: dict[str, Any]) -> None:
    roles = [r for r in PAIR_ROLES if data.systems_by_role.get(r)]
    for i, left in enumerate(roles):
        for right in roles[i + 1:]:
            left_systems = data.systems_by_role[left]
            right_systems = data.systems_by_role[right]
            # A diff touches the pair when the systems it involves include one of each side.
            row = con.execute(
                f"""
                with touched as (
                    select distinct order_id from marts.fct_order_diffs
                    where as_of_date = $as_of
                      and len(list_intersect(string_split(replace(systems_involved, ' ', ''), ','), $left)) > 0
                      and len(list_intersect(string_split(replace(systems_involved, ' ', ''), ','), $right)) > 0
                )
                select
                    count(*) filter (where o.{_PRESENT[left]} or o.{_PRESENT[right]}) as population,
                    count(*) filter (where o.{_PRESENT[left]} and o.{_PRESENT[right]}) as in_both,
                    count(*) filter (where o.{_PRESENT[left]} and o.{_PRESENT[right]}
                                     and t.order_id is null) as matched
                from _report_orders o left join touched t on o.order_id = t.order_id
                """,
                {**params, "left": left_systems, "right": right_systems}).fetchall()[0]
            population, in_both, matched = (int(v or 0) for v in row)
            data.match_rates.append({
                "pair": f"{left} ↔ {right}", "left_role": left, "right_role": right,
                "left_systems": "+".join(left_systems), "right_systems": "+".join(right_systems),
                "orders": population, "in_both": in_both, "matched": matched,
                "only_one_side": population - in_both, "with_differences": in_both - matched,
                "match_rate": (matched / population) if population else None,
            })


def _open_exceptions(con: duckdb.DuckDBPyConnection, data: ReportData, params: dict[str, Any],
                     has_store: bool) -> None:
    """Open exceptions as of D: diffs of D not closed by a person, plus exceptions held by a stale source."""
    if has_store:
        sql = f"""
        with {_STATUS_AS_OF.strip()},
        diffs as (
            select d.*, x.exception_id, s.status, x.due_at, coalesce(x.owner, d.owner) as current_owner
            from marts.fct_order_diffs d
            left join recon.exceptions x
                on x.order_id = d.order_id and x.diff_type = d.diff_type and x.system = d.system
            left join exception_status s on s.exception_id = x.exception_id
            where d.as_of_date = $as_of
        ),
        held as (
            select x.exception_id, x.order_id, x.diff_type, x.system, x.owner, x.severity, x.amount_at_risk,
                   x.currency, x.first_seen_date, s.status, x.due_at
            from recon.exceptions x
            join exception_status s on s.exception_id = x.exception_id
            where s.status in ('open', 'acknowledged') and x.first_seen_date <= $as_of
              and not exists (select 1 from diffs d where d.order_id = x.order_id
                              and d.diff_type = x.diff_type and d.system = x.system)
        )
        select exception_id, order_id, diff_type, system, current_owner as owner, severity, amount_at_risk,
               currency, first_seen_date, coalesce(status, 'open') as status, due_at, false as is_held
        from diffs where status is null or status in ('open', 'acknowledged')
        union all
        select exception_id, order_id, diff_type, system, owner, severity, amount_at_risk, currency,
               first_seen_date, status, due_at, true as is_held
        from held
        """
    else:
        sql = """
        select null as exception_id, order_id, diff_type, system, owner, severity, amount_at_risk, currency,
               first_seen_date, 'open' as status, null as due_at, false as is_held
        from marts.fct_order_diffs where as_of_date = $as_of
        """
    items = query_rows(con, sql, params)
    as_of = data.as_of_date
    risk: dict[tuple[str, str, str], dict[str, Any]] = {}
    by_system: dict[tuple[str, str], dict[str, Any]] = {}
    no_currency: dict[str, dict[str, Any]] = {}
    for item in items:
        item["amount_at_risk"] = to_decimal(item["amount_at_risk"])
        item["age_days"] = (as_of - item["first_seen_date"]).days
        item["age_bucket"] = age_bucket(item["age_days"])
        if item["currency"] is None:
            entry = no_currency.setdefault(item["diff_type"], {
                "diff_type": item["diff_type"], "exceptions": 0, "since": item["first_seen_date"],
                "reason": NO_CURRENCY_EXCEPTIONS.get(item["diff_type"], "its records state no single currency")})
            entry["exceptions"] += 1
            entry["since"] = min(entry["since"], item["first_seen_date"])
            continue
        cur = data.at_risk.setdefault(item["currency"], {"exceptions": 0, "amount": ZERO})
        cur["exceptions"] += 1
        cur["amount"] += item["amount_at_risk"]
        key = (item["currency"], item["diff_type"], item["age_bucket"])
        entry = risk.setdefault(key, {"currency": key[0], "diff_type": key[1], "age_bucket": key[2],
                                      "exceptions": 0, "amount_at_risk": ZERO,
                                      "since": item["first_seen_date"]})
        entry["exceptions"] += 1
        entry["amount_at_risk"] += item["amount_at_risk"]
        entry["since"] = min(entry["since"], item["first_seen_date"])
        skey = (item["currency"], item["system"])
        sentry = by_system.setdefault(skey, {"currency": skey[0], "system": skey[1], "exceptions": 0,
                                             "amount_at_risk": ZERO, "since": item["first_seen_date"]})
        sentry["exceptions"] += 1
        sentry["amount_at_risk"] += item["amount_at_risk"]
        sentry["since"] = min(sentry["since"], item["first_seen_date"])
    order = {b: i for i, b in enumerate(AGE_BUCKETS)}
    data.money_at_risk = sorted(risk.values(), key=lambda r: (r["currency"], r["diff_type"], order[r["age_bucket"]]))
    data.open_exceptions_by_system = sorted(by_system.values(), key=lambda r: (r["currency"], -r["amount_at_risk"]))
    data.no_currency_exceptions = sorted(no_currency.values(), key=lambda r: r["diff_type"])
    # Oldest first; within a day the largest amount (amounts of one currency only meet within a group).
    data.open_list = sorted(items, key=lambda r: (r["first_seen_date"], r["currency"] or "~", -r["amount_at_risk"],
                                                  r["order_id"], r["diff_type"], r["system"]))
    data.metrics["open_exceptions"] = len(items)
    data.metrics["open_exceptions_held"] = sum(1 for i in items if i["is_held"])
    data.metrics["open_exceptions_without_currency"] = sum(r["exceptions"] for r in data.no_currency_exceptions)
    data.metrics["oldest_open_since"] = min((i["first_seen_date"] for i in items), default=None)


def age_bucket(days: int) -> str:
    """The age bucket of an exception first seen ``days`` days before the as-of day (same as the dbt mart)."""
    for limit, label in ((1, AGE_BUCKETS[0]), (3, AGE_BUCKETS[1]), (7, AGE_BUCKETS[2]), (14, AGE_BUCKETS[3]),
                         (30, AGE_BUCKETS[4])):
        if days <= limit:
            return label
    return AGE_BUCKETS[5]
