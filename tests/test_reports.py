"""The daily reconciliation report: figures and exact tie-out.

These tests build the marts the report reads by SQL with known figures. The report asset on real
nightly runs (dbt + Dagster), rerun and checked against the marts, is tested on the one small demo of
tests/test_report_browser.py, which also reads the page in the browser.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from dagster_project.config.model import ReconConfig
from dagster_project.exceptions.store import ensure_schema
from dagster_project.reports import build_report, collect
from dagster_project.reports.data import age_bucket

D = dt.date(2026, 10, 5)

# Until the lead wires the reporting domain into definitions.py, the tests add it themselves.
DEFINITIONS_WITH_REPORTING = """
import dagster as dg

from dagster_project.definitions import build_definitions
from dagster_project.defs.reporting import assets as reporting_assets
from dagster_project.defs.reporting import sensors as reporting_sensors
from dagster_project.config.model import load_config


def definitions_with_reporting(config_path=None):
    defs = build_definitions(config_path)
    if dg.AssetKey("reconciliation_report") in defs.resolve_all_asset_keys():
        return defs
    config = load_config(config_path)
    return dg.Definitions.merge(defs, reporting_assets.build_defs(config), reporting_sensors.build_defs(config))
"""
_namespace: dict = {}
exec(DEFINITIONS_WITH_REPORTING, _namespace)
definitions_with_reporting = _namespace["definitions_with_reporting"]


def build_small_database(path: Path) -> None:
    """Marts of two days with known figures (EUR and USD, an orphan, a held and an accepted exception)."""
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("""
        create table marts.fct_order_state_history (
            as_of_date date, order_id varchar, customer_id varchar, state varchar, previous_state varchar,
            is_first_seen boolean, hold_reason varchar, state_owner varchar, diff_count bigint,
            has_order_record boolean, currency varchar, total_amount decimal(20,4), ordered_at timestamp,
            is_paid boolean, net_paid_amount decimal(20,4), is_invoiced boolean, net_invoiced_amount decimal(20,4),
            is_fulfilled boolean, row_hash varchar)""")
    rows = [
        # day 4: o1 paid only; day 5: o1 reconciled (its latest row wins)
        ("2026-10-04", "o1", "PAID", True, "EUR", "100.10", "2026-10-04 10:00", True, "100.10", False, "0", False),
        ("2026-10-05", "o1", "RECONCILED", True, "EUR", "100.10", "2026-10-04 10:00", True, "100.10", True, "100.10", True),
        ("2026-10-04", "o2", "FULFILLED", True, "EUR", "50.05", "2026-10-03 09:00", True, "60.05", True, "50.05", True),
        ("2026-10-05", "o3", "VALIDATED", True, "EUR", "20.00", "2026-10-05 08:00", False, "0", False, "0", False),
        ("2026-10-05", "o4", "CANCELLED", True, "USD", "30.00", "2026-10-05 07:00", False, "0", False, "0", False),
        ("2026-10-05", "o5", "RECONCILED", True, "USD", "70.33", "2026-10-05 01:00", True, "70.33", True, "70.33", True),
        ("2026-10-05", "o6", "ON_HOLD", False, None, None, None, True, "9.99", False, "0", False),
        ("2026-10-05", "o7", "FULFILLED", True, "USD", "12.00", "2026-10-02 01:00", True, "12.00", True, "12.00", True),
        # a payment whose order the storefront never sent, not flagged yet: no currency anywhere
        ("2026-10-05", "o8", "ON_HOLD", False, None, None, None, True, "5.00", False, "0", False),
        # a row after D must be invisible
        ("2026-10-06", "o3", "PAID", True, "EUR", "20.00", "2026-10-05 08:00", True, "20.00", False, "0", False),
    ]
    for r in rows:
        con.execute("insert into marts.fct_order_state_history (as_of_date, order_id, state, has_order_record, currency, "
                    "total_amount, ordered_at, is_paid, net_paid_amount, is_invoiced, net_invoiced_amount, is_fulfilled, "
                    "row_hash) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'h')", list(r))
    con.execute("""
        create table marts.fct_order_diffs (
            as_of_date date, order_id varchar, diff_type varchar, system varchar, role varchar, systems_involved varchar,
            currency varchar, amount_at_risk decimal(20,4), owner varchar, severity varchar, first_seen_date date)""")
    con.execute("""insert into marts.fct_order_diffs values
        ('2026-10-05', 'o2', 'amount_mismatch', 'psp', 'payments', 'shop, psp', 'EUR', 10.00, 'payments-ops', 'high', '2026-10-01'),
        ('2026-10-05', 'o6', 'orphan_record', 'psp', 'payments', 'shop, psp', 'USD', 9.99, 'payments-ops', 'medium', '2026-10-05'),
        ('2026-10-05', 'o7', 'customer_mismatch', 'psp', 'payments', 'shop, psp', 'USD', 0, 'revenue-ops', 'low', '2026-10-02'),
        ('2026-10-04', 'o2', 'amount_mismatch', 'psp', 'payments', 'shop, psp', 'EUR', 10.00, 'payments-ops', 'high', '2026-10-01')""")
    con.execute("""
        create table marts.fct_reconciliation_daily as select * from (values
        (date '2026-10-04', 3, 1, 0, 1, 0, 0.0, 1, 0, 0, null::double, null::double, 0, null::double, null::double),
        (date '2026-10-05', 7, 3, 2, 3, 1, 2.0 / 7, 3, 1, 2, 24.0, 40.0, 2, 24.0, 40.0))
        t(as_of_date, orders_in_scope, orders_placed, orders_reconciled, orders_with_diffs, orders_on_hold,
          reconciled_rate, diffs, diffs_opened, orders_first_reconciled, latency_p50_hours, latency_p95_hours,
          orders_first_reconciled_30d, latency_p50_hours_30d, latency_p95_hours_30d)""")
    ensure_schema(con)
    exceptions = [
        # o2: open; o7: accepted by a person; o9: held (stale source, no diff on D)
        ("x2", "o2", "amount_mismatch", "psp", "open", "EUR", "10.00", "2026-10-01"),
        ("x7", "o7", "customer_mismatch", "psp", "accepted", "USD", "0", "2026-10-02"),
        ("x9", "o9", "missing_invoice", "erp", "open", "EUR", "5.55", "2026-09-20"),
        # a broken contract: no order, no amount, no currency
        ("xc", "<erp.documents: no key, record 3>", "contract_violation", "erp", "open", None, "0", "2026-10-05"),
    ]
    for ex_id, order, diff_type, system, status, cur, amount, first in exceptions:
        con.execute("insert into recon.exceptions (exception_id, order_id, diff_type, system, status, currency, "
                    "amount_at_risk, owner, severity, first_seen_date, last_seen_date, last_as_of_date, "
                    "opened_as_of_date) values (?, ?, ?, ?, ?, ?, ?, 'ops', 'high', ?, ?, ?, ?)",
                    [ex_id, order, diff_type, system, status, cur, amount, first, first, first, first])
    events = [
        ("e1", "x2", "2026-10-01", "opened", "recon", None, "open", "2026-10-02 01:00"),
        ("e2", "x7", "2026-10-02", "opened", "recon", None, "open", "2026-10-03 01:00"),
        ("e3", "x7", "2026-10-04", "accepted", "alice", "open", "accepted", "2026-10-04 12:00"),
        ("e4", "x9", "2026-09-20", "opened", "recon", None, "open", "2026-09-21 01:00"),
        ("e6", "xc", "2026-10-05", "opened", "recon", None, "open", "2026-10-06 01:00"),
        # a later event must not change the status as of D
        ("e5", "x2", "2026-10-06", "auto_resolved", "recon", "open", "auto_resolved", "2026-10-07 01:00"),
    ]
    for e in events:
        con.execute("insert into recon.exception_events (event_id, exception_id, as_of_date, event_type, actor, "
                    "from_status, to_status, recorded_at) values (?, ?, ?, ?, ?, ?, ?, ?)", list(e))
    con.close()


@pytest.fixture
def small_db(tmp_path: Path) -> Path:
    path = tmp_path / "small.duckdb"
    build_small_database(path)
    return path


def test_tie_out_sums_exactly_and_buckets_every_order_once(small_db: Path, demo_config: ReconConfig) -> None:
    con = duckdb.connect(str(small_db), read_only=True)
    data = collect(con, demo_config, D)
    con.close()
    assert data.tie_out_ok
    assert data.currencies == ["EUR", "USD"]
    line = {(r["currency"], r["bucket"]): r for r in data.tie_out}
    # EUR: o1 reconciled (as of D, not its day-4 row), o2 open exception, o3 in progress (its day-6 row is invisible)
    assert line[("EUR", "total")]["sold"] == Decimal("170.1500")
    assert line[("EUR", "total")]["paid"] == Decimal("160.1500")
    assert line[("EUR", "reconciled")]["sold"] == Decimal("100.1000")
    assert line[("EUR", "open_exceptions")]["paid"] == Decimal("60.0500")
    assert line[("EUR", "in_progress")]["orders"] == 1
    # USD: o5 reconciled, o4 cancelled, o7 accepted by a person, o6 an orphan whose currency comes from its diff
    assert line[("USD", "reconciled")]["sold"] == Decimal("70.3300")
    assert line[("USD", "cancelled_refunded")]["sold"] == Decimal("30.0000")
    assert line[("USD", "closed_by_people")]["orders"] == 1
    assert line[("USD", "open_exceptions")]["paid"] == Decimal("9.9900")
    assert line[("USD", "total")]["paid"] == Decimal("92.3200")
    for check in data.tie_out_checks:
        assert check["difference"] == 0 and isinstance(check["system_total"], Decimal)
    # o8 names no currency: counted with its reason, in no currency's figures (no pseudo-currency "unknown")
    assert [(r["order_id"], r["reason"]) for r in data.no_currency_orders] == [("o8", "orphan_not_flagged_yet")]
    assert "grace window" in data.no_currency_orders[0]["reason_text"]
    # counts beside the amounts: orders each system reported, orders reconciled
    eur = next(h for h in data.headline if h["currency"] == "EUR")
    assert (eur["sold_orders"], eur["paid_orders"], eur["reconciled_orders"]) == (3, 2, 1)


def test_day_over_day_changes_read_the_previous_reconciled_day(small_db: Path, demo_config: ReconConfig) -> None:
    con = duckdb.connect(str(small_db), read_only=True)
    data = collect(con, demo_config, D)
    first = collect(con, demo_config, dt.date(2026, 10, 4))
    con.close()
    assert data.previous_date == dt.date(2026, 10, 4) and first.previous_date is None
    change = {(r["currency"], r["figure"]): r for r in data.changes}
    # EUR sold on 10-04: o1 100.10 + o2 50.05 (o3 was not placed yet); on 10-05 o3 adds 20.00
    assert change[("EUR", "sold")]["previous"] == Decimal("150.1500")
    assert change[("EUR", "sold")]["change"] == Decimal("20.0000")
    # EUR at risk on 10-04: o2's diff (10.00) and o9 carried over (5.55); unchanged on 10-05
    assert change[("EUR", "at_risk")]["change"] == Decimal("0.0000")
    assert change[("", "open_exceptions")]["today"] == 4
    assert change[("", "reconciled_rate")]["change"] == pytest.approx(2 / 7)
    # USD did not exist on 10-04: no change to claim
    assert change[("USD", "sold")]["previous"] is None and change[("USD", "sold")]["change"] is None
    assert all(r["change"] is None for r in first.changes)


def test_money_at_risk_counts_open_and_held_exceptions_by_age(small_db: Path, demo_config: ReconConfig) -> None:
    con = duckdb.connect(str(small_db), read_only=True)
    data = collect(con, demo_config, D)
    con.close()
    risk = {(r["currency"], r["diff_type"], r["age_bucket"]): r["amount_at_risk"] for r in data.money_at_risk}
    assert risk == {
        ("EUR", "amount_mismatch", "4-7 days"): Decimal("10.0000"),
        ("EUR", "missing_invoice", "15-30 days"): Decimal("5.5500"),  # held: no diff on D, still open
        ("USD", "orphan_record", "0-1 days"): Decimal("9.9900"),       # not synced yet: counts as open
    }
    assert data.metrics["open_exceptions"] == 4
    assert data.metrics["open_exceptions_held"] == 2  # o9 (its source is stale) and the broken contract
    assert data.metrics["open_exceptions_without_currency"] == 1
    assert data.at_risk == {"EUR": {"exceptions": 2, "amount": Decimal("15.5500")},
                            "USD": {"exceptions": 1, "amount": Decimal("9.9900")}}
    assert [(r["diff_type"], r["exceptions"]) for r in data.no_currency_exceptions] == [("contract_violation", 1)]
    assert data.metrics["oldest_open_since"] == dt.date(2026, 9, 20)
    assert [r["order_id"] for r in data.open_list] == ["o9", "o2", "o6", "<erp.documents: no key, record 3>"]
    assert [age_bucket(n) for n in (0, 1, 2, 3, 4, 7, 8, 14, 15, 30, 31)] == [
        "0-1 days", "0-1 days", "2-3 days", "2-3 days", "4-7 days", "4-7 days", "8-14 days", "8-14 days",
        "15-30 days", "15-30 days", "over 30 days"]


def test_report_files_are_written_to_the_dated_folder(small_db: Path, demo_config: ReconConfig,
                                                      tmp_path: Path) -> None:
    con = duckdb.connect(str(small_db), read_only=True)
    result = build_report(con, demo_config, D, out=tmp_path / "reports")
    con.close()
    assert result.folder == (tmp_path / "reports" / "2026-10-05").resolve()
    names = sorted(p.name for p in result.folder.iterdir())
    assert {"report.html", "report.xlsx", "summary.json", "tie_out.csv", "money_at_risk.csv", "trend.csv",
            "match_rates.csv", "open_exceptions.csv", "metrics.csv"} <= set(names)
    summary = json.loads(result.json.read_text())
    assert summary["tie_out_ok"] is True
    assert summary["currencies"]["EUR"]["sold"] == 170.15
    assert summary["money_at_risk_by_currency"] == {"EUR": 15.55, "USD": 9.99}
    tie_out_csv = (result.folder / "tie_out.csv").read_text()
    assert "2026-10-05,EUR,total,System total,3,170.1500,160.1500" in tie_out_csv
    html = result.html.read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "<svg" in html
    # every drill-down link lands on something in the page; no repository path, no pseudo-currency
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    targets = set(ids)
    links = set(re.findall(r'href="#([^"]+)"', html))
    assert links and links <= targets, sorted(links - targets)
    assert {"open-EUR-amount_mismatch", "open-none-contract_violation", "orders-EUR-open_exceptions",
            "x-x2", "no-currency"} <= targets
    assert "docs/" not in html and ">unknown<" not in html and ">mixed<" not in html
    assert "Amount mismatch" in html and "recon exceptions list --type amount_mismatch --currency EUR" in html
    assert "@media print" in html
    open_csv = list(csv.DictReader((result.folder / "open_exceptions.csv").open()))
    assert [(r["order_id"], r["difference"]) for r in open_csv][:2] == [("o9", "Missing invoice"),
                                                                        ("o2", "Amount mismatch")]
    assert {r["order_id"] for r in csv.DictReader((result.folder / "no_currency_orders.csv").open())} == {"o8"}


def test_workbook_has_a_sheet_per_section_with_number_formats(small_db: Path, demo_config: ReconConfig,
                                                              tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl", reason="openpyxl is a dev dependency (pip install -e '.[dev]')")
    from dagster_project.reports.writers import SECTIONS

    con = duckdb.connect(str(small_db), read_only=True)
    result = build_report(con, demo_config, D, out=tmp_path / "reports")
    con.close()
    book = openpyxl.load_workbook(result.xlsx)
    assert book.sheetnames == [stem for stem, _, _ in SECTIONS] + ["metrics"]
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2", sheet.title  # the header row stays in view
        assert sheet["A1"].font.bold, sheet.title

    def rows(name: str) -> list[dict]:
        values = list(book[name].iter_rows(values_only=True))
        return [dict(zip(values[0], r, strict=True)) for r in values[1:]]

    glance = {r["currency"]: r for r in rows("at_a_glance")}
    assert glance["EUR"]["sold"] == pytest.approx(170.15) and glance["EUR"]["sold_orders"] == 3
    assert glance["EUR"]["at_risk"] == pytest.approx(15.55) and glance["EUR"]["at_risk_exceptions"] == 2
    header = [c.value for c in book["at_a_glance"][1]]
    sold = book["at_a_glance"].cell(row=2, column=header.index("sold") + 1)
    assert sold.data_type == "n" and sold.number_format == "#,##0.00"
    changes = {(r["currency"], r["figure"]): r for r in rows("changes")}
    assert changes[("EUR", "sold")]["change"] == pytest.approx(20.0)
    trend = book["trend"]
    header = [c.value for c in trend[1]]
    assert trend.cell(row=2, column=header.index("as_of_date") + 1).is_date
    assert trend.cell(row=2, column=header.index("reconciled_rate") + 1).number_format == "0.0%"
    risk = rows("money_at_risk")
    assert {(r["currency"], r["difference"], r["exceptions"]) for r in risk} == {
        ("EUR", "Amount mismatch", 1), ("EUR", "Missing invoice", 1), ("USD", "Record without an order", 1)}
    assert [r["diff_type"] for r in rows("no_currency_exceptions")] == ["contract_violation"]


def test_workbook_sheets_stop_at_workbook_rows_and_name_the_csv_with_every_row(
        small_db: Path, demo_config: ReconConfig, tmp_path: Path) -> None:
    # At 1M orders the two lists are ~160k rows (~30 s of xlsxwriter); past 1,048,576 rows Excel cannot
    # show them at all. The workbook holds the first N of each section, says how many more, and where.
    openpyxl = pytest.importorskip("openpyxl", reason="openpyxl is a dev dependency (pip install -e '.[dev]')")
    from dagster_project.config.model import ReportConfig

    config = demo_config.model_copy(update={"report": ReportConfig(workbook_rows=1)})
    con = duckdb.connect(str(small_db), read_only=True)
    result = build_report(con, config, D, out=tmp_path / "reports")
    whole = build_report(con, demo_config, D, out=tmp_path / "whole")
    con.close()
    book = openpyxl.load_workbook(result.xlsx)
    for stem in ("open_exceptions", "orders_not_reconciled"):
        every = list(csv.DictReader((result.folder / f"{stem}.csv").open()))
        assert len(every) > 1, stem  # the CSV keeps them all
        sheet = book[stem]
        values = list(sheet.iter_rows(values_only=True))
        header, first, note = values[0], values[1], values[2]
        assert len(values) == 3, stem
        shown = dict(zip(header, first, strict=True))
        key = "exception_id" if stem == "open_exceptions" else "order_id"
        assert shown[key] == every[0][key], stem  # the first rows in the report's order
        assert note[0] == f"… and {len(every) - 1:,} more rows (the first 1 of {len(every):,} are above): " \
                          f"every row is in {stem}.csv", stem
        assert all(v is None for v in note[1:])
        assert sheet.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}2", stem
    page = result.html.read_text()
    assert "all of them in <code>open_exceptions.csv</code>, the first 1 in the workbook)" in page
    assert "all of them in <code>open_exceptions.csv</code> and the workbook)" in whole.html.read_text()
    metrics = list(book["metrics"].iter_rows(values_only=True))
    assert len(metrics) > 3  # the metrics sheet is never cut: it is the figures themselves
    # the default bound holds every row of a small day
    every = list(csv.DictReader((whole.folder / "open_exceptions.csv").open()))
    assert openpyxl.load_workbook(whole.xlsx)["open_exceptions"].max_row == len(every) + 1


def test_report_of_a_day_that_was_not_reconciled_fails_clearly(small_db: Path, demo_config: ReconConfig) -> None:
    from dagster_project.reports import ReportDataError

    con = duckdb.connect(str(small_db), read_only=True)
    with pytest.raises(ReportDataError, match="2026-10-09 has not been reconciled"):
        collect(con, demo_config, dt.date(2026, 10, 9))
    con.close()


def test_run_failure_alert_goes_to_the_outbox_once(demo_config: ReconConfig, monkeypatch) -> None:
    from dagster_project.defs.reporting import sensors

    monkeypatch.setenv("RECON_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("RECON_WEBHOOK_TOKEN", "token")
    channels = demo_config.notifications.channels
    enabled = {**channels, "ticketing": channels["ticketing"].model_copy(update={"enabled": True})}
    demo_config = demo_config.model_copy(update={"notifications": demo_config.notifications.model_copy(
        update={"channels": enabled})})  # the demo's channels are off
    sent: list[dict] = []

    class Capture:
        def send(self, message: dict) -> None:
            sent.append(message)

    monkeypatch.setattr("dagster_project.notifications.outbox.build_senders",
                        lambda config, env=None: {"ticketing": Capture()})
    demo_config.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime(2026, 10, 6, 2, 5)
    first = sensors.alert_run_failure(demo_config, "abcdef123456", "nightly_reconciliation", "2026-10-05",
                                      "dbt failed", now=now)
    again = sensors.alert_run_failure(demo_config, "abcdef123456", "nightly_reconciliation", "2026-10-05",
                                      "dbt failed", now=now)
    assert first.startswith("queued 1") and "sent 1" in first
    assert "already queued" in again
    assert len(sent) == 1 and sent[0]["items"][0]["diff_type"] == "run_failure"
