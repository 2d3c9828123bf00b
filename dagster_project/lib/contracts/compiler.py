"""Compile a stream's GX suite (its committed JSON) into one pushed-down SQL query, and evaluate it.

The suite stays the format users read and edit; Great Expectations itself is not imported here (it
costs seconds to import, more than validating a small stream). Each expectation becomes aggregates
of one query over the stream's batch (one scan; windows only for uniqueness)::

    with batch as (<the rows visible as of the day>), b as (select *, <windows> from batch)
    select count(*), count(*) filter (where <unexpected_1>), count(*) filter (where <considered_1>), ...
    from b

and :func:`evaluate` turns the row of counts into GX-shaped results (``success``, ``result`` with
``element_count`` / ``unexpected_count`` / ``unexpected_percent`` / ``observed_value``,
``exception_info``) with GX 1.24's semantics: a column map expectation counts non-null rows only
(``expect_column_values_to_(not_)be_null`` count every row), ``mostly`` is the share of considered
rows that must pass, an aggregate is compared with ``min_value``/``max_value`` (``strict_*``), an
empty batch passes a map expectation vacuously. ``tests/test_contracts.py`` checks the counts
against GX's own on a table with violations of every type.

An expectation type not in :data:`SUPPORTED` (or a ``row_condition``) is never skipped: its result
is a failure whose error names the type and what is supported. A hand-written
``UnexpectedRowsExpectation`` whose query is not of the generated shape runs as its own count query.
If the combined query fails (a bad literal in a user's expectation, say), each expectation is run on
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
        kind: ``map`` (unexpected / considered row predicates), ``aggregate`` (an observed value),
            ``query`` (a free ``UnexpectedRowsExpectation`` query, run on its own) or ``done``
            (decided without data: a schema expectation or a compile error).
        unexpected: for ``map``: the predicate a row breaks the expectation by.
        considered: for ``map``: the rows ``mostly`` counts over (None: every row).
        windows: ``{alias: window expression}`` the predicates read.
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
    windows: dict[str, str] = field(default_factory=dict)
    aggregate: str | None = None
    query: str | None = None
    result: Result | None = None
    failing_value: str | None = None

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
        window = f"_recon_w{index}"
        return Check(index, e, "map", unexpected=f"({considered}) and {window} > 1", considered=considered,
                     windows={window: f"count(*) over (partition by {', '.join(cols)})"},
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
        window = f"_recon_w{index}"
        return Check(index, e, "map", unexpected=f"{col} is not null and {window} > 1",
                     considered=f"{col} is not null", windows={window: f"count(*) over (partition by {col})"})
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


def _aggregates(checks: list[Check]) -> list[str]:
    out = []
    for c in checks:
        if c.kind == "map":
            out.append(f"count(*) filter (where {c.unexpected})")
            out.append(f"count(*) filter (where {c.considered})" if c.considered else "count(*)")
        elif c.kind == "aggregate":
            out.append(c.aggregate or "null")
    return out


def with_windows(batch: str, checks: list[Check]) -> str:
    """``with batch as (...), b as (select *, <windows> from batch)``: the query head the checks read."""
    windows = [f"{sql} as {alias}" for c in checks for alias, sql in c.windows.items()]
    inner = "select *" + "".join(f", {w}" for w in windows) + " from batch"
    return f"with batch as ({batch}), b as ({inner})"


def _run(con: duckdb.DuckDBPyConnection, batch: str, checks: list[Check]) -> tuple[int, list[Any]]:
    sql = f"{with_windows(batch, checks)} select {', '.join(['count(*)', *_aggregates(checks)])} from b"
    row = con.execute(sql).fetchall()[0]
    return int(row[0]), list(row[1:])


def evaluate(con: duckdb.DuckDBPyConnection, batch: str, checks: list[Check],
             parameters: dict[str, Any]) -> tuple[int | None, list[Result]]:
    """Run the checks over ``batch`` (a ``select`` of the rows to validate) in one query.

    Args:
        con: the connection.
        batch: the SQL of the batch, e.g. ``select * from raw_psp.charges where ...``.
        checks: from :func:`compile_suite`.
        parameters: the run's expectation parameters.

    Returns:
        (the batch's row count, one result per check in order); the count is None when nothing could run.
    """
    scanned = [c for c in checks if c.kind in ("map", "aggregate")]
    values: dict[int, list[Any] | str] = {}
    total: int | None = None
    try:
        total, flat = _run(con, batch, scanned)
        it = iter(flat)
        for c in scanned:
            values[c.index] = [next(it), next(it)] if c.kind == "map" else [next(it)]
    except duckdb.Error as exc:  # find the expectation(s) the error comes from
        for c in scanned:
            try:
                total, flat = _run(con, batch, [c])
                values[c.index] = flat
            except duckdb.Error as one:
                values[c.index] = f"{type(one).__name__}: {one}"
        if total is None:
            try:
                total = int(con.execute(f"select count(*) from ({batch}) as b").fetchall()[0][0])
            except duckdb.Error:
                return None, [c.result or failure(f"{type(exc).__name__}: {exc}") for c in checks]
    results = []
    for c in checks:
        if c.kind == "done":
            results.append(c.result or failure("no result"))
        elif c.kind == "query":
            results.append(_query(con, batch, c))
        elif isinstance(values.get(c.index), str):
            results.append(failure(str(values[c.index])))
        elif c.kind == "aggregate":
            results.append(_aggregate_result(c, values[c.index][0], parameters))
        else:
            unexpected, considered = values[c.index]
            results.append(_map_result(c, total or 0, int(unexpected), int(considered)))
    return total, results


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
