"""Render the report as one self-contained HTML page (inline CSS and SVG, no scripts) from ``templates/report.html.j2``.

The first screen answers "does it tie out, how much is at risk, what changed since the previous day"; every
figure links to the list behind it further down (anchors), and the lists name the CLI command that shows
the same from a shell.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from dagster_project.lib.money import format_amount
from dagster_project.reports import charts
from dagster_project.reports.data import AGE_BUCKETS, BUCKETS, MEASURES, ReportData
from ingestion.catalogue import diff_title

TEMPLATES = Path(__file__).resolve().parent / "templates"
GROUP_LIMIT = 25  # rows a group of the drill-down lists shows in the HTML (the CSV and XLSX hold all)
AGE_COLOURS = dict(zip(AGE_BUCKETS, ("#f5c26b", "#e8a33d", "#d9792b", "#c0392b", "#922b21", "#5b1a14"), strict=True))


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2")


def money(value: Any, currency: str | None = None) -> str:
    """1,234.56: the currency's own decimals (two without one; the CSV/XLSX/JSON keep four)."""
    if value is None:
        return ""
    return format_amount(value, currency)


def n(value: int | None) -> str:
    """A count with thousands separators."""
    return "-" if value is None else f"{value:,}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} h"


def days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} d"


def subject(order_id: str | None) -> Markup:
    """An order id, or for an exception about no order (``<erp.documents: ...>``) what it is about."""
    if order_id and order_id.startswith("<") and order_id.endswith(">"):
        return Markup('<span class="muted">no order: {}</span>').format(order_id[1:-1])
    return Markup("{}").format(order_id or "")


def _signed(value: Any, kind: str, currency: str | None) -> str:
    if value is None:
        return "-"
    if kind == "rate":
        return f"{value * 100:+.1f} pts"
    if kind == "count":
        return f"{value:+,}"
    text = format_amount(abs(value), currency)
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def _groups(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], tuple]) -> list[tuple[tuple, list]]:
    out: dict[tuple, list] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return list(out.items())


def render_html(data: ReportData, generated_at: str | None = None, workbook_rows: int | None = None) -> str:
    """The report as a self-contained HTML page.

    Args:
        data: the collected sections.
        generated_at: a timestamp for the footer (None leaves it out).
        workbook_rows: the rows a workbook sheet holds (``report.workbook_rows``; None: all), so that the
            page says truly where a list's rows are.

    Returns:
        The HTML text.
    """
    def in_workbook(rows: list[Any]) -> str:
        if workbook_rows is None or len(rows) <= workbook_rows:
            return " and the workbook"
        return f", the first {n(workbook_rows)} in the workbook"

    risk_currencies = sorted(data.at_risk)
    bucket_colour = dict(charts.BUCKET_COLOURS)
    change_of = {(r["currency"], r["figure"]): r for r in data.changes}
    previous = data.previous_date.strftime("%m-%d") if data.previous_date else ""

    def sys(role: str) -> str:
        systems = data.systems_by_role.get(role) or []
        return "+".join(systems) if systems else "not configured"

    def check(currency: str, measure: str) -> dict[str, Any]:
        return next(c for c in data.tie_out_checks if c["currency"] == currency and c["measure"] == measure)

    def risk(currency: str) -> dict[str, Any]:
        return data.at_risk.get(currency, {"exceptions": 0, "amount": Decimal(0)})

    def delta_text(currency: str, figure: str, lead: str = ", ") -> str:
        r = change_of.get((currency, figure))
        if r is None or r["change"] is None:
            return ""
        return f"{lead}{_signed(r['change'], r['kind'], currency or None)} since {previous}"

    def delta(currency: str, figure: str) -> Markup:
        text = delta_text(currency, figure, lead="")
        return Markup('<span class="up">{}</span>').format(text) if text else Markup("")

    def fig(row: dict[str, Any], value: Any) -> str:
        if value is None:
            return "-"
        return {"money": lambda: money(value, row["currency"] or None), "count": lambda: n(value),
                "rate": lambda: pct(value)}[row["kind"]]()

    def change(row: dict[str, Any]) -> str:
        return _signed(row["change"], row["kind"], row["currency"] or None)

    def tie_chart(currency: str) -> str:
        rows = []
        for key, role, label in MEASURES:
            segs = [(blabel, r[key], bucket_colour[bkey]) for bkey, blabel in BUCKETS
                    for r in data.tie_out if r["currency"] == currency and r["bucket"] == bkey]
            rows.append((f"{label.split(' (')[0]} · {sys(role)}", segs))
        return charts.stacked_bars(rows, title=f"Tie-out {currency}: each system's total by line")

    def risk_types(currency: str) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in data.money_at_risk:
            if r["currency"] != currency:
                continue
            t = out.setdefault(r["diff_type"], {"diff_type": r["diff_type"], "buckets": {}, "total": Decimal(0),
                                                "exceptions": 0, "since": r["since"]})
            t["buckets"][r["age_bucket"]] = {"amount": r["amount_at_risk"], "exceptions": r["exceptions"]}
            t["total"] += r["amount_at_risk"]
            t["exceptions"] += r["exceptions"]
            t["since"] = min(t["since"], r["since"])
        return sorted(out.values(), key=lambda t: (-t["total"], -t["exceptions"]))

    def risk_bucket_total(currency: str, bucket: str) -> dict[str, Any]:
        cells = [r for r in data.money_at_risk if r["currency"] == currency and r["age_bucket"] == bucket]
        return {"amount": sum((r["amount_at_risk"] for r in cells), Decimal(0)),
                "exceptions": sum(r["exceptions"] for r in cells)}

    def risk_chart(currency: str) -> str:
        rows = [(diff_title(t["diff_type"]),
                 [(b, (t["buckets"].get(b) or {}).get("amount", 0), AGE_COLOURS[b]) for b in AGE_BUCKETS])
                for t in risk_types(currency)]
        return charts.stacked_bars(rows, title=f"Money at risk {currency} by difference and age")

    open_groups = []
    for i, ((currency, diff_type), rows) in enumerate(sorted(
            _groups(data.open_list, lambda r: (r["currency"] or "", r["diff_type"])),
            key=lambda g: (g[0][0] == "", g[0][0], -sum(r["amount_at_risk"] for r in g[1]), g[0][1]))):
        command = "recon exceptions list --type " + shlex.quote(diff_type)
        if currency:
            command += f" --currency {shlex.quote(currency)}"
        open_groups.append({
            "currency": currency, "diff_type": diff_type, "rows": rows, "command": command,
            "amount": sum((r["amount_at_risk"] for r in rows), Decimal(0)),
            "first_of_currency": i == 0 or open_groups[-1]["currency"] != currency})
    lines = dict(BUCKETS)
    order_groups = [{"currency": c, "bucket": b, "line": lines[b], "rows": rows}
                    for (c, b), rows in _groups(data.orders_not_reconciled, lambda r: (r["currency"], r["bucket"]))]
    no_currency_orders = [(reason, rows) for (reason,), rows in
                          _groups(data.no_currency_orders, lambda r: (r["reason"],))]
    change_rows: dict[str, dict[str, dict[str, Any]]] = {}
    for r in data.changes:
        if r["currency"]:
            change_rows.setdefault(r["label"], {})[r["currency"]] = r
    today = next((r for r in data.trend if r["as_of_date"] == data.as_of_date),
                 {"exceptions_opened": None, "exceptions_closed": None})

    labels = [r["as_of_date"].strftime("%m-%d") for r in data.trend]
    trend_rate_chart = charts.line_chart(
        labels, [("Orders reconciled", [r["reconciled_rate"] for r in data.trend], charts.PALETTE[0]),
                 ("Orders with differences",
                  [(r["orders_with_diffs"] / r["orders_in_scope"]) if r["orders_in_scope"] else None
                   for r in data.trend], charts.PALETTE[2])],
        title="Share of orders reconciled and with differences, last 30 days", percent=True)
    days_ = [r["as_of_date"] for r in data.trend]
    money_currencies = sorted({r["currency"] for r in data.trend_money})
    money_series = []
    for i, currency in enumerate(money_currencies):
        by_day = {r["as_of_date"]: float(r["amount_at_risk"]) for r in data.trend_money if r["currency"] == currency}
        money_series.append((currency, [by_day.get(d, 0.0) for d in days_], charts.PALETTE[(i + 1) % 8]))
    trend_money_chart = charts.line_chart(
        labels, money_series, title="Amount at risk in all of the day's differences, per currency")
    return _template().render(
        d=data, m=data.metrics, measures=MEASURES, age_buckets=AGE_BUCKETS, risk_currencies=risk_currencies,
        money=money, n=n, pct=pct, hours=hours, days=days, sys=sys, check=check, risk=risk, name=diff_title,
        subject=subject, delta=delta, delta_text=delta_text, fig=fig, change=change, change_rows=list(change_rows.items()),
        today=today,
        tie_chart=tie_chart, risk_types=risk_types, risk_bucket_total=risk_bucket_total, risk_chart=risk_chart,
        open_groups=open_groups, order_groups=order_groups, no_currency_orders=no_currency_orders,
        group_limit=GROUP_LIMIT, in_workbook=in_workbook,
        bucket_legend=charts.legend([(label, bucket_colour[key]) for key, label in BUCKETS]),
        age_legend=charts.legend([(b, AGE_COLOURS[b]) for b in AGE_BUCKETS]),
        trend_rate_chart=trend_rate_chart,
        trend_legend=charts.legend([("Orders reconciled", charts.PALETTE[0]),
                                    ("Orders with differences", charts.PALETTE[2])]),
        trend_money_chart=trend_money_chart,
        trend_money_legend=charts.legend([(c, col) for c, _, col in money_series]),
        generated_at=generated_at,
    )


__all__ = ["GROUP_LIMIT", "days", "hours", "money", "n", "pct", "render_html", "subject"]
