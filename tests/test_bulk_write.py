"""Money is never typed by inference: bulk writes of exceptions keep every amount exact, in a real DuckDB file.

The night that crashed: a pandas object column of Decimals registered in DuckDB was typed from a
sample of its first values (DECIMAL(10,4) when they are small), and the first amount above
999,999.9999 failed the whole night. These tests put the small amounts first, as that night did.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from dagster_project.exceptions import store
from dagster_project.exceptions.store import exception_id, sync_exceptions
from dagster_project.lib.bulk_write import BulkWriteError, arrow_type, insert_rows
from dagster_project.lib.database import connect

D1 = dt.date(2026, 10, 1)
ROLES = {"orders": ["shop"], "payments": ["psp"], "invoices": ["erp"]}
# The extremes DECIMAL(20,4) holds, a B2B order of 10^12 with 4 decimals, and the amount of the crashed night.
LARGE = [Decimal("9999999999999999.9999"), Decimal("1000000000000.1234"), Decimal("310701.9300"),
         Decimal("-9999999999999999.9999")]


@pytest.fixture
def con(tmp_path):
    connection = connect(tmp_path / "warehouse.duckdb")
    store.ensure_schema(connection)
    yield connection
    connection.close()


def diff(order_id: str, amount: object) -> dict:
    return {"order_id": order_id, "customer_id": "CUS-1", "diff_type": "amount_mismatch", "system": "erp",
            "severity": "high", "owner": "revenue-ops", "amount_at_risk": amount, "currency": "EUR",
            "expected_value": "1", "actual_value": "2", "systems_involved": "psp,erp", "rule": "amount_mismatch",
            "reproduce_sql": "select 1", "reproduce_command": f"recon order {order_id}", "first_seen_date": D1}


def stored_amounts(con) -> dict[str, Decimal]:
    return dict(con.execute("select order_id, amount_at_risk from recon.exceptions").fetchall())


def test_the_nightly_sync_stores_small_then_huge_amounts_exactly(con):
    # The crashed night: 20,000 orders, small amounts first (DuckDB typed the column from a sample of
    # 1,000 values), the largest ones after the first 10,007.
    small = [(f"SO-{i:05d}", Decimal(i) / 10_000) for i in range(1, 20_001)]  # 0.0001 .. 2.0000
    large = [(f"SO-L{i}", amount) for i, amount in enumerate(LARGE)]
    amounts = dict(small[:10_007] + large + small[10_007:])
    stats = sync_exceptions(con, D1, [diff(o, a) for o, a in amounts.items()], set(), ROLES)
    assert stats.opened == len(amounts)
    expected = {o: a.quantize(Decimal("0.0001")) for o, a in amounts.items()}
    assert stored_amounts(con) == expected
    assert con.execute("select typeof(amount_at_risk) from recon.exceptions limit 1").fetchall() == [
        ("DECIMAL(20,4)",)]
    # a rerun of the night (the update path: delete and rewrite) changes nothing
    again = sync_exceptions(con, D1, [diff(o, a) for o, a in amounts.items()], set(), ROLES)
    assert again.opened == again.updated == 0 and stored_amounts(con) == expected


def test_two_hundred_thousand_exceptions_in_one_write_are_exact(con):
    n = 200_000
    amounts = [Decimal(i) / 10_000 for i in range(1, n - len(LARGE) + 1)] + LARGE  # 0.0001 first, largest last
    rows, events = [], []
    for i, amount in enumerate(amounts):
        ex_id = exception_id(f"SO-{i}", "amount_mismatch", "erp")
        rows.append({"exception_id": ex_id, "order_id": f"SO-{i}", "diff_type": "amount_mismatch", "system": "erp",
                     "status": "open", "amount_at_risk": amount, "first_seen_date": D1, "last_seen_date": D1,
                     "last_as_of_date": D1, "opened_as_of_date": D1, "due_at": dt.datetime(2026, 10, 3),
                     "lineage": '{"rule": "amount_mismatch"}'})
        events.append({"event_id": f"ev-{i}", "exception_id": ex_id, "as_of_date": D1, "event_type": "opened",
                       "actor": "recon", "to_status": "open", "reason": "found", "details": "{}"})
    con.begin()
    store._write(con, rows, [], events, dt.datetime(2026, 10, 2, 2))
    con.commit()
    count, total, top, bottom = con.execute(
        "select count(*), sum(amount_at_risk), max(amount_at_risk), min(amount_at_risk) from recon.exceptions"
    ).fetchall()[0]
    assert (count, total, top, bottom) == (n, sum(amounts), LARGE[0], LARGE[-1])
    assert con.execute("select amount_at_risk from recon.exceptions where order_id in (?, ?, ?) order by 1",
                       [f"SO-{n - 3}", f"SO-{n - 2}", "SO-0"]).fetchall() == [
        (Decimal("0.0001"),), (LARGE[2],), (LARGE[1],)]
    assert con.execute("select count(*), count(distinct recorded_at) from recon.exception_events").fetchall() == [
        (n, n)]


def test_a_value_that_does_not_fit_is_named(con):
    row = {"exception_id": "EX-1", "order_id": "SO-1", "diff_type": "x", "system": "erp", "status": "open",
           "first_seen_date": D1, "last_seen_date": D1, "last_as_of_date": D1, "opened_as_of_date": D1}
    with pytest.raises(BulkWriteError, match=r"recon\.exceptions\.amount_at_risk: value '12,50' of row 'EX-1' "
                                             r"does not fit DECIMAL\(20,4\)"):
        insert_rows(con, "recon", "exceptions", [{**row, "amount_at_risk": "12,50"}])
    with pytest.raises(BulkWriteError, match=r"value Decimal\('1E\+16'\) of row 'EX-1' does not fit"):
        insert_rows(con, "recon", "exceptions", [{**row, "amount_at_risk": Decimal("1E16")}])
    with pytest.raises(BulkWriteError, match=r"recon\.exceptions\.first_seen_date: value 'yesterday'"):
        insert_rows(con, "recon", "exceptions", [{**row, "first_seen_date": "yesterday"}])
    with pytest.raises(BulkWriteError, match=r"recon\.exceptions has no column\(s\) \['amount'\]"):
        insert_rows(con, "recon", "exceptions", [row], ["exception_id", "amount"])
    with pytest.raises(BulkWriteError, match="no Arrow type declared for the DuckDB type HUGEINT"):
        arrow_type("HUGEINT")
    assert con.execute("select count(*) from recon.exceptions").fetchall() == [(0,)]


def test_amounts_as_int_float_text_or_null_are_stored_exactly(con):
    amounts = {"SO-INT": 7, "SO-FLOAT": 0.1, "SO-TEXT": "1000000000000.1234", "SO-NONE": None,
               "SO-ROUND": Decimal("2.00005")}
    sync_exceptions(con, D1, [diff(o, a) for o, a in amounts.items()], set(), ROLES)
    assert stored_amounts(con) == {"SO-INT": Decimal("7.0000"), "SO-FLOAT": Decimal("0.1000"),
                                   "SO-TEXT": Decimal("1000000000000.1234"), "SO-NONE": None,
                                   "SO-ROUND": Decimal("2.0001")}  # half away from zero, as DuckDB's cast
