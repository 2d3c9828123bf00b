"""Render the report as one self-contained HTML page (inline CSS and SVG, no scripts)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import jinja2

from dagster_project.lib.reports import charts
from dagster_project.lib.reports.data import AGE_BUCKETS, BUCKETS, MEASURES, ReportData

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reconciliation report {{ d.as_of_date }}</title>
<style>
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:32px 0 8px;border-bottom:2px solid #dde1e7;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
p.lead{color:#4a5565;margin:0 0 16px} p.note{color:#4a5565;font-size:13px;margin:6px 0}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-size:13px}
th,td{padding:5px 10px;border:1px solid #dde1e7;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:700;background:#f0f4ef} tr.check td{color:#4a5565}
.ok{color:#2f6f4f;font-weight:700} .bad{color:#c0392b;font-weight:700}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 4px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px 14px;min-width:150px}
.card .k{font-size:12px;color:#4a5565} .card .v{font-size:20px;font-weight:700;font-variant-numeric:tabular-nums}
.chart{background:#fff;border:1px solid #dde1e7;border-radius:4px;max-width:100%;height:auto}
.chart .lbl{font-size:12px;fill:#1d2430} .chart .val{font-size:11px;fill:#4a5565} .chart .axis{font-size:10px;fill:#4a5565}
.chart .grid{stroke:#e6e9ee;stroke-width:1}
.legend{font-size:12px;margin:4px 0 10px} .legend span{margin-right:14px;white-space:nowrap}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
footer{color:#6b7685;font-size:12px;margin-top:32px}
</style></head>
<body><main>
<h1>Daily reconciliation report</h1>
<p class="lead">As of <strong id="as-of-date">{{ d.as_of_date }}</strong> (end of day, UTC).
Amounts are per currency and never added across currencies. Tie-out:
<span id="tie-out-status" class="{{ 'ok' if d.tie_out_ok else 'bad' }}">{{ 'sums exactly' if d.tie_out_ok else 'DOES NOT SUM' }}</span>.</p>
{% for n in d.notes %}<p class="note">{{ n }}</p>{% endfor %}

<h2 id="summary">Summary</h2>
{% for h in d.headline %}
<h3>{{ h.currency }}</h3>
<div class="cards" data-currency="{{ h.currency }}">
  <div class="card"><div class="k">Sold ({{ h.orders }} orders)</div><div class="v" id="sold-{{ h.currency }}">{{ money(h.sold) }}</div></div>
  <div class="card"><div class="k">Paid</div><div class="v" id="paid-{{ h.currency }}">{{ money(h.paid) }}</div></div>
  <div class="card"><div class="k">Invoiced</div><div class="v" id="invoiced-{{ h.currency }}">{{ money(h.invoiced) }}</div></div>
  <div class="card"><div class="k">Fulfilled</div><div class="v" id="fulfilled-{{ h.currency }}">{{ money(h.fulfilled) }}</div></div>
  <div class="card"><div class="k">Reconciled (sold)</div><div class="v" id="reconciled-{{ h.currency }}">{{ money(h.reconciled) }}</div></div>
  <div class="card"><div class="k">At risk (open exceptions)</div><div class="v" id="at-risk-{{ h.currency }}">{{ money(at_risk.get(h.currency, 0)) }}</div></div>
</div>
{% endfor %}
<div class="cards">
  <div class="card"><div class="k">Orders reconciled</div><div class="v" id="reconciled-rate">{{ pct(m.reconciled_rate) }}</div></div>
  <div class="card"><div class="k">Open exceptions</div><div class="v" id="open-exceptions">{{ m.open_exceptions }}</div></div>
  <div class="card"><div class="k">Oldest open since</div><div class="v" id="oldest-open-since">{{ m.oldest_open_since or '-' }}</div></div>
  <div class="card"><div class="k">Latency p50 / p95 (30 d)</div><div class="v" id="latency">{{ hours(m.latency_p50_hours_30d) }} / {{ hours(m.latency_p95_hours_30d) }}</div></div>
</div>

<h2 id="tie-out">Tie-out</h2>
<p class="note">Each system's total as of the day, bridged to what is reconciled plus open exceptions and the
other states. Every order is in exactly one line, so each column sums exactly to its system total.
Sold: {{ sys('orders') }}; paid: {{ sys('payments') }}; invoiced: {{ sys('invoices') }}; fulfilled: {{ sys('fulfillments') }}
(order value of the fulfilled orders).</p>
{% for c in d.currencies %}
<h3>{{ c }}</h3>
<table class="tie-out" data-currency="{{ c }}">
<tr><th>Line</th><th class="num">Orders</th>{% for key, role, label in measures %}<th class="num">{{ label }}<br><small>{{ sys(role) }}</small></th>{% endfor %}</tr>
{% for r in d.tie_out if r.currency == c %}
<tr class="{{ 'total' if r.bucket == 'total' else '' }}" data-bucket="{{ r.bucket }}"><td>{{ r.line }}</td><td class="num">{{ r.orders }}</td>
{% for key, role, label in measures %}<td class="num" data-measure="{{ key }}" data-value="{{ r[key] }}">{{ money(r[key]) }}</td>{% endfor %}</tr>
{% endfor %}
<tr class="check"><td>Bridged − system total</td><td></td>{% for key, role, label in measures %}{% set chk = check(c, key) %}<td class="num {{ 'ok' if chk.ok else 'bad' }}" data-check="{{ key }}">{{ money(chk.difference) }}</td>{% endfor %}</tr>
</table>
{{ tie_chart(c) | safe }}
{% endfor %}
{{ bucket_legend | safe }}

<h2 id="match-rates">Match rates per system pair</h2>
<p class="note">Orders present in either system of the pair; matched = present in both with no difference involving the pair.
Orders only on one side are mostly still within their grace window.</p>
<table id="match-rates-table"><tr><th>Pair</th><th>Systems</th><th class="num">Orders</th><th class="num">In both</th><th class="num">Matched</th><th class="num">With differences</th><th class="num">Only one side</th><th class="num">Match rate</th></tr>
{% for r in d.match_rates %}<tr data-pair="{{ r.left_role }}-{{ r.right_role }}"><td>{{ r.pair }}</td><td>{{ r.left_systems }} ↔ {{ r.right_systems }}</td><td class="num">{{ r.orders }}</td><td class="num">{{ r.in_both }}</td><td class="num">{{ r.matched }}</td><td class="num">{{ r.with_differences }}</td><td class="num">{{ r.only_one_side }}</td><td class="num">{{ pct(r.match_rate) }}</td></tr>
{% endfor %}</table>

<h2 id="money-at-risk">Money at risk (open exceptions) by difference type and age</h2>
<p class="note">Open or acknowledged exceptions as of the day, including those held because a source is stale.
Age counts days since the difference was first seen.</p>
{% for c in risk_currencies %}
<h3>{{ c }}</h3>
<table class="risk" data-currency="{{ c }}"><tr><th>Difference type</th>{% for b in age_buckets %}<th class="num">{{ b }}</th>{% endfor %}<th class="num">Total</th><th>Since</th></tr>
{% for t in risk_types(c) %}<tr data-diff-type="{{ t.diff_type }}"><td>{{ t.diff_type }}</td>{% for b in age_buckets %}<td class="num">{{ money(t.buckets.get(b)) if t.buckets.get(b) is not none else '' }}</td>{% endfor %}<td class="num" data-value="{{ t.total }}">{{ money(t.total) }}</td><td>{{ t.since }}</td></tr>
{% endfor %}
<tr class="total"><td>Total</td>{% for b in age_buckets %}<td class="num">{{ money(risk_bucket_total(c, b)) }}</td>{% endfor %}<td class="num" id="risk-total-{{ c }}">{{ money(at_risk.get(c, 0)) }}</td><td></td></tr>
</table>
{{ risk_chart(c) | safe }}
{% endfor %}
{% if risk_currencies %}{{ age_legend | safe }}{% else %}<p>No open exceptions.</p>{% endif %}
<h3>By system</h3>
<table><tr><th>Currency</th><th>System</th><th class="num">Open exceptions</th><th class="num">At risk</th><th>Since</th></tr>
{% for r in d.open_exceptions_by_system %}<tr><td>{{ r.currency }}</td><td>{{ r.system }}</td><td class="num">{{ r.exceptions }}</td><td class="num">{{ money(r.amount_at_risk) }}</td><td>{{ r.since }}</td></tr>{% endfor %}
</table>

<h2 id="oldest">Oldest open exceptions</h2>
<table id="oldest-table"><tr><th>Since</th><th class="num">Age (days)</th><th>Order</th><th>Difference</th><th>System</th><th>Owner</th><th>Severity</th><th>Status</th><th class="num">At risk</th><th>Exception</th></tr>
{% for r in d.oldest_open %}<tr><td>{{ r.first_seen_date }}</td><td class="num">{{ r.age_days }}</td><td>{{ r.order_id }}</td><td>{{ r.diff_type }}</td><td>{{ r.system }}</td><td>{{ r.owner or '' }}</td><td>{{ r.severity or '' }}</td><td>{{ r.status }}{{ ' (held)' if r.is_held else '' }}</td><td class="num">{{ r.currency }} {{ money(r.amount_at_risk) }}</td><td><code>{{ (r.exception_id or '')[:12] }}</code></td></tr>
{% endfor %}</table>

<h2 id="trend">30-day trend</h2>
{{ trend_rate_chart | safe }}
{{ trend_legend | safe }}
{{ trend_money_chart | safe }}
{{ trend_money_legend | safe }}
<table id="trend-table"><tr><th>Day</th><th class="num">Orders</th><th class="num">Placed</th><th class="num">Reconciled</th><th class="num">Rate</th><th class="num">Diffs</th><th class="num">Exceptions opened</th><th class="num">Closed</th><th class="num">Latency p50 h</th></tr>
{% for r in d.trend %}<tr><td>{{ r.as_of_date }}</td><td class="num">{{ r.orders_in_scope }}</td><td class="num">{{ r.orders_placed }}</td><td class="num">{{ r.orders_reconciled }}</td><td class="num">{{ pct(r.reconciled_rate) }}</td><td class="num">{{ r.diffs }}</td><td class="num">{{ r.exceptions_opened }}</td><td class="num">{{ r.exceptions_closed }}</td><td class="num">{{ hours(r.latency_p50_hours) }}</td></tr>
{% endfor %}</table>

<h2 id="metrics">Operating metrics</h2>
<table id="metrics-table"><tr><th>Metric</th><th class="num">Value</th><th>Definition</th></tr>
<tr><td>Reconciliation latency p50 / p95, orders first reconciled today</td><td class="num">{{ hours(m.latency_p50_hours) }} / {{ hours(m.latency_p95_hours) }}</td><td>Order placed → end of the first as-of day on which it was RECONCILED</td></tr>
<tr><td>Reconciliation latency p50 / p95, last 30 days</td><td class="num" id="latency-30d">{{ hours(m.latency_p50_hours_30d) }} / {{ hours(m.latency_p95_hours_30d) }}</td><td>Same, over {{ m.orders_first_reconciled_30d }} orders</td></tr>
<tr><td>Exception rate, last 30 days</td><td class="num" id="exception-rate">{{ pct(m.exception_rate_30d) }}</td><td>Exceptions opened / orders placed ({{ m.exceptions_opened_30d }} / {{ m.orders_placed_30d }})</td></tr>
<tr><td>Mean time to resolution, last 30 days</td><td class="num" id="mttr">{{ days(m.mttr_days_30d) }}</td><td>As-of days from (re)opening to closing, over {{ m.resolutions_30d }} closings</td></tr>
<tr><td>Manual intervention rate, last 30 days</td><td class="num" id="manual-rate">{{ pct(m.manual_intervention_rate_30d) }}</td><td>Closings done by a person / all closings</td></tr>
</table>
<h3>Exception rate by type and system (last 30 days)</h3>
<table><tr><th>Difference type</th><th>System</th><th class="num">Opened</th><th class="num">Open today</th><th class="num">Rate</th></tr>
{% for r in d.exception_rates %}<tr><td>{{ r.diff_type }}</td><td>{{ r.system }}</td><td class="num">{{ r.opened }}</td><td class="num">{{ r.open_today }}</td><td class="num">{{ pct(r.exception_rate) }}</td></tr>{% endfor %}
</table>
<h3>Resolution by owner and type (last 30 days)</h3>
<table><tr><th>Owner</th><th>Difference type</th><th class="num">Closed</th><th class="num">By a person</th><th class="num">MTTR</th><th class="num">Manual rate</th></tr>
{% for r in d.resolution %}<tr><td>{{ r.owner }}</td><td>{{ r.diff_type }}</td><td class="num">{{ r.resolutions }}</td><td class="num">{{ r.manual }}</td><td class="num">{{ days(r.mttr_days) }}</td><td class="num">{{ pct(r.manual_rate) }}</td></tr>{% endfor %}
</table>

<h2 id="freshness">Source freshness</h2>
<table><tr><th>System</th><th>Role</th><th>Last delivered (UTC)</th><th class="num">Window (h)</th><th>Status</th></tr>
{% for r in d.freshness %}<tr><td>{{ r.system }}</td><td>{{ r.role }}</td><td>{{ r.last_seen_at or '-' }}</td><td class="num">{{ r.freshness_hours or '' }}</td><td class="{{ 'bad' if r.is_stale else 'ok' }}">{{ 'stale: its orders are on hold' if r.is_stale else 'fresh' }}</td></tr>{% endfor %}
</table>
<footer>Generated by order-recon{% if generated_at %} at {{ generated_at }} UTC{% endif %}. Working files: tie_out.csv, match_rates.csv,
money_at_risk.csv, open_exceptions.csv, trend.csv, metrics.csv, report.xlsx; machine-readable summary: summary.json.
Definitions: docs/reports.md.</footer>
</main></body></html>
"""


def money(value: Any) -> str:
    """1,234.56 (two decimals for reading; the CSV/XLSX/JSON keep four)."""
    if value is None:
        return ""
    return f"{Decimal(value):,.2f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} h"


def days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} d"


def render_html(data: ReportData, generated_at: str | None = None) -> str:
    """The report as a self-contained HTML page.

    Args:
        data: the collected sections.
        generated_at: a timestamp for the footer (None leaves it out).

    Returns:
        The HTML text.
    """
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    at_risk: dict[str, Decimal] = {}
    for r in data.money_at_risk:
        at_risk[r["currency"]] = at_risk.get(r["currency"], Decimal(0)) + r["amount_at_risk"]
    risk_currencies = sorted(at_risk)
    bucket_colour = dict(charts.BUCKET_COLOURS)
    age_colours = dict(zip(AGE_BUCKETS, ("#f5c26b", "#e8a33d", "#d9792b", "#c0392b", "#922b21", "#5b1a14"),
                           strict=True))

    def sys(role: str) -> str:
        systems = data.systems_by_role.get(role) or []
        return "+".join(systems) if systems else "not configured"

    def check(currency: str, measure: str) -> dict[str, Any]:
        return next(c for c in data.tie_out_checks if c["currency"] == currency and c["measure"] == measure)

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
                                                "since": r["since"]})
            t["buckets"][r["age_bucket"]] = r["amount_at_risk"]
            t["total"] += r["amount_at_risk"]
            t["since"] = min(t["since"], r["since"])
        return sorted(out.values(), key=lambda t: -t["total"])

    def risk_bucket_total(currency: str, bucket: str) -> Decimal:
        return sum((r["amount_at_risk"] for r in data.money_at_risk
                    if r["currency"] == currency and r["age_bucket"] == bucket), Decimal(0))

    def risk_chart(currency: str) -> str:
        rows = [(t["diff_type"], [(b, t["buckets"].get(b, 0), age_colours[b]) for b in AGE_BUCKETS])
                for t in risk_types(currency)]
        return charts.stacked_bars(rows, title=f"Money at risk {currency} by difference type and age")

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
    trend_money_chart = charts.line_chart(labels, money_series,
                                          title="Money at risk in the day's differences, per currency")
    template = env.from_string(_TEMPLATE)
    return template.render(
        d=data, m=data.metrics, measures=MEASURES, age_buckets=AGE_BUCKETS, at_risk=at_risk,
        risk_currencies=risk_currencies, money=money, pct=pct, hours=hours, days=days, sys=sys, check=check,
        tie_chart=tie_chart, risk_types=risk_types, risk_bucket_total=risk_bucket_total, risk_chart=risk_chart,
        bucket_legend=charts.legend([(label, bucket_colour[key]) for key, label in BUCKETS]),
        age_legend=charts.legend([(b, age_colours[b]) for b in AGE_BUCKETS]),
        trend_rate_chart=trend_rate_chart,
        trend_legend=charts.legend([("Orders reconciled", charts.PALETTE[0]),
                                    ("Orders with differences", charts.PALETTE[2])]),
        trend_money_chart=trend_money_chart,
        trend_money_legend=charts.legend([(c, col) for c, _, col in money_series]),
        generated_at=generated_at,
    )
