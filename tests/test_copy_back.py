"""The copy back both engines share (dagster_project.warehouse.copy_back), on a real DuckDB file.

The Postgres and Spark servers hand it a select over their export; these tests hand it a select over a
table the test wrote, and check what the DuckDB copy holds after each decision.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from dagster_project.warehouse.copy_back import plan_copy_back, replace_in_duckdb

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)


class Mismatch(Exception):
    pass


@pytest.fixture()
def duck(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema marts")
    con.execute("create table marts.h (as_of_date date, order_id varchar, amount decimal(20, 4))")
    con.execute("insert into marts.h values ('2026-10-01', 'a', 1), ('2026-10-02', 'a', 2), ('2026-10-02', 'b', 3)")
    # what the engine built: day 2 differs, day 1 the engine also has (other days stay the copy's own)
    con.execute("create table export as select * from (values (date '2026-10-02', 'a', 5.0::decimal(20, 4)), "
                "(date '2026-10-02', 'c', 6.0::decimal(20, 4)), (date '2026-10-01', 'z', 9.0::decimal(20, 4))) "
                "t(as_of_date, order_id, amount)")
    yield con
    con.close()


COLUMNS = [("as_of_date", "DATE"), ("order_id", "VARCHAR"), ("amount", "DECIMAL(20,4)")]


def rows(con, sql="select * from marts.h order by all"):
    return [tuple(r) for r in con.execute(sql).fetchall()]


def test_a_history_with_the_same_columns_replaces_only_its_day(duck):
    plan = plan_copy_back(duck, "marts", "h", COLUMNS, "as_of_date", D2)
    assert plan.mode == "day"
    n = replace_in_duckdb(duck, plan, "select * from export where as_of_date = ?", [D2], expected=2)
    assert n == 2
    assert [(d.isoformat(), o, float(a)) for d, o, a in rows(duck)] == [
        ("2026-10-01", "a", 1.0), ("2026-10-02", "a", 5.0), ("2026-10-02", "c", 6.0)]


@pytest.mark.parametrize("change", ["other types", "other columns", "a view", "no day", "no copy yet"])
def test_anything_else_comes_back_whole(duck, change):
    columns, day = COLUMNS, D2
    if change == "other types":
        columns = [*COLUMNS[:2], ("amount", "DOUBLE")]
    elif change == "other columns":
        columns = [*COLUMNS, ("note", "VARCHAR")]
    elif change == "a view":
        duck.execute("drop table marts.h")
        duck.execute("create view marts.h as select * from export")
    elif change == "no day":
        day = None
    else:
        duck.execute("drop table marts.h")
    plan = plan_copy_back(duck, "marts", "h", columns, "as_of_date", day)
    assert plan.mode == "replace", change
    assert replace_in_duckdb(duck, plan, "select * from export", expected=3) == 3
    assert duck.execute("select table_type from information_schema.tables where table_name = 'h'").fetchall() == [
        ("BASE TABLE",)]
    assert rows(duck) == rows(duck, "select * from export order by all")


def test_names_only_when_the_types_arrive_with_the_copy(duck):
    # Spark's export gets its DuckDB types only when read: the plan compares the names alone.
    plan = plan_copy_back(duck, "marts", "h", [(n, None) for n, _ in COLUMNS], "as_of_date", D2)
    assert plan.mode == "day"


@pytest.mark.parametrize("day", [D2, None])
def test_a_count_that_differs_from_the_engines_leaves_the_file_as_it_was(duck, day):
    before = rows(duck)
    plan = plan_copy_back(duck, "marts", "h", COLUMNS, "as_of_date", day)
    with pytest.raises(Mismatch, match=r"marts.h: the DuckDB file would hold 2 rows after the copy back, "
                                       r"Postgres's table 7" + (" on 2026-10-02" if day else "")):
        replace_in_duckdb(duck, plan, "select * from export where as_of_date = ?", [D2], expected=7,
                          error=Mismatch, engine="Postgres")
    assert rows(duck) == before
    with pytest.raises(duckdb.Error):  # a failing select leaves it as it was too
        replace_in_duckdb(duck, plan, "select * from no_such_export")
    assert rows(duck) == before
