"""Compile a stream's GX suite (its committed JSON) into pushed-down SQL, with GX 1.24's semantics.

The suite stays the format users read and edit; Great Expectations itself is not imported (it costs
seconds to import, more than validating a small stream). :func:`compile_suite` turns each
expectation into a :class:`Check`: a row predicate (``map``: the row breaks it; plus the rows
``mostly`` counts over), a uniqueness over columns (``unique``), an aggregate (``aggregate``), a free
query (``query``), or a result decided from the table's schema alone (``done``). ``evaluation.py``
runs them all as one aggregate query over the batch::

    select count(*), count(*) filter (where <unexpected_1>), count(*) filter (where <considered_1>),
           max(<col>), (<rows whose tuple repeats>), ... from (<the rows visible as of the day>)

and turns the counts into GX-shaped results (``success``, ``result`` with ``element_count`` /
``unexpected_count`` / ``unexpected_percent`` / ``observed_value``, ``exception_info``): a column map
expectation counts non-null rows only (``expect_column_values_to_(not_)be_null`` count every row),
``mostly`` is the share of considered rows that must pass, an aggregate is compared with
``min_value``/``max_value`` (``strict_*``), an empty batch passes a map expectation vacuously, and a
tuple with a null in it repeats nothing (GX's SQL engine joins the group counts back on ``=``).
``tests/test_contracts.py`` checks the counts against GX's own on a table with violations of each type.

An expectation type not in :data:`SUPPORTED` (or a ``row_condition``) is never skipped: its result
is a failure whose error names the type and what is supported. A hand-written
``UnexpectedRowsExpectation`` whose query is not of the generated shape runs as its own count query.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from dagster_project.contracts.rules import q, violation_parts

Result = dict[str, Any]  # GX-shaped: {"success", "result", "exception_info"}

MAP_NULLS = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_null"}
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
    *MAP_NULLS, *_MAP, *_AGGREGATES, *_SCHEMA, "expect_compound_columns_to_be_unique",
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


def ok(success: bool, **result: Any) -> Result:
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


def resolve(value: Any, parameters: dict[str, Any]) -> Any:
    """A kwarg's value, with ``{"$PARAMETER": name}`` taken from the run's parameters."""
    if isinstance(value, dict) and "$PARAMETER" in value:
        name = value["$PARAMETER"]
        if name not in parameters:
            raise CompileError(f"expectation parameter {name!r} is not set for this run")
        return parameters[name]
    return value


def _between(expr: str, kwargs: dict[str, Any], parameters: dict[str, Any]) -> str:
    """The predicate ``expr`` is within [min_value, max_value] (``strict_*`` for open bounds)."""
    low, high = resolve(kwargs.get("min_value"), parameters), resolve(kwargs.get("max_value"), parameters)
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
        sql = str(resolve(kwargs.get("unexpected_rows_query"), parameters) or "")
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
        values = resolve(kwargs.get("value_set"), parameters)
        if not isinstance(values, list | tuple | set) or not values:
            raise CompileError(f"{etype}: value_set must be a non-empty list")
        inside = f"{col} in ({', '.join(_literal(v) for v in values)})"
        bad = f"not ({inside})" if etype == "expect_column_values_to_be_in_set" else inside
    elif etype == "expect_column_values_to_be_between":
        bad = f"not ({_between(col, kwargs, parameters)})"
    elif etype in ("expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"):
        regex = resolve(kwargs.get("regex"), parameters)
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
        bad = f"length({text}) <> {_literal(int(resolve(kwargs.get('value'), parameters)))}"
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
            return ok(column in names and names.index(column) == index, observed_value=names)
        return ok(column in names)
    if etype in ("expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"):
        column = kwargs.get("column")
        if column not in columns:
            return failure(f"not run: column(s) [{column!r}] missing")
        wanted = kwargs.get("type_list") if etype.endswith("type_list") else [kwargs.get("type_")]
        observed = columns[column]
        if wanted is None:
            return ok(True, observed_value=observed)
        return ok(observed.upper() in {str(t).upper() for t in wanted}, observed_value=observed)
    if etype == "expect_table_columns_to_match_ordered_list":
        return ok(names == list(kwargs.get("column_list") or []), observed_value=names)
    if etype == "expect_table_columns_to_match_set":
        wanted = set(kwargs.get("column_set") or [])
        exact = kwargs.get("exact_match", True)
        return ok(set(names) == wanted if exact in (True, None) else wanted <= set(names), observed_value=names)
    if etype == "expect_table_column_count_to_equal":
        return ok(len(names) == kwargs.get("value"), observed_value=len(names))
    return ok(in_bounds(len(names), kwargs, {}), observed_value=len(names))  # column count between


def in_bounds(value: Any, kwargs: dict[str, Any], parameters: dict[str, Any]) -> bool:
    low, high = resolve(kwargs.get("min_value"), parameters), resolve(kwargs.get("max_value"), parameters)
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
