"""Delivery patterns: the record-version model on exports our demo generator did not make.

Three systems with their own names and columns (a web shop's semicolon CSV, a payment gateway's JSONL
in minor units, a bookkeeping CSV) deliver one small world over three nights, each stream in another
way real systems deliver: a full snapshot under a new name every night, a full snapshot overwriting the
same file, files in dated folders (gzip-compressed, plus a late file for an earlier day), dated file
names with an identical file re-delivered and a header-only file, a corrected re-export of a past day,
a truncated last line repaired the next night. Each night is landed by the real file_drop connector and
reconciled by a real dbt build; the diffs must equal the ground truth written below by hand, exactly,
on every night, and an as-of replay of an earlier night must give that night's diffs again.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from dagster_project.config.model import load_config
from dagster_project.dbt.dbt_codegen import lay_out_project
from dagster_project.dbt.dbt_in_process import invoke
from dagster_project.dbt.dbt_project import AS_OF_DATE_ENV
from ingestion.sync import sync_system

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NIGHTS = [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)]
D1, D2, D3 = NIGHTS


def at(day: date, hour: int, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the world: every version of every record, with the night it is first delivered -----------------

# webshop.sales: Ref;Buyer;State;Cur;Gross;Lines;PlacedAt;ChangedAt
ORDERS = [
    (D1, ["W1", "K1", "open", "eur", "100.00", "1", at(D1, 9), at(D1, 9)]),
    (D1, ["W2", "K2", "open", "eur", "50.00", "1", at(D1, 9), at(D1, 9)]),
    (D1, ["W3", "K3", "open", "eur", "30.00", "1", at(D1, 8), at(D1, 8)]),
    (D1, ["W4", "K4", "open", "eur", "80.00", "1", at(D1, 9), at(D1, 9)]),
    (D1, ["W5", "K5", "open", "eur", "40.00", "1", at(D1, 9), at(D1, 9)]),
    (D1, ["W6", "K6", "open", "eur", "20.00", "1", at(D1, 9), at(D1, 9)]),
    (D1, ["W7", "K7", "open", "eur", "60.00", "1", at(D1, 9), at(D1, 9)]),
    (D2, ["W7", "K7", "storno", "eur", "60.00", "1", at(D1, 9), at(D2, 11)]),  # cancelled on night 2
    (D2, ["W8", "K8", "open", "eur", "70.00", "1", at(D2, 9), at(D2, 9)]),
]
ORDERS_HEADER = "Ref;Buyer;State;Cur;Gross;Lines;PlacedAt;ChangedAt"

# paygate.txns (JSONL)
def txn(txn_id: str, order: str, cents: int, when: str, kind: str = "CAPTURE") -> dict[str, Any]:
    return {"txn_id": txn_id, "order_ref": order, "kind": kind, "result": "ok", "ccy": "eur",
            "amount_minor": cents, "at": when}


PAYMENTS = [
    (D1, txn("T1", "W1", 10000, at(D1, 10))),
    (D1, txn("T2", "W2", 5000, at(D1, 10))),
    (D1, txn("T4", "W4", 7500, at(D1, 10))),       # 75.00 paid for an 80.00 order
    (D1, txn("T5", "W5", 4000, at(D1, 10))),
    (D2, txn("T5b", "W5", 4000, at(D2, 10))),      # the same charge retried under another key
    (D1, txn("T6", "W6", 2000, at(D1, 10))),
    (D1, txn("T7", "W7", 6000, at(D1, 10))),
    (D1, txn("T9", "W99", 1000, at(D1, 10))),      # points at an order the shop never had
    (D2, txn("T8", "W8", 7000, at(D2, 10))),
]
LATE_PAYMENT = txn("T3", "W3", 3000, at(D1, 9))    # a D1 charge whose file arrives on night 3

# books.bills: BillNo,OrderRef,Type,Status,Currency,Net,Issued,Touched
BILLS_HEADER = "BillNo,OrderRef,Type,Status,Currency,Net,Issued,Touched"
BILLS = [
    (D1, ["B1", "W1", "inv", "posted", "EUR", "100.00", at(D1, 11), at(D1, 11)]),
    (D1, ["B4", "W4", "inv", "posted", "EUR", "80.00", at(D1, 11), at(D1, 11)]),
    (D1, ["B5", "W5", "inv", "posted", "EUR", "40.00", at(D1, 11), at(D1, 11)]),
    (D1, ["B6", "W6", "inv", "posted", "EUR", "20.00", at(D1, 11), at(D1, 11)]),
    (D1, ["B6", "W6", "inv", "posted", "EUR", "20.00", at(D1, 11), at(D1, 11)]),  # one key twice in one export
    (D1, ["B7", "W7", "inv", "posted", "EUR", "60.00", at(D1, 11), at(D1, 11)]),
    (D2, ["B8", "W8", "inv", "posted", "EUR", "70.00", at(D2, 11), at(D2, 11)]),
]


def changes(versions: list[tuple[date, Any]], night: date) -> list[Any]:
    """What a change file of `night` holds: the versions first delivered that night."""
    return [row for day, row in versions if day == night]


def snapshot(versions: list[tuple[date, Any]], night: date, key: Any, deleted: set[str] = frozenset()) -> list[Any]:
    """What a full export of `night` holds: each record's latest version (with its copies), minus deletions."""
    known = [row for day, row in versions if day <= night]
    latest: dict[str, Any] = {}
    for row in known:
        latest[key(row)] = row
    return [row for row in known if latest[key(row)] == row and key(row) not in deleted]


def csv_text(header: str, rows: list[list[str]], sep: str) -> str:
    return header + "\n" + "".join(sep.join(r) + "\n" for r in rows)


def jsonl_text(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def write(path: Path, text: str, night: date, *, gz: bool = False) -> None:
    """Write a delivered file with the modification time of its delivery: 22:00 UTC that night."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    touch(path, night)


def touch(path: Path, night: date) -> None:
    stamp = datetime(night.year, night.month, night.day, 22, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))


# ---- the two ways the world is delivered ------------------------------------------------------------


def deliver_a(root: Path, night: date) -> None:
    """Shop: a full snapshot under a new name. Gateway: dated folders, gzip, a late file. Books: a full
    snapshot overwriting one file, and a bill deleted from it on night 3."""
    shop = snapshot(ORDERS, night, key=lambda r: r[0])
    write(root / "webshop" / f"sales_{night:%Y%m%d}.csv", csv_text(ORDERS_HEADER, shop, ";"), night)
    write(root / "paygate" / f"{night}" / "txns.jsonl.gz", jsonl_text(changes(PAYMENTS, night)), night, gz=True)
    if night == D3:
        write(root / "paygate" / f"{D1}" / "late.jsonl.gz", jsonl_text([LATE_PAYMENT]), night, gz=True)
    deleted = {"B8"} if night == D3 else set()
    bills = snapshot(BILLS, night, key=lambda r: r[0], deleted=deleted)
    write(root / "books" / "bills.csv", csv_text(BILLS_HEADER, bills, ","), night)


def deliver_b(root: Path, night: date) -> None:
    """Shop: one change file per day, night 1's file re-delivered unchanged on night 2, a header-only file
    on night 3. Gateway: a full snapshot overwriting one file, declared append (the default). Books: one
    change file per day; night 1's file had a typo (B1 at 10.00) and is re-exported corrected on night 2;
    night 2's file arrives with its last line cut and is re-delivered whole on night 3."""
    shop_rows = changes(ORDERS, night) if night != D3 else []
    write(root / "webshop" / f"sales_{night:%Y%m%d}.csv", csv_text(ORDERS_HEADER, shop_rows, ";"), night)
    if night == D2:
        touch(root / "webshop" / f"sales_{D1:%Y%m%d}.csv", night)
    pay = snapshot(PAYMENTS, night, key=lambda r: r["txn_id"])
    write(root / "paygate" / "txns.jsonl", jsonl_text(pay), night)
    books = root / "books"
    if night == D1:
        typo = [r if r[0] != "B1" else [*r[:5], "10.00", *r[6:]] for r in changes(BILLS, D1)]
        write(books / f"{D1}.csv", csv_text(BILLS_HEADER, typo, ","), D1)
    if night == D2:
        write(books / f"{D1}.csv", csv_text(BILLS_HEADER, changes(BILLS, D1), ","), D2)  # corrected re-export
        whole = csv_text(BILLS_HEADER, changes(BILLS, D2), ",")
        write(books / f"{D2}.csv", whole[: whole.rindex(",", 0, len(whole) - 30)], D2)  # last line cut short
    if night == D3:
        write(books / f"{D2}.csv", csv_text(BILLS_HEADER, changes(BILLS, D2), ","), D3)  # re-delivered whole
        write(books / f"{D3}.csv", csv_text(BILLS_HEADER, changes(BILLS, D3), ","), D3)


# ---- the ground truth, night by night ------------------------------------------------------------------

BOTH_D1 = {("W4", "amount_mismatch", "paygate"), ("W6", "duplicate_record", "books")}
BOTH_D2 = BOTH_D1 | {("W2", "missing_invoice", "books"), ("W3", "missing_payment", "paygate"),
                     ("W5", "duplicate_record", "paygate"), ("W7", "status_conflict", "paygate"),
                     ("W99", "orphan_record", "paygate")}
EXPECTED = {
    "a": {D1: BOTH_D1,
          D2: BOTH_D2,
          # the late charge pays W3 (now waiting for its invoice); B8 deleted from the books snapshot
          D3: (BOTH_D2 - {("W3", "missing_payment", "paygate")})
          | {("W3", "missing_invoice", "books"), ("W8", "missing_invoice", "books")}},
    "b": {D1: BOTH_D1 | {("W1", "amount_mismatch", "books")},  # the typo, as known on night 1
          D2: BOTH_D2,
          D3: BOTH_D2},
}


# Each system's stream: (role, stream, format, key column, extra stream keys, field mapping).
SYSTEMS = {
    "webshop": ("orders", "sales", "csv", "Ref", {"csv_delimiter": ";"}, {
        "order_id": "Ref", "customer_id": "Buyer",
        "status": {"from": "State", "values": {"open": "placed", "storno": "cancelled"}},
        "currency": {"from": "Cur", "transform": "upper"},
        "total_amount": {"from": "Gross", "type": "decimal"},
        "line_count": {"from": "Lines", "type": "integer"},
        "ordered_at": {"from": "PlacedAt", "type": "timestamp"},
        "updated_at": {"from": "ChangedAt", "type": "timestamp"},
    }),
    "paygate": ("payments", "txns", "jsonl", "txn_id", {}, {
        "payment_id": "txn_id", "order_id": "order_ref",
        "kind": {"from": "kind", "values": {"capture": "charge", "refund": "refund"}},
        "status": {"from": "result", "values": {"ok": "succeeded", "declined": "failed"}},
        "currency": {"from": "ccy", "transform": "upper"},
        "amount": {"from": "amount_minor", "type": "decimal", "unit": "minor"},
        "captured_at": {"from": "at", "type": "timestamp"},
        "updated_at": {"from": "at", "type": "timestamp"},
    }),
    "books": ("invoices", "bills", "csv", "BillNo", {}, {
        "invoice_id": "BillNo", "order_id": "OrderRef",
        "kind": {"from": "Type", "values": {"inv": "invoice", "cn": "credit_note"}},
        "status": {"from": "Status", "values": {"posted": "posted", "draft": "draft"}},
        "currency": "Currency",
        "amount": {"from": "Net", "type": "decimal"},
        "issued_at": {"from": "Issued", "type": "timestamp"},
        "updated_at": {"from": "Touched", "type": "timestamp"},
    }),
}


def config_yaml(root: Path, modes: dict[str, str], globs: dict[str, str]) -> str:
    systems = {}
    for name, (role, stream, fmt, key, extra, fields) in SYSTEMS.items():
        spec = {"format": fmt, **extra, "glob": globs[name], "primary_key": [key], "sync_mode": modes[name],
                "fields": fields}
        systems[name] = {"role": role, "path": str(root / "data" / name), "freshness_hours": 48,
                         "streams": {stream: spec}}
    cfg = {
        "version": 1,
        "project": {"name": "deliveries", "duckdb_path": str(root / "wh.duckdb"), "state_dir": str(root / "state"),
                    "start_date": str(D1)},
        "systems": systems,
        "rules": {"grace_hours": {"missing_payment": 24, "missing_invoice": 24, "orphan_record": 24,
                                  "status_conflict": 0, "amount_mismatch": 0}},
    }
    return yaml.safe_dump(cfg, sort_keys=False)


CASES = {
    "a": ({"webshop": "snapshot", "paygate": "append", "books": "snapshot"},
          {"webshop": "sales_*.csv", "paygate": "*/*.jsonl.gz", "books": "bills.csv"}, deliver_a),
    "b": ({"webshop": "append", "paygate": "append", "books": "append"},
          {"webshop": "sales_*.csv", "paygate": "txns.jsonl", "books": "*.csv"}, deliver_b),
}


class Project:
    """The user's config, its DuckDB file, and a private copy of the dbt project with its generated staging."""

    def __init__(self, tmp: Path, case: str) -> None:
        modes, globs, self.deliver = CASES[case]
        self.tmp = tmp
        self.data = tmp / "data"
        path = tmp / "recon.yaml"
        path.write_text(config_yaml(tmp, modes, globs))
        self.config = load_config(path)
        self.project = tmp / "dbt_project"
        lay_out_project(self.project, REPO / "dbt_project", self.config.dbt_vars())

    def land(self) -> list[Any]:
        con = duckdb.connect(str(self.config.duckdb_path))
        try:
            return [r for name, system in sorted(self.config.systems.items()) for r in sync_system(con, name, system)]
        finally:
            con.close()

    def build(self, day: date, command: str = "run") -> None:
        # In this process, as the platform runs dbt: the day in the environment, the vars the same every night.
        outcome = invoke([command, "--no-send-anonymous-usage-stats", "--project-dir", str(self.project),
                          "--profiles-dir", str(self.project), "--target-path", str(self.tmp / "target"),
                          "--log-path", str(self.tmp / "logs"), "--vars", json.dumps(self.config.dbt_vars())],
                         env={"RECON_DUCKDB_PATH": str(self.config.duckdb_path), AS_OF_DATE_ENV: str(day)})
        assert outcome.returncode == 0, outcome.stdout[-5000:]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.config.duckdb_path), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def diffs(self, day: date) -> set[tuple[str, str, str]]:
        return set(self.query(f"select order_id, diff_type, system from marts.fct_order_diffs "
                              f"where as_of_date = date '{day}'"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_delivery_pattern_gives_the_ground_truth_each_night(tmp_path: Path, case: str) -> None:
    p = Project(tmp_path, case)
    for night in NIGHTS:
        p.deliver(p.data, night)
        results = p.land()
        for r in results:  # nothing is lost: rows in = landed + quarantined
            assert r.records_read == r.records_landed + r.records_quarantined
        p.build(night, "build" if night == D3 else "run")  # the data tests once: each costs a few seconds
        assert p.diffs(night) == EXPECTED[case][night], night
        states = dict(p.query("select order_id, state from marts.fct_orders"))
        # no fulfillment or CRM system: no state names one (W4 passed every configured step, with a diff)
        assert "FULFILLED" not in states.values() and "RECEIVED" not in states.values()
        assert states["W1"] == ("RECONCILED" if (case, night) != ("b", D1) else "INVOICED")
        assert states["W2"] == "PAID" and states["W4"] == "INVOICED"
        assert states["W7"] == ("CANCELLED" if night > D1 else "RECONCILED")

    if case == "a":
        # snapshots re-sent every night are versions, not new records: one current row per key
        assert p.query("select count(*), count(distinct order_id) from intermediate.int_orders_current") == [(8, 8)]
        raw = p.query("select count(*) from raw_webshop.sales")[0][0]
        assert raw == 7 + 8 + 8  # three snapshots landed and kept (as-of replays read older ones)
    else:
        quarantined = p.query("select file_path, reason from recon_meta.quarantine where system = 'books'")
        assert len(quarantined) == 1 and quarantined[0][0].endswith(f"{D2}.csv"), quarantined
        # the identical re-delivery and the corrected re-export are new deliveries of the same versions
        files = p.query("select count(*) from recon_meta.landed_files where system = 'webshop'")[0][0]
        assert files == 4  # night 1, night 1 again (new mtime), night 2, night 3 (header only)
        held = p.query("select count(*) from marts.fct_system_freshness where is_stale")[0][0]
        assert held == 0

    # an as-of replay of night 1 with everything landed since gives night 1 again
    p.build(D1)
    assert p.diffs(D1) == EXPECTED[case][D1]


def test_rows_landed_but_invisible_as_of_the_day_are_said_and_opened(tmp_path: Path) -> None:
    # Onboarding: exports copied today, reconciled as of an earlier day. Every row lands, none is known by
    # the end of D: the run must say so with the reason, not report an empty "ok".
    from dagster_project.exceptions.contract_diffs import source_health_diffs
    from dagster_project.reports.run_summary import build_summary, render_summary

    p = Project(tmp_path, "b")
    p.deliver(p.data, D1)
    for path in p.data.rglob("*.*"):
        touch(path, D3)  # copied in later
    p.land()
    p.build(D1)
    health = dict(p.query(f"select system, health_reason from marts.fct_system_freshness where as_of_date = '{D1}'"))
    landed = {"webshop": 7, "paygate": 7, "books": 6}
    assert health == {system: f"0 of {n} landed rows are visible as of the day: files modified after the as-of day"
                      for system, n in landed.items()}
    con = duckdb.connect(str(p.config.duckdb_path), read_only=True)
    try:
        rows = source_health_diffs(con, D1, p.config)
        text = render_summary(build_summary(con, p.config, D1), p.config)
    finally:
        con.close()
    assert {r["system"] for r in rows} == {"webshop", "paygate", "books"}
    assert all(r["diff_type"] == "stale_source" and r["order_id"] == f"<{r['system']}>" for r in rows)
    assert "paygate: 0 of 7 landed rows are visible as of the day: files modified after the as-of day" in text

    # Four days after the last delivery, with a 48 h freshness window: stale, and since when.
    late = D3 + timedelta(days=4)
    p.build(late)
    reasons = dict(p.query(f"select system, health_reason from marts.fct_system_freshness where as_of_date = '{late}'"))
    assert reasons["paygate"] == "stale since 2026-11-04 22:00:00 (freshness 48 h)"
