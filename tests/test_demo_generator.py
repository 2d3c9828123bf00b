"""Tests of the deterministic demo data generator (ingestion/demo).

Besides the shapes and invariants, `_evaluate` is a small, independent reading of
docs/reconciliation-rules.md over the generated files (through the field mapping of the demo
config); the ground truth must match it exactly on every as-of day.

The demo data holds a few records that break the source contracts (contract_breaks.csv). The
pipeline quarantines them, so the readers below leave them out the same way; that the contract
checks really catch them is tested in tests/test_demo_contract_breaks.py.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
import yaml

from ingestion.demo import expected_contract_breaks, expected_diffs, generate
from ingestion.demo.ground_truth import read_ground_truth, read_stale
from ingestion.demo.scenarios import INJECTIONS

CONFIG = Path(__file__).resolve().parents[1] / "dagster_project" / "config" / "demo.yaml"
START = date(2026, 10, 20)  # the window spans the end of summer time (25 Oct) in Berlin and London


@pytest.fixture(scope="module")
def rules() -> dict:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["rules"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, rules: dict) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("demo")
    summary = generate(out, orders=2000, days=14, seed=11, start_date=START, rules=rules)
    return out, summary


def _all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- determinism, layout ---------------------------------------------------------------------


def test_same_arguments_give_byte_identical_files(tmp_path: Path, rules: dict) -> None:
    args = dict(orders=400, days=9, seed=5, start_date=START, rules=rules)
    generate(tmp_path / "a", **args)
    generate(tmp_path / "b", **args)
    generate(tmp_path / "c", **{**args, "seed": 6})
    a, b, c = (_all_files(tmp_path / x) for x in "abc")
    assert a == b
    assert a != c
    for name in (n for n in a if "/" in n):  # stream files: mtimes too
        assert (tmp_path / "a" / name).stat().st_mtime_ns == (tmp_path / "b" / name).stat().st_mtime_ns


def test_every_stream_has_a_file_every_day_with_mtime_except_the_outage(demo: tuple[Path, object]) -> None:
    out, summary = demo
    outage = START + timedelta(days=7)
    assert read_stale(out) == {("erp", outage)}
    assert summary.stale == [("erp", outage)]
    for stream, ext in [
        ("shop/orders", "jsonl"),
        ("psp/charges", "jsonl"),
        ("psp/refunds", "jsonl"),
        ("erp/documents", "csv"),
        ("wms/shipments", "parquet"),
        ("crm/accounts", "csv"),
    ]:
        for i in range(14):
            day = START + timedelta(days=i)
            path = out / stream / f"{day.isoformat()}.{ext}"
            if stream == "erp/documents" and day == outage:
                assert not path.exists()
                continue
            assert path.exists(), path
            expected = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC).timestamp()
            assert path.stat().st_mtime == expected


def test_empty_days_still_get_files(tmp_path: Path, rules: dict) -> None:
    generate(tmp_path, orders=1, days=6, seed=1, start_date=START, rules=rules, outage=False)
    assert len(list((tmp_path / "psp" / "refunds").glob("*.jsonl"))) == 6
    empty = [
        p for p in (tmp_path / "wms" / "shipments").glob("*.parquet") if pq.read_metadata(p).num_rows == 0
    ]
    assert empty and pq.read_schema(empty[0]).names[0] == "shipment_ref"
    assert read_stale(tmp_path) == set()


def test_no_outage_for_short_windows(tmp_path: Path, rules: dict) -> None:
    summary = generate(tmp_path, orders=50, days=4, seed=1, start_date=START, rules=rules)
    assert summary.stale == []
    assert len(list((tmp_path / "erp" / "documents").glob("*.csv"))) == 4


# ---- native shapes ---------------------------------------------------------------------------


_PRIMARY_KEY = {
    "shop/orders": "order_number",
    "psp/charges": "id",
    "psp/refunds": "id",
    "erp/documents": "DocNo",
    "wms/shipments": "shipment_ref",
    "crm/accounts": "AccountId",
}


def _quarantine(root: Path, path: Path, rows: list) -> list:
    """`rows` of one file without the contract-breaking records listed in contract_breaks.csv
    (rows are dicts, or (available_at, dict) pairs)."""
    rel = path.relative_to(root).as_posix()
    breaks = [b for b in expected_contract_breaks(root) if b["file"] == rel]
    if not breaks:
        return rows
    key = _PRIMARY_KEY[rel.rsplit("/", 1)[0]]

    def is_break(row: dict) -> bool:
        return any(
            str(row.get(b["match_column"])) == b["match_value"] and (row.get(key) or "") == b["row_key"]
            for b in breaks
        )

    kept = [r for r in rows if not is_break(r[1] if isinstance(r, tuple) else r)]
    assert len(kept) == len(rows) - len(breaks), f"{rel}: the listed contract breaks are not all in the file"
    return kept


def _jsonl(root: Path, stream: str) -> list[dict]:
    return [
        row
        for p in sorted((root / stream).glob("*.jsonl"))
        for row in _quarantine(root, p, [json.loads(line) for line in p.read_text().splitlines()])
    ]


def _csv(root: Path, stream: str) -> list[dict]:
    rows = []
    for p in sorted((root / stream).glob("*.csv")):
        with open(p, newline="", encoding="utf-8") as fh:
            rows.extend(_quarantine(root, p, list(csv.DictReader(fh))))
    return rows


def test_native_shapes(demo: tuple[Path, object]) -> None:
    out, _ = demo
    orders = _jsonl(out, "shop/orders")
    assert {o["state"].lower() for o in orders} <= {"open", "placed", "cancelled", "canceled"}
    assert any(o["state"] != o["state"].lower() for o in orders)
    offsets = {o["created_at"][-6:] for o in orders}
    assert {"+02:00", "+01:00", "-04:00", "-05:00", "+00:00"} <= offsets  # DST ends inside the window
    for o in orders:
        assert Decimal(o["total"]) == sum(Decimal(line["line_total"]) for line in o["lines"])
        for line in o["lines"]:
            assert Decimal(line["line_total"]) == line["qty"] * Decimal(line["unit_price"])
        assert 1 <= len(o["lines"]) <= 5 and o["customer"]["id"].startswith("CUS-")
    charges = _jsonl(out, "psp/charges")
    assert all(isinstance(c["amount"], int) and c["currency"].islower() for c in charges)
    assert all(isinstance(c["created"], int) and c["updated"] >= c["created"] for c in charges)
    assert all(c["metadata"]["order_id"].startswith("SO-") for c in charges)
    assert {c["status"] for c in charges} == {"succeeded", "failed", "pending"}
    refunds = _jsonl(out, "psp/refunds")
    assert refunds and all(r["charge"].startswith("ch_") and isinstance(r["amount"], int) for r in refunds)
    docs = _csv(out, "erp/documents")
    assert {d["DocType"] for d in docs} == {"INV", "CRN"}
    assert all(Decimal(d["NetAmount"]) < 0 for d in docs if d["DocType"] == "CRN")
    assert all(Decimal(d["NetAmount"]) > 0 for d in docs if d["DocType"] == "INV")
    assert {d["Status"] for d in docs} == {"POSTED", "DRAFT", "VOID"}
    assert {d["Curr"] for d in docs} >= {"EUR", "USD", "GBP", "SEK"}
    for d in docs:
        datetime.strptime(d["DocDate"], "%d.%m.%Y")
        datetime.strptime(d["ChangedOn"], "%Y-%m-%d %H:%M:%S")
    ship = pq.read_table(sorted((out / "wms" / "shipments").glob("*.parquet"))[3])
    shipments = [
        r for p in sorted((out / "wms" / "shipments").glob("*.parquet")) for r in pq.read_table(p).to_pylist()
    ]
    assert {r["status"] for r in shipments} == {
        "PICKED",
        "DISPATCHED",
        "DELIVERED",
        "ACTIVE",
        "CANCELLED",
        "RETURNED",
    }
    assert {r["kind"] for r in shipments} == {"SHIP", "ACT"}
    assert str(ship.schema.field("qty_lines").type) == "int32"
    assert str(ship.schema.field("event_time").type) == "timestamp[us, tz=UTC]"
    accounts = _csv(out, "crm/accounts")
    assert all(a["ModifiedDate"].endswith("Z") for a in accounts)
    assert {a["Segment"] for a in accounts} >= {"smb", "mid_market", "enterprise"}


def test_erp_times_are_berlin_local_and_land_in_the_utc_day_file(demo: tuple[Path, object]) -> None:
    out, _ = demo
    berlin = ZoneInfo("Europe/Berlin")
    seen_offsets = set()
    for path in sorted((out / "erp" / "documents").glob("*.csv")):
        file_day = date.fromisoformat(path.stem)
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                local = datetime.strptime(row["ChangedOn"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=berlin)
                # never in the fall-back hour that occurs twice
                assert local.replace(fold=0).utcoffset() == local.replace(fold=1).utcoffset()
                utc = local.astimezone(UTC)
                seen_offsets.add(local.utcoffset())
                assert utc.date() <= file_day <= utc.date() + timedelta(days=2)
    assert seen_offsets == {timedelta(hours=1), timedelta(hours=2)}


# ---- ground truth ----------------------------------------------------------------------------


def test_every_injected_kind_is_in_the_ground_truth(demo: tuple[Path, object]) -> None:
    out, summary = demo
    truth = read_ground_truth(out)
    kinds = {(r.diff_type, r.system, r.kind) for r in truth}
    for diff_type, variants in INJECTIONS.items():
        for system, variant in variants:
            assert (diff_type, system, variant) in kinds, (diff_type, system, variant)
    assert summary.incidental == 0
    assert all(r.kind != "incidental" for r in truth)
    assert any(r.last is not None for r in truth)  # some problems get fixed: auto-resolution
    assert all(summary.injected[d] > 0 for d in INJECTIONS)
    assert len({(r.order_id, r.diff_type, r.system) for r in truth}) == len(truth)
    real = [r for r in truth if r.diff_type != "orphan_record"]
    assert len({r.order_id for r in real}) == len(real)  # one problem per order


def test_generator_injects_every_order_level_diff_type_of_the_catalogue() -> None:
    # A diff type added to the catalogue without an injection in the generator fails here.
    from ingestion.catalogue import DIFF_CATALOGUE
    from ingestion.demo.rules import DIFF_TYPES as generated

    assert generated == tuple(d.name for d in DIFF_CATALOGUE if d.grace_hours is not None)
    assert set(INJECTIONS) == set(generated)


def test_expected_diffs_honours_stale_days(demo: tuple[Path, object]) -> None:
    out, _ = demo
    outage = START + timedelta(days=7)
    truth = read_ground_truth(out)
    showing = {
        (r.order_id, r.diff_type, r.system): r
        for r in truth
        if r.first <= outage and (r.last is None or r.last >= outage)
    }
    on_hold_day = expected_diffs(out, outage)
    assert on_hold_day < set(showing)
    for key, row in showing.items():
        # ERP (invoices) stale: every diff involving invoices is held, every other one still shows.
        involves_erp = row.system == "erp" or row.diff_type == "missing_invoice"
        assert (key in on_hold_day) == (not involves_erp), row
    assert any(d == "missing_invoice" for _, d, _ in showing)
    assert any(d == "missing_payment" for _, d, _ in on_hold_day)
    with pytest.raises(ValueError, match="as_of"):
        expected_diffs(out, START - timedelta(days=1))


def test_ground_truth_matches_an_independent_reading_of_the_rules(
    demo: tuple[Path, object], rules: dict
) -> None:
    out, _ = demo
    for i in range(14):
        day = START + timedelta(days=i)
        got = _evaluate(out, rules, day)
        want = expected_diffs(out, day)
        assert got == want, (day, sorted(got - want)[:5], sorted(want - got)[:5])


def test_small_windows_and_custom_rates(tmp_path: Path, rules: dict) -> None:
    summary = generate(
        tmp_path,
        orders=300,
        days=3,
        seed=3,
        start_date=START,
        rules=rules,
        injection_rates={"missing_payment": 0.05, "orphan_record": 0.0},
        lookalike_rate=0.01,
    )
    assert summary.injected["orphan_record"] == 0
    assert summary.incidental == 0
    for i in range(3):
        day = START + timedelta(days=i)
        assert _evaluate(tmp_path, rules, day) == expected_diffs(tmp_path, day)


def test_short_grace_windows_still_give_an_exact_ground_truth(tmp_path: Path, rules: dict) -> None:
    """With graces too short for the realistic delays, the diffs the data cannot avoid are
    recorded as incidental rows, so the ground truth stays exact."""
    short = {
        **rules,
        "grace_hours": {
            **rules["grace_hours"],
            "missing_payment": 0,
            "missing_invoice": 6,
            "orphan_record": 0,
            "status_conflict": 0,
            "unpaid_fulfillment": 0,
        },
    }
    summary = generate(tmp_path, orders=500, days=7, seed=2, start_date=START, rules=short)
    assert summary.incidental > 0
    for i in range(7):
        day = START + timedelta(days=i)
        assert _evaluate(tmp_path, short, day) == expected_diffs(tmp_path, day)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"orders": 0}, "orders"),
        ({"days": 0}, "days"),
        ({"seed": "x"}, "seed"),
        ({"start_date": "2026-10-01"}, "start_date"),
        ({"injection_rates": {"typo_diff": 0.1}}, "typo_diff"),
        ({"injection_rates": {"contract_violation": 0.1}}, "contract_violation"),
        ({"injection_rates": {"missing_payment": 1.5}}, "missing_payment"),
        ({"lookalike_rate": -0.1}, "lookalike_rate"),
        ({"contract_breaks": "yes"}, "contract_breaks"),
        ({"rules": {"grace_hours": {"missing_payment": "soon"}}}, "missing_payment"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, rules: dict, kwargs: dict, word: str) -> None:
    args = dict(orders=10, days=3, seed=1, start_date=START, rules=rules) | kwargs
    with pytest.raises(ValueError, match=word):
        generate(tmp_path, **args)


# ---- an independent reading of docs/reconciliation-rules.md ---------------------------------

_ORDER_STATUS = {"placed": "placed", "open": "placed", "cancelled": "cancelled", "canceled": "cancelled"}
_WMS_STATUS = {
    "picked": "pending",
    "dispatched": "shipped",
    "delivered": "delivered",
    "active": "activated",
    "cancelled": "cancelled",
    "returned": "returned",
}
_ACTIVE = {"shipped", "delivered", "activated"}
_ROLE = {"shop": "orders", "psp": "payments", "erp": "invoices", "wms": "fulfillments", "crm": "customers"}


def _file_rows(root: Path, stream: str) -> list[tuple[float, dict]]:
    """(available_at, native row) of every file of a stream, without the quarantined contract breaks."""
    rows = []
    for p in sorted((root / stream).glob("*")):
        mtime = p.stat().st_mtime
        if p.suffix == ".jsonl":
            found = [(mtime, json.loads(line)) for line in p.read_text().splitlines()]
        elif p.suffix == ".csv":
            with open(p, newline="", encoding="utf-8") as fh:
                found = [(mtime, r) for r in csv.DictReader(fh)]
        else:
            found = [(mtime, r) for r in pq.read_table(p).to_pylist()]
        rows += _quarantine(root, p, found)
    return rows


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _load(root: Path) -> dict[str, list[dict]]:
    """Staged rows per role, mapped as dagster_project/config/demo.yaml declares."""
    berlin = ZoneInfo("Europe/Berlin")
    staged: dict[str, list[dict]] = defaultdict(list)
    for av, r in _file_rows(root, "shop/orders"):
        staged["orders"].append(
            dict(
                key=r["order_number"],
                order_id=r["order_number"],
                customer_id=r["customer"]["id"],
                status=_ORDER_STATUS.get(r["state"].lower(), r["state"].lower()),
                currency=r["currency"].upper(),
                total=Decimal(r["total"]),
                line_count=len(r["lines"]),
                ordered_at=_ts(r["created_at"]),
                updated_at=_ts(r["updated_at"]),
                available_at=av,
                system="shop",
            )
        )
    for av, r in _file_rows(root, "psp/charges"):
        staged["payments"].append(
            dict(
                key=r["id"],
                order_id=r["metadata"]["order_id"],
                customer_id=r["customer"],
                kind="charge",
                status=r["status"],
                currency=r["currency"].upper(),
                amount=Decimal(r["amount"]) / 100,
                captured_at=r["created"],
                updated_at=r["updated"],
                available_at=av,
                system="psp",
            )
        )
    for av, r in _file_rows(root, "psp/refunds"):
        staged["payments"].append(
            dict(
                key=r["id"],
                order_id=r["metadata"]["order_id"],
                customer_id=None,
                kind="refund",
                status=r["status"],
                currency=r["currency"].upper(),
                amount=Decimal(r["amount"]) / 100,
                captured_at=r["created"],
                updated_at=r["created"],
                available_at=av,
                system="psp",
            )
        )
    for av, r in _file_rows(root, "erp/documents"):
        local = datetime.strptime(r["ChangedOn"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=berlin)
        staged["invoices"].append(
            dict(
                key=r["DocNo"],
                order_id=r["SalesOrder"],
                customer_id=r["Customer"] or None,
                kind={"INV": "invoice", "CRN": "credit_note"}[r["DocType"]],
                status=r["Status"].lower(),
                currency=r["Curr"].upper(),
                amount=abs(Decimal(r["NetAmount"])),
                updated_at=local.timestamp(),
                available_at=av,
                system="erp",
            )
        )
    for av, r in _file_rows(root, "wms/shipments"):
        staged["fulfillments"].append(
            dict(
                key=r["shipment_ref"],
                order_id=r["order_no"],
                status=_WMS_STATUS[r["status"].lower()],
                line_count=r["qty_lines"],
                fulfilled_at=r["event_time"].timestamp(),
                updated_at=r["modified_time"].timestamp(),
                available_at=av,
                system="wms",
            )
        )
    for av, r in _file_rows(root, "crm/accounts"):
        staged["customers"].append(
            dict(
                key=r["AccountId"],
                segment=r["Segment"] or None,
                plan=r["Plan"] or None,
                updated_at=_ts(r["ModifiedDate"]),
                available_at=av,
                system="crm",
            )
        )
    return staged


def _evaluate(root: Path, rules: dict, as_of: date) -> set[tuple[str, str, str]]:
    """The diff rows of `as_of` per the rules doc, with the ON_HOLD suppression applied."""
    cutoff = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC).timestamp() + 86400
    grace = {k: v * 3600 for k, v in rules["grace_hours"].items()}
    tol_cfg = rules["amount_tolerance"]
    rates = {(r["from"], r["to"]): Decimal(str(r["rate"])) for r in rules["fx_rates"]}

    def tol(expected: Decimal, lines: int) -> Decimal:
        return max(
            Decimal(str(tol_cfg["absolute"])),
            Decimal(str(tol_cfg["relative"])) * abs(expected),
            Decimal(str(tol_cfg["per_line"])) * lines,
        )

    def fx_tol(expected: Decimal, lines: int) -> Decimal:
        return max(tol(expected, lines), Decimal(str(rules["fx_tolerance"])) * abs(expected))

    def conv(amount: Decimal, frm: str, to: str) -> Decimal | None:
        rate = Decimal(1) if frm == to else rates.get((frm, to))
        return None if rate is None else (amount * rate).quantize(Decimal("0.0001"), ROUND_HALF_UP)

    def shows(anchor: float | None, diff_type: str) -> bool:
        return anchor is not None and anchor + grace[diff_type] < cutoff

    def total_of(values: list[Decimal | None]) -> Decimal | None:  # SQL SUM: nulls skipped
        known = [v for v in values if v is not None]
        return sum(known, Decimal(0)) if known else None

    staged = _load(root)
    visible = {
        role: [r for r in rows if r["updated_at"] < cutoff and r["available_at"] < cutoff]
        for role, rows in staged.items()
    }
    current = {}
    for role, rows in visible.items():
        view: dict[str, dict] = {}
        for r in rows:
            if r["key"] not in view or r["updated_at"] > view[r["key"]]["updated_at"]:
                view[r["key"]] = r
        current[role] = view
    diffs: set[tuple[str, str, str, frozenset[str]]] = set()

    def emit(order_id: str, diff_type: str, system: str, roles: set[str]) -> None:
        diffs.add((order_id, diff_type, system, frozenset(roles)))

    for role, rows in visible.items():  # a key repeated with the same updated_at
        seen: dict[tuple[str, float], int] = defaultdict(int)
        for r in rows:
            seen[(r["key"], r["updated_at"])] += 1
        for r in rows:
            if seen[(r["key"], r["updated_at"])] > 1:
                emit(r.get("order_id") or r["key"], "duplicate_record", r["system"], {role})
    orders = current["orders"]
    known_orders = {r["order_id"] for r in visible["orders"]}
    cancelled_at: dict[str, list[float]] = defaultdict(list)
    for r in visible["orders"]:
        if r["status"] == "cancelled":
            cancelled_at[r["order_id"]].append(r["updated_at"])
    by_order: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for role in ("payments", "invoices", "fulfillments"):
        for r in current[role].values():
            by_order[r["order_id"]][role].append(r)
        orphans: dict[str, list[dict]] = defaultdict(list)
        for r in visible[role]:
            if r["order_id"] and r["order_id"] not in known_orders:
                orphans[r["order_id"]].append(r)
        for order_id, rs in orphans.items():
            if shows(min(r["updated_at"] for r in rs), "orphan_record"):
                emit(order_id, "orphan_record", rs[0]["system"], {"orders", role})
    for order_id in set(orders) | set(by_order):
        o = orders.get(order_id)
        rs = by_order.get(order_id, {})
        cur = o["currency"] if o else None
        charges = [p for p in rs.get("payments", []) if p["kind"] == "charge" and p["status"] == "succeeded"]
        refunds = [p for p in rs.get("payments", []) if p["kind"] == "refund" and p["status"] == "succeeded"]
        invs = [d for d in rs.get("invoices", []) if d["kind"] == "invoice" and d["status"] == "posted"]
        cns = [d for d in rs.get("invoices", []) if d["kind"] == "credit_note" and d["status"] == "posted"]
        active = [f for f in rs.get("fulfillments", []) if f["status"] in _ACTIVE]
        ccy = cur or (charges[0]["currency"] if charges else "EUR")
        captured = total_of([conv(c["amount"], c["currency"], ccy) for c in charges])
        refunded = total_of([conv(c["amount"], c["currency"], ccy) for c in refunds]) or Decimal(0)
        invoiced = total_of([conv(d["amount"], d["currency"], ccy) for d in invs])
        credited = total_of([conv(d["amount"], d["currency"], ccy) for d in cns]) or Decimal(0)
        net_paid = None if captured is None else captured - refunded
        is_paid, is_invoiced, is_fulfilled = bool(charges), bool(invs), bool(active)
        t_tol = tol(o["total"], o["line_count"]) if o else tol(Decimal(0), 0)
        if (
            refunds
            and refunded > credited + t_tol
            and shows(max(r["captured_at"] for r in refunds), "status_conflict")
        ):
            emit(order_id, "status_conflict", "erp", {"payments", "invoices"})
        if o is None:
            continue
        total, lines = o["total"], o["line_count"]
        is_live = o["status"] != "cancelled"
        cancelled = cancelled_at.get(order_id, [])
        first_captured = min((c["captured_at"] for c in charges), default=None)
        first_fulfilled = min((f["fulfilled_at"] for f in active), default=None)
        dup = {}
        for role, recs, amount in (("payments", charges, captured), ("invoices", invs, invoiced)):
            keys = [(r["currency"], r["amount"]) for r in recs]
            dup[role] = len(keys) != len(set(keys)) and amount is not None and amount > total + t_tol
        ccy_mm = {}
        for role, recs, amount in (("payments", charges, captured), ("invoices", invs, invoiced)):
            foreign = any(r["currency"] != cur for r in recs)
            missing_rate = any(conv(r["amount"], r["currency"], cur) is None for r in recs)
            ccy_mm[role] = foreign and (
                missing_rate or amount is None or abs(amount - total) > fx_tol(total, lines)
            )
        if is_live and not is_paid and not is_fulfilled and shows(o["ordered_at"], "missing_payment"):
            emit(order_id, "missing_payment", "psp", {"orders", "payments"})
        if is_live and is_paid and net_paid is not None and net_paid > t_tol:
            if not is_invoiced and shows(first_captured, "missing_invoice"):
                emit(order_id, "missing_invoice", "erp", {"payments", "invoices"})
            if not is_fulfilled and shows(first_captured, "missing_fulfillment"):
                emit(order_id, "missing_fulfillment", "wms", {"payments", "fulfillments"})
        if is_live and is_fulfilled and not is_paid and shows(first_fulfilled, "unpaid_fulfillment"):
            emit(order_id, "unpaid_fulfillment", "wms", {"orders", "payments", "fulfillments"})
        for role, system, present, amount in (
            ("payments", "psp", is_paid, captured),
            ("invoices", "erp", is_invoiced, invoiced),
        ):
            if (
                is_live
                and present
                and not dup[role]
                and not ccy_mm[role]
                and amount is not None
                and abs(amount - total) > t_tol
                and shows(o["ordered_at"], "amount_mismatch")
            ):
                emit(order_id, "amount_mismatch", system, {"orders", role})
            if is_live and ccy_mm[role] and shows(o["ordered_at"], "currency_mismatch"):
                emit(order_id, "currency_mismatch", system, {"orders", role})
            if dup[role]:
                emit(order_id, "duplicate_record", system, {"orders", role})
        if len(active) >= 2 and sum(f["line_count"] for f in active) > lines:
            emit(order_id, "duplicate_record", "wms", {"orders", "fulfillments"})
        if (
            not is_live
            and net_paid is not None
            and net_paid > t_tol
            and shows(min(cancelled), "status_conflict")
        ):
            emit(order_id, "status_conflict", "psp", {"orders", "payments"})
        if not is_live and is_fulfilled and shows(min(cancelled), "status_conflict"):
            emit(order_id, "status_conflict", "wms", {"orders", "fulfillments"})
        for role, system, recs in (("payments", "psp", charges), ("invoices", "erp", invs)):
            if any(r["customer_id"] and r["customer_id"] != o["customer_id"] for r in recs):
                emit(order_id, "customer_mismatch", system, {"orders", role})
        customer = current["customers"].get(o["customer_id"])
        if (
            is_live
            and (customer is None or not customer["segment"] or not customer["plan"])
            and shows(o["ordered_at"], "missing_enrichment")
        ):
            emit(order_id, "missing_enrichment", "crm", {"orders", "customers"})

    # Freshness: the latest file mtime / visible updated_at per system; stale if older than 24 h.
    stale = set()
    for system, streams in (
        ("shop", ["shop/orders"]),
        ("psp", ["psp/charges", "psp/refunds"]),
        ("erp", ["erp/documents"]),
        ("wms", ["wms/shipments"]),
        ("crm", ["crm/accounts"]),
    ):
        mtimes = [
            p.stat().st_mtime for s in streams for p in (root / s).glob("*") if p.stat().st_mtime < cutoff
        ]
        updates = [r["updated_at"] for r in visible[_ROLE[system]] if r["system"] == system]
        last_seen = max(mtimes + updates, default=None)
        if last_seen is None or last_seen < cutoff - 24 * 3600:
            stale.add(_ROLE[system])
    return {(o, d, s) for o, d, s, roles in diffs if not roles & stale}


def test_file_mtime_is_the_landing_time(demo: tuple[Path, object]) -> None:
    out, _ = demo
    path = next((out / "shop" / "orders").glob("*.jsonl"))
    assert datetime.fromtimestamp(os.stat(path).st_mtime, UTC).time().isoformat() == "23:59:59"
