"""Run a compiled suite on DuckDB: one aggregate query, then the failing rows kept once.

See ``compiler.py`` for what each expectation becomes. :func:`evaluate` runs the aggregate query
and returns GX-shaped results; :func:`keep_failing` keeps the rows breaking the failed row rules in
the temp table :data:`FAILING` (one flag column per rule), which :func:`samples` and the quarantine
read, so no predicate is evaluated over the whole stream a third time. If the aggregate query fails
(say, a user's ``be_between`` with a text bound on a number column), each expectation runs alone
once, so the error lands on the one that caused it and the others still count.
"""

from __future__ import annotations

from typing import Any

import duckdb

from dagster_project.contracts.compiler import (
    MAP_NULLS,
    Check,
    CompileError,
    Result,
    failure,
    in_bounds,
    ok,
    resolve,
)

FAILING = "_recon_contract_failing"  # the temp table of the rows breaking a map check, with their flags


def _repeated_where(c: Check) -> str:
    """The rows a uniqueness check compares: considered, and (as in GX's SQL engine, which joins the
    group counts back on ``=``) without a null in the columns: a null repeats nothing."""
    return " where " + " and ".join([*(f"{col} is not null" for col in c.columns),
                                     *([f"({c.considered})"] if c.considered else [])])


def _duplicates(batch: str, c: Check) -> str:
    """The batch's compared rows whose values of ``c.columns`` repeat: ``group by``, not a window."""
    where = _repeated_where(c)
    return (f"(select coalesce(sum(n), 0) from (select count(*) as n from ({batch}) as batch{where} "
            f"group by {', '.join(c.columns)} having count(*) > 1) as repeated)")


def _aggregate_sql(batch: str, checks: list[Check]) -> str:
    """The one aggregate query: row count, per map check its unexpected and considered counts, the
    column aggregates and the duplicate counts."""
    parts = ["count(*)"]
    for c in checks:
        if c.kind == "map":
            parts.append(f"count(*) filter (where {c.unexpected})")
        elif c.kind == "unique":
            parts.append(_duplicates(batch, c))
        else:
            parts.append(c.aggregate or "null")
        if c.kind in ("map", "unique"):
            parts.append(f"count(*) filter (where {c.considered})" if c.considered else "count(*)")
    return f"select {', '.join(parts)} from ({batch}) as batch"


def keep_failing(con: duckdb.DuckDBPyConnection, batch: str, checks: list[Check]) -> None:
    """(Re)create :data:`FAILING`: the rows breaking one of the (failed) map ``checks``, with a flag each.

    The second and last scan of a validation, only when a row rule failed: its samples and the
    quarantine read this small table.
    """
    rows = [c for c in checks if c.kind == "map"]
    if not rows:
        return
    flags = "".join(f", coalesce({c.unexpected}, false) as {c.flag}" for c in rows)
    where = " or ".join(f"({c.unexpected})" for c in rows) or "false"
    con.execute(f"create or replace temp table {FAILING} as "
                f"select *{flags} from ({batch}) as batch where {where}").fetchall()


def evaluate(con: duckdb.DuckDBPyConnection, batch: str, checks: list[Check],
             parameters: dict[str, Any]) -> tuple[int | None, list[Result]]:
    """Run the checks over ``batch`` (a ``select`` of the rows to validate) in one aggregate query.

    Args:
        con: the connection.
        batch: the SQL of the batch, e.g. ``select * from raw_psp.charges where ...``.
        checks: from :func:`compile_suite`.
        parameters: the run's expectation parameters.

    Returns:
        (the batch's row count, one result per check in order); the count is None when nothing could run.
    """
    errors: dict[int, str] = {}
    scanned = [c for c in checks if c.kind in ("map", "unique", "aggregate")]
    try:
        values = list(con.execute(_aggregate_sql(batch, scanned)).fetchall()[0])
    except duckdb.Error as exc:  # find the expectation(s) the error comes from, run the others
        for c in scanned:
            try:
                con.execute(_aggregate_sql(batch, [c])).fetchall()
            except duckdb.Error as one:
                errors[c.index] = f"{type(one).__name__}: {one}"
        scanned = [c for c in scanned if c.index not in errors]
        try:
            values = list(con.execute(_aggregate_sql(batch, scanned)).fetchall()[0])
        except duckdb.Error:
            return None, [c.result or failure(f"{type(exc).__name__}: {exc}") for c in checks]
    total, it = int(values[0]), iter(values[1:])
    measured = {c.index: [next(it) for _ in range(2 if c.kind in ("map", "unique") else 1)] for c in scanned}
    results = []
    for c in checks:
        if c.kind == "done":
            results.append(c.result or failure("no result"))
        elif c.kind == "query":
            results.append(_query(con, batch, c))
        elif c.index not in measured:
            results.append(failure(errors.get(c.index, "not run")))
        elif c.kind == "aggregate":
            results.append(_aggregate_result(c, measured[c.index][0], parameters))
        else:
            unexpected, considered = measured[c.index]
            results.append(_map_result(c, total, int(unexpected), int(considered)))
    return total, results


def samples(con: duckdb.DuckDBPyConnection, batch: str, checks: list[Check], limit: int) -> list[tuple[int, list[
        str], list[tuple]]]:
    """Up to ``limit`` rows breaking each of ``checks`` (failed ``map`` / ``unique`` ones), in one query.

    Returns:
        One (check index, column names, rows) per check that has rows; the names include the flag
        and ``_recon_check`` columns, for the caller to leave out.
    """
    branches = [f"(select {c.index} as _recon_check, * from {FAILING} where {c.flag} limit {int(limit)})"
                for c in checks if c.kind == "map"]
    out: dict[int, tuple[list[str], list[tuple]]] = {}
    if branches:
        cur = con.execute(" union all ".join(branches))
        names = [d[0] for d in cur.description]
        for row in cur.fetchall():
            out.setdefault(row[0], (names, []))[1].append(row)
    for c in checks:
        if c.kind != "unique":
            continue
        where = _repeated_where(c)
        on = " and ".join(f"b.{col} = r.{col}" for col in c.columns)
        cur = con.execute(
            f"select {c.index} as _recon_check, b.* from ({batch}) as b join (select {', '.join(c.columns)} "
            f"from ({batch}) as batch{where} group by {', '.join(c.columns)} having count(*) > 1) as r on {on} "
            f"limit {int(limit)}")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        if rows:
            out[c.index] = (names, rows)
    return [(index, names, rows) for index, (names, rows) in out.items()]


def _query(con: duckdb.DuckDBPyConnection, batch: str, c: Check) -> Result:
    try:
        sql = (c.query or "").format(batch=f"({batch}) as batch")
        count = con.execute(f"select count(*) from ({sql}) as unexpected_rows").fetchall()[0][0]
    except (duckdb.Error, KeyError, IndexError, ValueError) as exc:
        return failure(f"{type(exc).__name__}: {exc}")
    return ok(count == 0, observed_value=int(count))


def _aggregate_result(c: Check, observed: Any, parameters: dict[str, Any]) -> Result:
    if c.type == "expect_table_row_count_to_equal":
        return ok(observed == resolve(c.kwargs.get("value"), parameters), observed_value=observed)
    try:
        return ok(in_bounds(observed, c.kwargs, parameters), observed_value=observed)
    except (CompileError, TypeError, ValueError) as exc:
        return failure(f"{type(exc).__name__}: {exc}")


def _map_result(c: Check, total: int, unexpected: int, considered: int) -> Result:
    mostly = float(c.kwargs.get("mostly", 1) if c.kwargs.get("mostly") is not None else 1)
    if c.type == "unexpected_rows_expectation":
        return ok(unexpected == 0, observed_value=unexpected)
    if c.type in MAP_NULLS:  # every row counts, nulls included
        success = total == 0 or (total - unexpected) / total >= mostly
        return ok(success, element_count=total, unexpected_count=unexpected,
                   unexpected_percent=unexpected / total * 100 if total else None, partial_unexpected_list=[])
    success = unexpected == 0 or total == 0 or considered == 0 or (considered - unexpected) / considered >= mostly
    missing = total - considered
    return ok(success, element_count=total, unexpected_count=unexpected,
               unexpected_percent=unexpected / considered * 100 if considered else None,
               missing_count=missing, missing_percent=missing / total * 100 if total else None,
               unexpected_percent_total=unexpected / total * 100 if total else None,
               unexpected_percent_nonmissing=unexpected / considered * 100 if considered else None,
               partial_unexpected_list=[])
