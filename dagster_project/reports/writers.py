"""Write the report's files: CSV per section, one XLSX workbook, the JSON summary, the HTML page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from dagster_project.exceptions.read import plain
from dagster_project.lib.money import currency_digits
from dagster_project.reports.data import MEASURES, ZERO, ReportData
from ingestion.catalogue import diff_title

# (file stem / sheet name, section attribute, columns), in the report's order.
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("at_a_glance", "glance",
     ("currency", *(m for m, _, _ in MEASURES), *(f"{m}_orders" for m, _, _ in MEASURES), "reconciled",
      "reconciled_orders", "at_risk", "at_risk_exceptions", "open_exceptions_sold", "open_exceptions_orders")),
    ("changes", "changes", ("label", "currency", "figure", "kind", "previous", "today", "change")),
    ("tie_out", "tie_out", ("currency", "bucket", "line", "orders", *(m for m, _, _ in MEASURES))),
    ("tie_out_checks", "tie_out_checks",
     ("currency", "measure", "system", "system_total", "bridged_total", "difference", "ok")),
    ("match_rates", "match_rates",
     ("left_role", "right_role", "left_systems", "right_systems", "orders", "in_both", "matched",
      "with_differences", "only_one_side", "match_rate")),
    ("money_at_risk", "money_at_risk",
     ("currency", "diff_type", "difference", "age_bucket", "exceptions", "amount_at_risk", "since")),
    ("open_exceptions", "open_list",
     ("first_seen_date", "age_days", "exception_id", "order_id", "diff_type", "difference", "system", "owner",
      "severity", "status", "is_held", "currency", "amount_at_risk", "due_at")),
    ("orders_not_reconciled", "orders_not_reconciled",
     ("currency", "bucket", "order_id", "state", "hold_reason", "ordered_date", *(m for m, _, _ in MEASURES))),
    ("no_currency_orders", "no_currency_orders",
     ("order_id", "state", "hold_reason", "reason", "reason_text", "is_paid", "is_invoiced", "is_fulfilled")),
    ("no_currency_exceptions", "no_currency_exceptions", ("diff_type", "difference", "exceptions", "reason", "since")),
    ("trend", "trend",
     ("as_of_date", "orders_in_scope", "orders_placed", "orders_reconciled", "orders_with_diffs", "orders_on_hold",
      "reconciled_rate", "diffs", "diffs_opened", "exceptions_opened", "exceptions_closed", "latency_p50_hours",
      "latency_p95_hours")),
    ("exception_rates", "exception_rates",
     ("diff_type", "difference", "system", "opened", "open_today", "exception_rate")),
    ("resolution", "resolution", ("owner", "diff_type", "difference", "resolutions", "manual", "mttr_days",
                                  "manual_rate")),
)


def section_rows(data: ReportData, attr: str) -> list[dict[str, Any]]:
    """A section's rows as written to CSV and XLSX: the difference's human name beside its type."""
    if attr == "glance":
        rows = [{**h, "at_risk": data.at_risk.get(h["currency"], {}).get("amount", ZERO),
                 "at_risk_exceptions": data.at_risk.get(h["currency"], {}).get("exceptions", 0)}
                for h in data.headline]
    else:
        rows = getattr(data, attr)
    return [{**r, "difference": diff_title(r["diff_type"])} if "diff_type" in r else r for r in rows]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_csvs(data: ReportData, out: Path) -> list[Path]:
    """One CSV per section (exact decimals as text), plus metrics.csv with one metric per line."""
    paths = []
    for stem, attr, columns in SECTIONS:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["as_of_date", *columns])
        for row in section_rows(data, attr):
            writer.writerow([data.as_of_date.isoformat(), *(_text(row.get(c)) for c in columns)])
        path = out / f"{stem}.csv"
        _atomic_write(path, buffer.getvalue().encode())
        paths.append(path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["as_of_date", "metric", "value"])
    for key, value in sorted(data.metrics.items()):
        writer.writerow([data.as_of_date.isoformat(), key, _text(value)])
    path = out / "metrics.csv"
    _atomic_write(path, buffer.getvalue().encode())
    paths.append(path)
    return paths


def write_xlsx(data: ReportData, path: Path, max_rows: int | None = None) -> Path:
    """One workbook, a sheet per section (the report's order), header row frozen and filtered.

    Money is a number in its currency's decimals (``#,##0.00``; ``#,##0`` for JPY), rates a percentage,
    counts whole numbers, days real dates; the ``metrics`` sheet lists every metric. A sheet holds at most
    ``max_rows`` rows (``report.workbook_rows``; None: all), the first in the report's order; one with more
    ends in a line naming how many more there are and the CSV that holds every row.
    """
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    formats = _Formats(book)
    for stem, attr, columns in SECTIONS:
        _sheet(book, formats, stem, columns, section_rows(data, attr), max_rows)
    metrics = [{"metric": "as_of_date", "value": data.as_of_date}, {"metric": "tie_out_ok", "value": data.tie_out_ok},
               *({"metric": k, "value": v} for k, v in sorted(data.metrics.items()))]
    _sheet(book, formats, "metrics", ("metric", "value"), metrics, None)
    book.close()
    _atomic_write(path, buffer.getvalue())
    return path


class _Formats:
    """The workbook's cell formats, made once each."""

    def __init__(self, book: Any) -> None:
        self.book = book
        self.header = book.add_format({"bold": True, "bg_color": "#EEF1F5", "text_wrap": True, "valign": "top"})
        self.pct = book.add_format({"num_format": "0.0%"})
        self.count = book.add_format({"num_format": "#,##0"})
        self.decimal = book.add_format({"num_format": "#,##0.0"})
        self.date = book.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        self.note = book.add_format({"italic": True, "font_color": "#555555"})
        self._money: dict[int, Any] = {}

    def money(self, currency: str | None) -> Any:
        digits = currency_digits(currency)
        if digits not in self._money:
            self._money[digits] = self.book.add_format({"num_format": "#,##0" + ("." + "0" * digits if digits else "")})
        return self._money[digits]


def _sheet(book: Any, formats: _Formats, name: str, columns: tuple[str, ...], rows: list[dict[str, Any]],
           max_rows: int | None) -> None:
    ws = book.add_worksheet(name[:31])
    ws.write_row(0, 0, list(columns), formats.header)
    shown = rows if max_rows is None else rows[:max_rows]
    for r, row in enumerate(shown, start=1):
        for c, column in enumerate(columns):
            _cell(ws, r, c, row.get(column), column, row, formats)
    if len(shown) < len(rows):
        ws.write_string(len(shown) + 1, 0, f"… and {len(rows) - len(shown):,} more rows (the first {len(shown):,} "
                        f"of {len(rows):,} are above): every row is in {name}.csv", formats.note)
    ws.set_column(0, len(columns) - 1, 15)
    ws.freeze_panes(1, 0)
    if shown:
        ws.autofilter(0, 0, len(shown), len(columns) - 1)


def _cell(ws: Any, r: int, c: int, value: Any, column: str, row: dict[str, Any], formats: _Formats) -> None:
    if value is None:
        ws.write_blank(r, c, None)
    elif isinstance(value, bool):
        ws.write_boolean(r, c, value)
    elif isinstance(value, Decimal):
        ws.write_number(r, c, float(value), formats.money(row.get("currency")))
    elif isinstance(value, float) and ("rate" in column or row.get("kind") == "rate"):
        ws.write_number(r, c, value, formats.pct)
    elif isinstance(value, float):
        ws.write_number(r, c, value, formats.decimal)
    elif isinstance(value, int):
        ws.write_number(r, c, value, formats.count)
    elif isinstance(value, dt.datetime):
        ws.write_datetime(r, c, value.replace(tzinfo=None), formats.datetime)
    elif isinstance(value, dt.date):
        ws.write_datetime(r, c, dt.datetime(value.year, value.month, value.day), formats.date)
    else:
        ws.write_string(r, c, str(value))


def summary(data: ReportData) -> dict[str, Any]:
    """The machine-readable summary (for alert thresholds and CI gates)."""
    at_risk = {c: r["amount"] for c, r in sorted(data.at_risk.items())}
    return plain({  # amounts DECIMAL(20,4) as floats: exact to the cent and below when printed back
        "as_of_date": data.as_of_date,
        "tie_out_ok": data.tie_out_ok,
        "currencies": {
            h["currency"]: {**{k: v for k, v in h.items() if k != "currency"},
                            "money_at_risk": at_risk.get(h["currency"], Decimal(0))}
            for h in data.headline},
        "money_at_risk_by_currency": at_risk,
        "metrics": {k: v for k, v in data.metrics.items() if not k.startswith("money_at_risk_")},
        "match_rates": {f"{r['left_role']}-{r['right_role']}": r["match_rate"] for r in data.match_rates},
        "tie_out_checks": data.tie_out_checks,
        "stale_systems": [r["system"] for r in data.freshness if r["is_stale"]],
        "previous_as_of_date": data.previous_date,
        "changes": data.changes,
        "without_currency": {"orders": len(data.no_currency_orders),
                             "open_exceptions": data.metrics.get("open_exceptions_without_currency", 0)},
        "notes": data.notes,
    })


def write_json(data: ReportData, path: Path, extra: dict[str, Any] | None = None) -> Path:
    body = {**summary(data), **(extra or {})}
    _atomic_write(path, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())
    return path


def write_text(path: Path, text: str) -> Path:
    _atomic_write(path, text.encode())
    return path
