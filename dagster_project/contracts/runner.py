"""Validate a landed stream against its committed suite: one pushed-down SQL query per stream.

:func:`validate_stream` is the one entry point (the Dagster asset checks and ``recon contracts
check`` both call it). It never passes when it could not run: a missing suite, a missing table or an
expectation that cannot be compiled or raised are failures. Steps:

1. load the committed suite (``expectations/expectations/<suite>.json``);
2. read the table's columns and compare them with the last accepted snapshot (schema drift);
3. cut the batch: the rows visible as of the as-of day (:func:`visible_rows`, staging's rule);
4. compile the suite into one aggregate query over the batch and evaluate it with GX's semantics
   (``compiler.py``); a second small query fetches sample rows of the failed expectations only;
5. when ``record`` is set: rebuild the stream's quarantine from the failed row-level rules (for the
   visible rows; rows landed later keep what their own day decided), rewrite its
   ``contract_violations`` for the as-of day, and accept the schema snapshot if nothing blocks;
6. optionally write the GX validation result JSON (``results_dir``) and build GX Data Docs from it
   (``docs_dir``; see ``docs.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.config.model import ReconConfig
from dagster_project.contracts import store
from dagster_project.contracts.compiler import Check, compile_suite
from dagster_project.contracts.docs import build_data_docs, validation_result, write_result
from dagster_project.contracts.evaluation import FAILING, evaluate, keep_failing, samples
from dagster_project.contracts.results import (
    AIRBYTE_COLUMNS,
    ContractResult,
    DriftChange,
    Outcome,
    jsonable,
)
from dagster_project.contracts.rules import (
    FILE_MODIFIED,
    RAW_ID,
    build_contract,
    freshness_hours,
    lit,
    load_overrides,
    q,
    suite_name,
    violation_parts,
)
from dagster_project.contracts.suites import (
    OVERRIDES_FILE,
    SuiteNotFoundError,
    ensure_suites,
    expectations_dir_for,
    is_stale,
    load_suite_json,
)
from dagster_project.lib.database import table_exists

__all__ = ["ContractResult", "DriftChange", "Outcome", "validate_all", "validate_stream", "visible_rows"]

log = logging.getLogger(__name__)

def reference_time(as_of_date: dt.date | None, now: dt.datetime | None = None) -> dt.datetime:
    """The run's "now" for freshness: the end of the as-of day (UTC), never later than the clock."""
    now = now or dt.datetime.now(dt.UTC)
    if as_of_date is None:
        return now
    end = dt.datetime.combine(as_of_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return min(end, now)


def _drift(previous: dict[str, str] | None, current: dict[str, str],
           accepted_types: dict[str, list[str]]) -> list[DriftChange]:
    if previous is None:
        return []
    changes = []
    for column, new_type in current.items():
        if column not in previous:
            changes.append(DriftChange("added", column, None, new_type, False))
        elif previous[column] != new_type:
            allowed = accepted_types.get(column)
            breaks = allowed is not None and new_type.upper() not in {t.upper() for t in allowed}
            changes.append(DriftChange("retyped", column, previous[column], new_type, breaks))
    for column, old_type in previous.items():
        if column not in current:
            changes.append(DriftChange("removed", column, old_type, None, column in accepted_types))
    return changes


def _cutoff(as_of_date: dt.date) -> str:
    """The end of the as-of day (UTC) as a SQL timestamptz literal: staging's ``as_of_cutoff()``."""
    end = dt.datetime.combine(as_of_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return f"cast({lit(end.isoformat(sep=' '))} as timestamp with time zone)"


def visible_rows(table: str, columns: dict[str, str], as_of_date: dt.date | None) -> tuple[str, str | None]:
    """The rows of ``table`` a contract run for ``as_of_date`` checks, and those it must leave alone.

    The same rule as staging's ``visible_versions`` (dbt_project/macros/current_versions.sql): a row is
    known as of D when its delivery's ``available_at`` (the file's modification time,
    ``_ab_source_file_last_modified``) is null or before the end of D. Rerunning D after later files
    landed therefore checks, quarantines and records exactly what a run on D alone did.

    Returns:
        (``select`` of the visible rows, predicate of the rows landed after D or None when all are visible).
    """
    if as_of_date is None or FILE_MODIFIED not in columns:
        return f"select * from {table}", None
    modified = f"cast({q(FILE_MODIFIED)} as timestamp with time zone)"
    return (f"select * from {table} where {q(FILE_MODIFIED)} is null or {modified} < {_cutoff(as_of_date)}",
            f"{q(FILE_MODIFIED)} is not null and {modified} >= {_cutoff(as_of_date)}")


def _rule_id(expectation: dict[str, Any], seen: set[str]) -> str:
    meta = expectation.get("meta") or {}
    kwargs = expectation.get("kwargs") or {}
    base = meta.get("rule_id") or ":".join(
        [expectation.get("type", "?"), *([kwargs["column"]] if isinstance(kwargs.get("column"), str) else
                                         [",".join(kwargs.get("column_list") or [])] if kwargs.get("column_list")
                                         else [])])
    rule_id, n = base, 1
    while rule_id in seen:  # two hand-added expectations of one type on one column
        n += 1
        rule_id = f"{base}#{n}"
    seen.add(rule_id)
    return rule_id


def _samples(con: duckdb.DuckDBPyConnection, batch: str, checks: list[Check], limit: int
             ) -> dict[int, list[dict[str, Any]]]:
    """Up to ``limit`` rows breaking each failed check, without the flag and Airbyte columns."""
    out: dict[int, list[dict[str, Any]]] = {}
    for index, names, rows in samples(con, batch, checks, limit):
        keep = [i for i, n in enumerate(names) if not n.startswith("_recon_")
                and (n not in AIRBYTE_COLUMNS or n == RAW_ID)]
        out[index] = [{names[i]: jsonable(row[i]) for i in keep} for row in rows]
    return out


def validate_stream(
    con: duckdb.DuckDBPyConnection,
    config: ReconConfig,
    system: str,
    stream: str,
    *,
    as_of_date: dt.date | None = None,
    now: dt.datetime | None = None,
    expectations_dir: Path | None = None,
    results_dir: Path | None = None,
    docs_dir: Path | None = None,
    run_name: str = "recon contracts check",
    record: bool = True,
    sample_size: int = 5,
) -> ContractResult:
    """Validate ``raw_<system>.<stream>`` against its committed suite.

    Args:
        con: an open read-write connection to the project's DuckDB file (read-only is fine with
            ``record=False``).
        config: the project config.
        system: the system name.
        stream: the stream name.
        as_of_date: the run's as-of day: only rows delivered by its end are checked (:func:`visible_rows`),
            freshness counts from its end, violations are stamped with it.
        now: the clock (tests pin it).
        expectations_dir: the GX File Data Context with the suites (default: the config's, see
            ``suites.expectations_dir_for``). Missing or outdated suites of a config's own folder
            are written first (``result.notes`` says so); the committed demo suites never are.
        results_dir: write the GX validation result JSON here (``<suite>.json``, ``result.result_path``).
        docs_dir: also build GX Data Docs for this validation into this folder (imports GX: seconds).
        run_name: the run's name in the validation result and Data Docs.
        record: write quarantine, violations and the accepted schema snapshot.
        sample_size: failing rows kept per failed row-level rule.

    Returns:
        The structured result; ``result.passed`` / ``result.blocking`` give the verdict.
    """
    import time

    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    name = suite_name(system, stream)
    table = f"raw_{system}.{stream}"
    ref = reference_time(as_of_date, now)
    result = ContractResult(system, stream, name, table, as_of_date, ref)
    for field_name, spec in sorted(config.systems[system].streams[stream].fields.items()):
        if spec.from_:
            result.column_fields.setdefault(spec.from_.split(".")[0], []).append(field_name)
    expectations_dir = expectations_dir or expectations_dir_for(config)
    try:
        result.notes = [w.message() for w in ensure_suites(config, expectations_dir, system, stream)]
        suite_data = load_suite_json(expectations_dir, name)
    except (SuiteNotFoundError, OSError, ValueError) as exc:  # cannot run = a failure, with the reason
        result.error = str(exc)
        return result
    overrides = load_overrides(expectations_dir / OVERRIDES_FILE)
    contract = build_contract(config, system, stream, overrides)
    result.suite_stale = is_stale(contract, suite_data)
    accepted_types: dict[str, list[str]] = suite_data.get("meta", {}).get("accepted_types", {})

    columns = store.table_columns(con, system, stream)
    if columns is None:
        result.error = f"table {table} not found (has the stream landed?)"
        return result
    result.schema = columns
    if record:
        store.ensure_tables(con)
        previous = store.last_snapshot(con, system, stream)
    else:
        exists = table_exists(con, store.SCHEMA, "contract_schema_snapshots")
        previous = store.last_snapshot(con, system, stream) if exists else None
    result.drift = _drift(previous, columns, accepted_types)

    hours = freshness_hours(config, system, stream, overrides)
    parameters = {} if hours is None else {"freshness_min": (ref - dt.timedelta(hours=hours)).isoformat()}
    batch, hidden = visible_rows(table, columns, as_of_date)
    checks = compile_suite(suite_data, columns, parameters)
    result.row_count, gx_results = evaluate(con, batch, checks, parameters)
    if result.row_count is None:
        result.error = f"validation could not run: {gx_results[0]['exception_info']['exception_message']}"
        return result

    seen: set[str] = set()
    by_check: dict[int, Outcome] = {}
    for check, res in zip(checks, gx_results, strict=True):
        e, meta = check.expectation, check.expectation.get("meta") or {}
        info, values = res.get("exception_info") or {}, res.get("result") or {}
        error = str(info.get("exception_message")) if info.get("raised_exception") else None
        unexpected = values.get("unexpected_count")
        if unexpected is None and check.type == "unexpected_rows_expectation":
            unexpected = values.get("observed_value")
        by_check[check.index] = outcome = Outcome(
            rule_id=_rule_id(e, seen), check=meta.get("check", ""), column=meta.get("column", e.get("kwargs", {})
                                                                                  .get("column")),
            expectation_type=check.type, blocking=bool(meta.get("blocking")),
            success=bool(res["success"]) and error is None, description=e.get("description") or check.type,
            unexpected_count=unexpected,
            element_count=values.get("element_count", result.row_count if unexpected is not None else None),
            observed_value=None if unexpected is not None else values.get("observed_value"), error=error,
            row_level="violation_sql" in meta, quarantine="violation_sql" in meta and bool(meta.get("quarantine", True)))
        result.outcomes.append(outcome)

    failing = [c for c in checks if c.kind in ("map", "unique") and not by_check[c.index].success
               and by_check[c.index].error is None]
    try:
        keep_failing(con, batch, failing)
        for index, rows in _samples(con, batch, failing, sample_size).items():
            result.samples[by_check[index].rule_id] = rows
            column = checks[index].kwargs.get("column")
            if column:
                gx_results[index]["result"]["partial_unexpected_list"] = [r.get(column) for r in rows]
    except duckdb.Error as exc:
        for c in failing:
            by_check[c.index].error = f"sample query failed: {exc}"

    if record:
        _record(con, result, contract, checks, by_check, now, batch, hidden)
    con.execute(f"drop table if exists {FAILING}").fetchall()
    if results_dir is not None or docs_dir is not None:
        gx_result = validation_result(suite_data, gx_results, table=table, run_name=run_name, run_time=now,
                                      as_of_date=as_of_date, parameters=parameters)
        if results_dir is not None:
            result.result_path = write_result(results_dir, gx_result)
        if docs_dir is not None:
            result.docs_path = build_data_docs([gx_result], [suite_data], docs_dir / name)
    result.seconds = time.perf_counter() - started
    return result


def _record(con: duckdb.DuckDBPyConnection, result: ContractResult, contract: Any, checks: list[Check],
            by_check: dict[int, Outcome], now: dt.datetime, batch: str, hidden: str | None) -> None:
    failed_rows = [o for o in result.failures if o.row_level and o.error is None]
    rules = []
    for c in checks:
        o = by_check[c.index]
        if o.success or not o.row_level or o.error is not None or not o.quarantine:
            continue
        sql = (c.expectation.get("meta") or {})["violation_sql"]
        parts = violation_parts(sql)
        # The rows GX-style counted (the check's flag) are the rows quarantined; the failing value is the rule's.
        flagged = c.kind == "map" and parts is not None
        rules.append({"rule_id": o.rule_id, "check": o.check, "column": o.column, "description": o.description,
                      "violation_sql": sql, "flag": c.flag if flagged else None,
                      "failing_value": parts[0] if flagged and parts else None})
    con.execute("begin").fetchall()
    try:
        counts, result.quarantined_rows = store.replace_quarantine(
            con, result.system, result.stream, result.table, batch, hidden, FAILING, rules, result.as_of_date, now)
        for outcome in failed_rows:
            outcome.quarantined = counts.get(outcome.rule_id)
        stream_level = [
            {"column": o.column, "rule_id": o.rule_id, "expectation": o.expectation_type,
             "failing_value": None if o.observed_value is None else str(jsonable(o.observed_value)),
             "severity": "blocking" if o.blocking else "warning", "reason": o.message(result.system, result.stream)}
            for o in result.failures if (not o.row_level or o.error is not None) and o.check != "unique_key_per_sync"
        ] + [
            {"column": d.column, "rule_id": f"schema_drift:{d.column}", "expectation": f"schema_drift_{d.kind}",
             "failing_value": d.new_type, "severity": "blocking", "reason": d.message(result.system, result.stream)}
            for d in result.drift if d.blocking
        ]
        row_key = " || '|' || ".join(f"coalesce(cast({q(c)} as varchar), '')" for c in contract.primary_key
                                       if c in result.schema) or "null"
        result.violations_written = store.replace_violations(
            con, system=result.system, stream=result.stream, batch=_quarantined_rows(batch, rules),
            as_of_date=result.as_of_date,
            row_key_sql=row_key,
            order_id_sql=contract.order_id_sql if _columns_present(contract.order_id_sql, result.schema) else None,
            severities={o.rule_id: "blocking" if o.blocking else "warning" for o in result.outcomes},
            expectations={o.rule_id: o.expectation_type for o in result.outcomes},
            stream_level=stream_level, snapshot=result.schema, now=now)
        if not result.blocking:
            store.accept_snapshot(con, result.system, result.stream, result.schema, result.as_of_date, now)
        con.execute("commit").fetchall()
    except Exception:
        con.execute("rollback").fetchall()
        raise


def _quarantined_rows(batch: str, rules: list[dict[str, Any]]) -> str:
    """A ``select`` holding every row of the batch that was just quarantined: the small table of failing
    rows when every rule read it, the whole batch when one ran its own query, nothing when none failed."""
    if not rules:
        return f"select * from ({batch}) as batch where false"
    return f"select * from {FAILING}" if all(r["flag"] for r in rules) else batch


def _columns_present(sql: str | None, schema: dict[str, str]) -> bool:
    if sql is None:
        return False
    return any(f'"{c}"' in sql for c in schema)


def validate_all(con: duckdb.DuckDBPyConnection, config: ReconConfig, *, system: str | None = None,
                 **kwargs: Any) -> list[ContractResult]:
    """:func:`validate_stream` for every configured stream (optionally of one system)."""
    if system is not None and system not in config.systems:
        raise KeyError(f"unknown system '{system}'; configured: {sorted(config.systems)}")
    return [validate_stream(con, config, name, stream, **kwargs)
            for name in sorted(config.systems) if system in (None, name)
            for stream in sorted(config.systems[name].streams)]
