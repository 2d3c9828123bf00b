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

from dagster_project.lib.exceptions_read import plain
from dagster_project.lib.reports.data import MEASURES, ReportData

# (file stem / sheet name, section attribute, columns)
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("tie_out", "tie_out", ("currency", "bucket", "line", "orders", *(m for m, _, _ in MEASURES))),
    ("tie_out_checks", "tie_out_checks",
     ("currency", "measure", "system", "system_total", "bridged_total", "difference", "ok")),
    ("match_rates", "match_rates",
     ("left_role", "right_role", "left_systems", "right_systems", "orders", "in_both", "matched",
      "with_differences", "only_one_side", "match_rate")),
    ("money_at_risk", "money_at_risk", ("currency", "diff_type", "age_bucket", "exceptions", "amount_at_risk", "since")),
    ("open_exceptions", "oldest_open",
     ("first_seen_date", "age_days", "exception_id", "order_id", "diff_type", "system", "owner", "severity",
      "status", "is_held", "currency", "amount_at_risk", "due_at")),
    ("trend", "trend",
     ("as_of_date", "orders_in_scope", "orders_placed", "orders_reconciled", "orders_with_diffs", "orders_on_hold",
      "reconciled_rate", "diffs", "diffs_opened", "exceptions_opened", "exceptions_closed", "latency_p50_hours",
      "latency_p95_hours")),
    ("exception_rates", "exception_rates", ("diff_type", "system", "opened", "open_today", "exception_rate")),
    ("resolution", "resolution", ("owner", "diff_type", "resolutions", "manual", "mttr_days", "manual_rate")),
)


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
        for row in getattr(data, attr):
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


def write_xlsx(data: ReportData, path: Path) -> Path:
    """One workbook, a sheet per section; money as numbers with two decimals shown."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    bold = book.add_format({"bold": True, "bg_color": "#EEF1F5"})
    money_fmt = book.add_format({"num_format": "#,##0.00"})
    pct_fmt = book.add_format({"num_format": "0.0%"})
    date_fmt = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet = book.add_worksheet("summary")
    sheet.write_row(0, 0, ["metric", "value"], bold)
    sheet.write(1, 0, "as_of_date")
    sheet.write(1, 1, data.as_of_date.isoformat())
    sheet.write(2, 0, "tie_out_ok")
    sheet.write_boolean(2, 1, data.tie_out_ok)
    for i, (key, value) in enumerate(sorted(data.metrics.items()), start=3):
        sheet.write(i, 0, key)
        _cell(sheet, i, 1, value, key, money_fmt, pct_fmt, date_fmt)
    sheet.set_column(0, 0, 34)
    sheet.set_column(1, 1, 16)
    for stem, attr, columns in SECTIONS:
        ws = book.add_worksheet(stem[:31])
        ws.write_row(0, 0, list(columns), bold)
        for r, row in enumerate(getattr(data, attr), start=1):
            for c, column in enumerate(columns):
                _cell(ws, r, c, row.get(column), column, money_fmt, pct_fmt, date_fmt)
        ws.set_column(0, len(columns) - 1, 15)
        ws.freeze_panes(1, 0)
        if getattr(data, attr):
            ws.autofilter(0, 0, len(getattr(data, attr)), len(columns) - 1)
    book.close()
    _atomic_write(path, buffer.getvalue())
    return path


def _cell(ws: Any, r: int, c: int, value: Any, column: str, money_fmt: Any, pct_fmt: Any, date_fmt: Any) -> None:
    if value is None:
        ws.write_blank(r, c, None)
    elif isinstance(value, bool):
        ws.write_boolean(r, c, value)
    elif isinstance(value, Decimal):
        ws.write_number(r, c, float(value), money_fmt)
    elif isinstance(value, float) and ("rate" in column):
        ws.write_number(r, c, value, pct_fmt)
    elif isinstance(value, int | float):
        ws.write_number(r, c, value)
    elif isinstance(value, dt.datetime):
        ws.write_string(r, c, value.isoformat(sep=" "))
    elif isinstance(value, dt.date):
        ws.write_datetime(r, c, dt.datetime(value.year, value.month, value.day), date_fmt)
    else:
        ws.write_string(r, c, str(value))


def summary(data: ReportData) -> dict[str, Any]:
    """The machine-readable summary (for alert thresholds and CI gates)."""
    at_risk: dict[str, Decimal] = {}
    for r in data.money_at_risk:
        at_risk[r["currency"]] = at_risk.get(r["currency"], Decimal(0)) + r["amount_at_risk"]
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
        "notes": data.notes,
    })


def write_json(data: ReportData, path: Path, extra: dict[str, Any] | None = None) -> Path:
    body = {**summary(data), **(extra or {})}
    _atomic_write(path, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())
    return path


def write_text(path: Path, text: str) -> Path:
    _atomic_write(path, text.encode())
    return path
