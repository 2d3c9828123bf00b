"""The report's figures over days: the changes since the previous reconciled day, the 30-day trend and
operating metrics, and source freshness (read from the reporting marts, as of the day)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from dagster_project.lib.database import table_exists as _exists
from dagster_project.reports.data import TREND_DAYS, ZERO, ReportData, query_rows, to_decimal

# The figures compared with the previous reconciled day: (key, what it counts, kind).
CHANGE_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("sold", "Sold (order totals)", "money"),
    ("paid", "Paid (net of refunds)", "money"),
    ("invoiced", "Invoiced (net of credit notes)", "money"),
    ("fulfilled", "Fulfilled (order value)", "money"),
    ("reconciled", "Reconciled (order value)", "money"),
    ("at_risk", "Money at risk in open exceptions", "money"),
    ("open_exceptions", "Open exceptions", "count"),
)


def _figures(data: ReportData) -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {}
    for h in data.headline:
        for key in ("sold", "paid", "invoiced", "fulfilled", "reconciled"):
            out[(h["currency"], key)] = h[key]
    for currency in data.currencies:
        risk = data.at_risk.get(currency, {"amount": ZERO, "exceptions": 0})
        out[(currency, "at_risk")] = risk["amount"]
        out[(currency, "open_exceptions")] = risk["exceptions"]
    out[("", "open_exceptions")] = data.metrics.get("open_exceptions", 0)
    out[("", "reconciled_rate")] = data.metrics.get("reconciled_rate")
    return out


def changes(data: ReportData, previous: ReportData | None) -> list[dict[str, Any]]:
    """Day-over-day changes of the headline figures, per currency, against the previous reconciled day.

    Returns:
        Rows of ``figure``, ``label``, ``currency`` ("" for all currencies), ``kind`` (money, count, rate),
        ``today``, ``previous`` and ``change`` (None when the previous day has no such figure).
    """
    today = _figures(data)
    before = _figures(previous) if previous is not None else {}
    labels = {k: (label, kind) for k, label, kind in CHANGE_FIGURES}
    labels["reconciled_rate"] = ("Share of orders reconciled", "rate")
    rows = []
    rank = {key: i for i, (key, _, _) in enumerate(CHANGE_FIGURES)}
    for (currency, key), value in sorted(today.items(), key=lambda kv: (kv[0][0] == "", kv[0][0],
                                                                         rank.get(kv[0][1], 99))):
        label, kind = labels[key]
        if currency == "" and key == "open_exceptions":
            label = "Open exceptions (all currencies and none)"
        old = before.get((currency, key))
        rows.append({"figure": key, "label": label, "currency": currency, "kind": kind, "today": value,
                     "previous": old,
                     "change": (value - old) if value is not None and old is not None else None})
    return rows


def trend(con: duckdb.DuckDBPyConnection, data: ReportData, params: dict[str, Any], has_store: bool) -> None:
    window = {**params, "first": data.as_of_date - dt.timedelta(days=TREND_DAYS - 1)}
    days = query_rows(con, """
        select as_of_date, orders_in_scope, orders_placed, orders_reconciled, orders_with_diffs, orders_on_hold,
               reconciled_rate, diffs, diffs_opened, latency_p50_hours, latency_p95_hours
        from marts.fct_reconciliation_daily
        where as_of_date between $first and $as_of order by as_of_date""", window)
    closed: dict[dt.date, dict[str, int]] = {}
    if has_store:
        for row in query_rows(con, """
            select as_of_date,
                   count(*) filter (where event_type = 'opened') as exceptions_opened,
                   count(*) filter (where to_status in ('resolved', 'auto_resolved', 'accepted')
                                    and from_status in ('open', 'acknowledged')) as exceptions_closed
            from recon.exception_events where as_of_date between $first and $as_of group by as_of_date""",
                         window):
            closed[row["as_of_date"]] = row
    for day in days:
        extra = closed.get(day["as_of_date"], {})
        day["exceptions_opened"] = int(extra.get("exceptions_opened") or 0)
        day["exceptions_closed"] = int(extra.get("exceptions_closed") or 0)
    data.trend = days
    if _exists(con, "marts", "fct_money_at_risk"):
        data.trend_money = [
            {**r, "amount_at_risk": to_decimal(r["amount_at_risk"])}
            for r in query_rows(con, """
                select as_of_date, currency, cast(sum(amount_at_risk) as decimal(20, 4)) as amount_at_risk,
                       sum(diffs) as diffs
                from marts.fct_money_at_risk where as_of_date between $first and $as_of
                  and currency <> 'mixed'  -- the mart's name for diffs in no single currency (amount 0)
                group by as_of_date, currency order by as_of_date, currency""", window)]


def operating_metrics(con: duckdb.DuckDBPyConnection, data: ReportData, params: dict[str, Any],
                      has_store: bool) -> None:
    window = {**params, "first": data.as_of_date - dt.timedelta(days=TREND_DAYS - 1)}
    today = query_rows(con, "select * from marts.fct_reconciliation_daily where as_of_date = $as_of", params)[0]
    placed = con.execute("select coalesce(sum(orders_placed), 0) from marts.fct_reconciliation_daily "
                         "where as_of_date between $first and $as_of", window).fetchall()[0][0]
    m = data.metrics
    m.update({
        "orders_in_scope": today["orders_in_scope"],
        "orders_reconciled": today["orders_reconciled"],
        "reconciled_rate": today["reconciled_rate"],
        "diffs": today["diffs"],
        "diffs_opened": today["diffs_opened"],
        "latency_p50_hours": today["latency_p50_hours"],
        "latency_p95_hours": today["latency_p95_hours"],
        "latency_p50_hours_30d": today["latency_p50_hours_30d"],
        "latency_p95_hours_30d": today["latency_p95_hours_30d"],
        "orders_first_reconciled_30d": today["orders_first_reconciled_30d"],
        "orders_placed_30d": int(placed),
    })
    m.update(exceptions_opened_30d=0, exception_rate_30d=None)
    if _exists(con, "marts", "fct_exception_rates"):
        rates = query_rows(con, """
            select diff_type, system, sum(opened) as opened, max_by(open_diffs, as_of_date) filter
                       (where as_of_date = $as_of) as open_today
            from marts.fct_exception_rates where as_of_date between $first and $as_of
            group by diff_type, system order by diff_type, system""", window)
        for r in rates:
            r["open_today"] = int(r["open_today"] or 0)
            r["opened"] = int(r["opened"] or 0)
            r["exception_rate"] = (r["opened"] / placed) if placed else None
        data.exception_rates = rates
        total_opened = sum(r["opened"] for r in rates)
        m["exceptions_opened_30d"] = total_opened
        m["exception_rate_30d"] = (total_opened / placed) if placed else None
    if has_store and _exists(con, "marts", "fct_exception_resolution_metrics"):
        rows = query_rows(con, """
            select owner, diff_type, sum(resolutions) as resolutions, sum(manual_resolutions) as manual,
                   sum(total_days_to_resolve) as total_days
            from marts.fct_exception_resolution_metrics
            where resolved_as_of_date between $first and $as_of
            group by owner, diff_type order by owner, diff_type""", window)
        for r in rows:
            r["resolutions"] = int(r["resolutions"])
            r["manual"] = int(r["manual"])
            r["mttr_days"] = (float(r["total_days"]) / r["resolutions"]) if r["resolutions"] else None
            r["manual_rate"] = (r["manual"] / r["resolutions"]) if r["resolutions"] else None
        data.resolution = rows
        resolved = sum(r["resolutions"] for r in rows)
        m["resolutions_30d"] = resolved
        m["mttr_days_30d"] = (sum(float(r["total_days"] or 0) for r in rows) / resolved) if resolved else None
        m["manual_intervention_rate_30d"] = (sum(r["manual"] for r in rows) / resolved) if resolved else None
    else:
        m.update(resolutions_30d=0, mttr_days_30d=None, manual_intervention_rate_30d=None)
    for currency in data.currencies:
        m[f"money_at_risk_{currency}"] = data.at_risk.get(currency, {"amount": ZERO})["amount"]


def freshness(con: duckdb.DuckDBPyConnection, data: ReportData, params: dict[str, Any]) -> None:
    if _exists(con, "marts", "fct_system_freshness"):
        data.freshness = query_rows(con, "select system, role, last_seen_at, freshness_hours, is_stale "
                                    "from marts.fct_system_freshness where as_of_date = $as_of order by system",
                               params)
