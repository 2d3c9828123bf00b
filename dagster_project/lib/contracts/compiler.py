"""Compile a stream's GX suite (its committed JSON) into pushed-down SQL, and evaluate it.

The suite stays the format users read and edit; Great Expectations itself is not imported here (it
costs seconds to import, more than validating a small stream). What costs time on a big stream is
evaluating the row predicates (parsing timestamps, JSON paths, code lists), so each is evaluated once
per row, in one scan that keeps only the rows breaking something, each with a flag per expectation::

    create temp table _recon_contract_failing as
    select *, <unexpected_1> as _recon_f1, ... from (<batch>) as batch where <unexpected_1> or ...

and one aggregate query reads the cheap rest (row count, non-null counts for ``mostly``, column
aggregates, uniqueness as a ``group by``) while the unexpected counts come from the small table::

    select count(*), count(*) filter (where <considered_1>), max(<col>), (<duplicates>), ... from (<batch>)

Samples of the failed expectations and the quarantine read ``_recon_contract_failing`` too.
:func:`evaluate` returns GX-shaped results (``success``, ``result`` with ``element_count`` /
``unexpected_count`` / ``unexpected_percent`` / ``observed_value``, ``exception_info``) with GX 1.24's
semantics: a column map expectation counts non-null rows only (``expect_column_values_to_(not_)be_null``
count every row), ``mostly`` is the share of considered rows that must pass, an aggregate is compared
with ``min_value``/``max_value`` (``strict_*``), an empty batch passes a map expectation vacuously.
``tests/test_contracts.py`` checks the counts against GX's own on a table with violations of each type.

An expectation type not in :data:`SUPPORTED` (or a ``row_condition``) is never skipped: its result
is a failure whose error names the type and what is supported. A hand-written
``UnexpectedRowsExpectation`` whose query is not of the generated shape runs as its own count query.
If a combined query fails (a bad literal in a user's expectation, say), each expectation is run on
its own so the error lands on the one that caused it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

from dagster_project.lib.contracts.rules import q, violation_parts

Result = dict[str, Any]  # GX-shaped: {"success", "result", "exception_info"}

_MAP_NULLS = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_null"}
_MAP = {"expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between", "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex", "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal", "expect_column_values_to_be_unique"}
_AGGREGATES = {"expect_column_max_to_be_between": "max", "expect_column_min_to_be_between": "min",
               "expect_column_mean_to_be_between": "avg", "expect_column_sum_to_be_between": "sum"}
_SCHEMA = {"expect_column_to_exist", "expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type",
           "expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list",
           "expect_table_column_count_to_equal", "expect_table_column_count_to_be_between"}
SUPPORTED: frozenset[str] = frozenset({
    *_MAP_NULLS, *_MAP, *_AGGREGATES, *_SCHEMA, "expect_compound_columns_to_be_unique",
    "expect_table_row_count_to_be_between", "expect_table_row_count_to_equal", "unexpected_rows_expectation"})


class CompileError(ValueError):
    """An expectation that cannot be turned into SQL (its result is a failure with this message)."""


@dataclass
class Check:
    """One expectation, compiled.

    Attributes:
        index: its position in the suite.
        expectation: the suite JSON entry.
        kind: ``map`` (unexpected / considered row predicates), ``unique`` (values repeated in
            ``columns``), ``aggregate`` (an observed value), ``query`` (a free
            ``UnexpectedRowsExpectation`` query, run on its own) or ``done`` (decided without data: a
            schema expectation or a compile error).
        unexpected: for ``map``: the predicate a row breaks the expectation by.
        considered: for ``map`` and ``unique``: the rows ``mostly`` counts over (None: every row).
        columns: for ``unique``: the (quoted) columns whose values must not repeat.
        aggregate: for ``aggregate``: the SQL of the observed value.
        query: for ``query``: the count query.
        result: for ``done``: the result.
        failing_value: for ``map``: the SQL of the value shown for a failing row (None: the column).
    """

    index: int
    expectation: dict[str, Any]
    kind: str
    unexpected: str | None = None
    considered: str | None = None
    columns: list[str] = field(default_factory=list)
    aggregate: str | None = None
    query: str | None = None
    result: Result | None = None
    failing_value: str | None = None

    @property
    def flag(self) -> str:
        """The column of ``_recon_contract_failing`` that marks the rows breaking this (``map``) check."""
        return f"_recon_f{self.index}"

    @property
    def type(self) -> str:
        return self.expectation["type"]

    @property
    def kwargs(self) -> dict[str, Any]:
        return self.expectation.get("kwargs") or {}


def _ok(success: bool, **result: Any) -> Result:
    return {"success": success, "result": result,
            "exception_info": {"raised_exception": False, "exception_message": None, "exception_traceback": None}}


def failure(message: str) -> Result:
    """The result of an expectation that could not run (always a failure)."""
    return {"success": False, "result": {},
            "exception_info": {"raised_exception": True, "exception_message": message, "exception_traceback": None}}


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date):
        value = value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise CompileError(f"cannot write {value!r} ({type(value).__name__}) as a SQL literal")


def _resolve(value: Any, parameters: dict[str, Any]) -> Any:
    """A kwarg's value, with ``{"$PARAMETER": name}`` taken from the run's parameters."""
    if isinstance(value, dict) and "$PARAMETER" in value:
        name = value["$PARAMETER"]
        if name not in parameters:
            raise CompileError(f"expectation parameter {name!r} is not set for this run")
        return parameters[name]
    return value


def _between(expr: str, kwargs: dict[str, Any], parameters: dict[str, Any]) -> str:
    """The predicate ``expr`` is within [min_value, max_value] (``strict_*`` for open bounds)."""
    low, high = _resolve(kwargs.get("min_value"), parameters), _resolve(kwargs.get("max_value"), parameters)
    if low is None and high is None:
        raise CompileError("min_value and max_value are both null")
    parts = []
    if low is not None:
        parts.append(f"{expr} {'>' if kwargs.get('strict_min') else '>='} {_literal(low)}")
    if high is not None:
        parts.append(f"{expr} {'<' if kwargs.get('strict_max') else '<='} {_literal(high)}")
    return " and ".join(parts)


def columns_read(expectation: dict[str, Any]) -> set[str]:
    """The table columns an expectation reads: its kwargs' ``column``/``column_list`` and, for a
    generated row rule, its rule's column(s) (``meta.column``)."""
    kwargs = expectation.get("kwargs") or {}
    meta_column = (expectation.get("meta") or {}).get("column") or ""
    names = [*meta_column.split(","), kwargs.get("column") or "", *(kwargs.get("column_list") or [])]
    return {c for c in names if isinstance(c, str) and c}


def compile_suite(suite: dict[str, Any], columns: dict[str, str], parameters: dict[str, Any]) -> list[Check]:
    """Compile every expectation of ``suite`` against a table with ``columns`` ({name: DuckDB type}).

    Returns:
        One :class:`Check` per expectation, in suite order (an uncompilable one is ``done`` and failed).
    """
    checks = []
    for index, expectation in enumerate(suite.get("expectations") or []):
        try:
            checks.append(_compile(index, expectation, columns, parameters))
        except CompileError as exc:
            checks.append(Check(index, expectation, "done", result=failure(str(exc))))
    return checks


def _compile(index: int, e: dict[str, Any], columns: dict[str, str], parameters: dict[str, Any]) -> Check:
    etype, kwargs = e.get("type", ""), e.get("kwargs") or {}
    if etype not in SUPPORTED:
        raise CompileError(f"expectation type {etype!r} cannot be compiled to SQL by recon's contract runner "
                           f"(supported: {', '.join(sorted(SUPPORTED))})")
    if kwargs.get("row_condition"):
        raise CompileError(f"{etype}: row_condition is not supported by recon's contract runner")
    if etype in _SCHEMA:
        return Check(index, e, "done", result=_schema(etype, kwargs, columns))
    if etype != "unexpected_rows_expectation":
        missing = sorted(columns_read(e) - set(columns))
        if missing:
            raise CompileError(f"not run: column(s) {missing} missing")
    column = kwargs.get("column")
    col = q(column) if column else None
    if etype in ("expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"):
        return Check(index, e, "aggregate", aggregate="count(*)")
    if etype in _AGGREGATES:
        _between("x", kwargs, parameters)  # the bounds must be valid before the query runs
        return Check(index, e, "aggregate", aggregate=f"{_AGGREGATES[etype]}({col})")
    if etype == "expect_column_values_to_not_be_null":
        return Check(index, e, "map", unexpected=f"{col} is null", failing_value="null")
    if etype == "expect_column_values_to_be_null":
        return Check(index, e, "map", unexpected=f"{col} is not null")
    if etype == "expect_compound_columns_to_be_unique":
        cols = [q(c) for c in kwargs["column_list"]]
        ignore = kwargs.get("ignore_row_if", "all_values_are_missing")
        considered = {"all_values_are_missing": "not (" + " and ".join(f"{c} is null" for c in cols) + ")",
                      "any_value_is_missing": " and ".join(f"{c} is not null" for c in cols),
                      "never": "true"}.get(ignore)
        if considered is None:
            raise CompileError(f"{etype}: unknown ignore_row_if {ignore!r}")
        return Check(index, e, "unique", considered=considered, columns=cols,
                     failing_value=" || '|' || ".join(f"coalesce(cast({c} as varchar), '')" for c in cols))
    if etype == "unexpected_rows_expectation":
        sql = str(_resolve(kwargs.get("unexpected_rows_query"), parameters) or "")
        if not sql:
            raise CompileError(f"{etype}: unexpected_rows_query is empty")
        parts = violation_parts(sql)
        if parts is None:
            return Check(index, e, "query", query=sql)
        value, where = parts
        return Check(index, e, "map", unexpected=f"coalesce({where}, false)", failing_value=value)
    # Column map expectations: a non-null value that breaks the condition.
    text = f"cast({col} as varchar)"
    if etype in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = _resolve(kwargs.get("value_set"), parameters)
        if not isinstance(values, list | tuple | set) or not values:
            raise CompileError(f"{etype}: value_set must be a non-empty list")
        inside = f"{col} in ({', '.join(_literal(v) for v in values)})"
        bad = f"not ({inside})" if etype == "expect_column_values_to_be_in_set" else inside
    elif etype == "expect_column_values_to_be_between":
        bad = f"not ({_between(col, kwargs, parameters)})"
    elif etype in ("expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"):
        regex = _resolve(kwargs.get("regex"), parameters)
        if not isinstance(regex, str):
            raise CompileError(f"{etype}: regex must be a string")
        try:
            re.compile(regex)
        except re.error as exc:
            raise CompileError(f"{etype}: invalid regex {regex!r}: {exc}") from None
        matches = f"regexp_matches({text}, {_literal(regex)})"
        bad = f"not {matches}" if etype == "expect_column_values_to_match_regex" else matches
    elif etype == "expect_column_value_lengths_to_be_between":
        bad = f"not ({_between(f'length({text})', kwargs, parameters)})"
    elif etype == "expect_column_value_lengths_to_equal":
        bad = f"length({text}) <> {_literal(int(_resolve(kwargs.get('value'), parameters)))}"
    else:  # expect_column_values_to_be_unique
        return Check(index, e, "unique", considered=f"{col} is not null", columns=[col])
    return Check(index, e, "map", unexpected=f"{col} is not null and coalesce({bad}, false)",
                 considered=f"{col} is not null")


def _schema(etype: str, kwargs: dict[str, Any], columns: dict[str, str]) -> Result:
    """Expectations about the table's columns, decided from ``information_schema`` (no scan)."""
    names = list(columns)
    if etype == "expect_column_to_exist":
        column = kwargs.get("column")
        index = kwargs.get("column_index")
        if index is not None:
            return _ok(column in names and names.index(column) == index, observed_value=names)
        return _ok(column in names)
    if etype in ("expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"):
        column = kwargs.get("column")
        if column not in columns:
            return failure(f"not run: column(s) [{column!r}] missing")
        wanted = kwargs.get("type_list") if etype.endswith("type_list") else [kwargs.get("type_")]
        observed = columns[column]
        if wanted is None:
            return _ok(True, observed_value=observed)
        return _ok(observed.upper() in {str(t).upper() for t in wanted}, observed_value=observed)
    if etype == "expect_table_columns_to_match_ordered_list":
        return _ok(names == list(kwargs.get("column_list") or []), observed_value=names)
    if etype == "expect_table_columns_to_match_set":
        wanted = set(kwargs.get("column_set") or [])
        exact = kwargs.get("exact_match", True)
        return _ok(set(names) == wanted if exact in (True, None) else wanted <= set(names), observed_value=names)
    if etype == "expect_table_column_count_to_equal":
        return _ok(len(names) == kwargs.get("value"), observed_value=len(names))
    return _ok(_in_bounds(len(names), kwargs, {}), observed_value=len(names))  # column count between


def _in_bounds(value: Any, kwargs: dict[str, Any], parameters: dict[str, Any]) -> bool:
    low, high = _resolve(kwargs.get("min_value"), parameters), _resolve(kwargs.get("max_value"), parameters)
    if value is None:
        return False
    if low is not None:
        low = _like(value, low)
        if value < low or (kwargs.get("strict_min") and value == low):
            return False
    if high is not None:
        high = _like(value, high)
        if value > high or (kwargs.get("strict_max") and value == high):
            return False
    return True


def _like(observed: Any, bound: Any) -> Any:
    """``bound`` in the type of ``observed`` (GX parses a text bound of a date or timestamp column)."""
    if isinstance(observed, dt.datetime) and isinstance(bound, str):
        bound = dt.datetime.fromisoformat(bound)
    elif isinstance(observed, dt.date) and not isinstance(observed, dt.datetime) and isinstance(bound, str):
        bound = dt.date.fromisoformat(bound[:10])
    if isinstance(observed, dt.datetime) and isinstance(bound, dt.datetime) and \
            (observed.tzinfo is None) != (bound.tzinfo is None):  # naive means UTC on both sides
        bound = bound.astimezone(dt.UTC).replace(tzinfo=None) if observed.tzinfo is None else \
            bound.replace(tzinfo=dt.UTC)
    return bound


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
    return _ok(count == 0, observed_value=int(count))


def _aggregate_result(c: Check, observed: Any, parameters: dict[str, Any]) -> Result:
    if c.type == "expect_table_row_count_to_equal":
        return _ok(observed == _resolve(c.kwargs.get("value"), parameters), observed_value=observed)
    try:
        return _ok(_in_bounds(observed, c.kwargs, parameters), observed_value=observed)
    except (CompileError, TypeError, ValueError) as exc:
        return failure(f"{type(exc).__name__}: {exc}")


def _map_result(c: Check, total: int, unexpected: int, considered: int) -> Result:
    mostly = float(c.kwargs.get("mostly", 1) if c.kwargs.get("mostly") is not None else 1)
    if c.type == "unexpected_rows_expectation":
        return _ok(unexpected == 0, observed_value=unexpected)
    if c.type in _MAP_NULLS:  # every row counts, nulls included
        success = total == 0 or (total - unexpected) / total >= mostly
        return _ok(success, element_count=total, unexpected_count=unexpected,
                   unexpected_percent=unexpected / total * 100 if total else None, partial_unexpected_list=[])
    success = unexpected == 0 or total == 0 or considered == 0 or (considered - unexpected) / considered >= mostly
    missing = total - considered
    return _ok(success, element_count=total, unexpected_count=unexpected,
               unexpected_percent=unexpected / considered * 100 if considered else None,
               missing_count=missing, missing_percent=missing / total * 100 if total else None,
               unexpected_percent_total=unexpected / total * 100 if total else None,
               unexpected_percent_nonmissing=unexpected / considered * 100 if considered else None,
               partial_unexpected_list=[])
