"""Validate a landed stream against its committed suite, on DuckDB, with GX's SQL data source.

:func:`validate_stream` is the one entry point (the Dagster asset checks and ``recon contracts
check`` both call it). It never passes when it could not run: a missing suite, a missing table or an
expectation that raised are failures. Steps:

1. load the committed suite (``expectations/expectations/<suite>.json``);
2. read the table's columns and compare them with the last accepted snapshot (schema drift);
3. run the suite with GX against the table (every metric is SQL pushed down to DuckDB; only counts
   and a few sample values come back);
4. when ``record`` is set: rebuild the stream's quarantine from the failed row-level rules, rewrite
   its ``contract_violations`` for the as-of day, and accept the schema snapshot if nothing blocks;
5. optionally build GX Data Docs for the run into ``docs_dir``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib.config import ReconConfig
from dagster_project.lib.contracts import gx_duckdb, store
from dagster_project.lib.contracts.rules import (
    EXTRACTED_AT,
    FILE_MODIFIED,
    RAW_ID,
    build_contract,
    freshness_hours,
    load_overrides,
    q,
    suite_name,
)
from dagster_project.lib.contracts.suites import (
    OVERRIDES_FILE,
    SuiteNotFoundError,
    ensure_suites,
    expectations_dir_for,
    is_stale,
    load_suite_json,
)

log = logging.getLogger(__name__)

AIRBYTE_COLUMNS = {RAW_ID, EXTRACTED_AT, "_airbyte_meta", "_airbyte_generation_id", "_ab_source_file_url",
                   FILE_MODIFIED}


@dataclass
class Outcome:
    """The result of one expectation."""

    rule_id: str
    check: str
    column: str | None
    expectation_type: str
    blocking: bool
    success: bool
    description: str
    unexpected_count: int | None = None
    element_count: int | None = None
    observed_value: Any = None
    error: str | None = None
    quarantined: int | None = None
    row_level: bool = False
    quarantine: bool = False

    def message(self, system: str, stream: str) -> str:
        where = f"{system}.{stream}" + (f" column {self.column}" if self.column else "")
        if self.check == "column_exists" and not self.error:
            return f"{where}: missing from the landed table (staging reads it) [{self.rule_id}]"
        if self.check == "column_type" and not self.error and self.observed_value is not None:
            return f"{where}: landed as {self.observed_value}; expected: {self.description} [{self.rule_id}]"
        if self.error:
            detail = f"could not run: {self.error}"
        elif self.unexpected_count is not None:
            detail = f"{self.unexpected_count} of {self.element_count} row(s) break it"
        elif self.observed_value is not None:
            detail = f"observed {self.observed_value}"
        else:
            detail = "failed"
        return f"{where}: {self.description}: {detail} [{self.rule_id}]"


@dataclass
class DriftChange:
    """A column added, removed or retyped since the last accepted snapshot."""

    kind: str
    column: str
    old_type: str | None
    new_type: str | None
    blocking: bool

    def message(self, system: str, stream: str) -> str:
        what = {"added": f"added ({self.new_type})", "removed": f"removed (was {self.old_type})",
                "retyped": f"retyped {self.old_type} -> {self.new_type}"}[self.kind]
        return (f"{system}.{stream} column {self.column}: {what}"
                + (" - breaks the contract" if self.blocking else ""))


@dataclass
class ContractResult:
    """Everything one validation found; ``to_metadata`` feeds the Dagster check."""

    system: str
    stream: str
    suite: str
    table: str
    as_of_date: dt.date | None
    reference_time: dt.datetime
    outcomes: list[Outcome] = field(default_factory=list)
    drift: list[DriftChange] = field(default_factory=list)
    schema: dict[str, str] = field(default_factory=dict)
    row_count: int | None = None
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    quarantined_rows: int = 0
    violations_written: int = 0
    docs_path: Path | None = None
    error: str | None = None
    suite_stale: bool = False
    notes: list[str] = field(default_factory=list)  # e.g. "generated contract suite for shop.orders at ..."
    seconds: float = 0.0
    column_fields: dict[str, list[str]] = field(default_factory=dict)  # source column -> canonical fields

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def blocking(self) -> bool:
        """True when going on would be meaningless: the run must stop downstream of this stream."""
        return (self.error is not None or any(o.blocking for o in self.failures)
                or any(d.blocking for d in self.drift))

    @property
    def passed(self) -> bool:
        return self.error is None and not self.failures and not any(d.blocking for d in self.drift)

    def messages(self) -> list[str]:
        """One line per problem, each naming the stream, the column and the cause; blocking ones first."""
        return [line for line, _ in self._lines()]

    def blocking_messages(self) -> list[str]:
        """The problems that block the run (what :meth:`hint` is about)."""
        return [line for line, blocking in self._lines() if blocking]

    def _lines(self) -> list[tuple[str, bool]]:
        out = [(f"{self.system}.{self.stream}: {self.error}", True)] if self.error else []
        out += [(d.message(self.system, self.stream) + self._mapped_by(d.column), d.blocking) for d in self.drift]
        # A missing column is the cause; the other rules on it only fail because of it.
        missing = {o.column for o in self.failures if o.check == "column_exists" and not o.error}
        consequences = [o for o in self.failures if o.column in missing and o.check != "column_exists"]
        for o in sorted(self.failures, key=lambda o: (not o.blocking, o.check != "column_exists")):
            if o in consequences:
                continue
            line = o.message(self.system, self.stream) + self._mapped_by(o.column)
            if o.check == "column_exists" and self.schema:
                landed = [c for c in self.schema if c not in AIRBYTE_COLUMNS]
                line += f"; {self.table} has columns {', '.join(landed)}"
                after = sum(c.column == o.column for c in consequences)
                if after:
                    line += f" ({after} more rule(s) on {o.column} not run because of it)"
            out.append((line, o.blocking))
        return out

    def _mapped_by(self, column: str | None) -> str:
        fields = self.column_fields.get(column or "")
        return f" (the config maps {', '.join(fields)} from it)" if fields else ""

    def hint(self) -> str | None:
        """What to run about a blocking failure (None when nothing blocks)."""
        if not self.blocking:
            return None
        where = f"systems.{self.system}.streams.{self.stream}"
        if self.error and "suite" in self.error:
            return "run `recon contracts generate` (the demo's suites: and commit them)"
        if self.error and "not found" in self.error:
            return (f"the stream has not landed: see the step raw/{self.system}/{self.stream} of the run and "
                    f"{where} (path, glob); `recon config validate --data` previews what it would land")
        return (f"fix {where}.fields (or the export), check with `recon contracts check --system {self.system}` "
                "and `recon config validate --data`, then run the day again")

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON-able metadata: counts, failing expectations, samples, drift, docs."""
        return {
            "suite": self.suite,
            "table": self.table,
            "as_of_date": str(self.as_of_date) if self.as_of_date else None,
            "row_count": self.row_count,
            "expectations": len(self.outcomes),
            "failed": len(self.failures),
            "failed_blocking": sum(o.blocking for o in self.failures) + sum(d.blocking for d in self.drift),
            "quarantined_rows": self.quarantined_rows,
            "failing_expectations": [
                {"rule_id": o.rule_id, "column": o.column, "expectation": o.expectation_type,
                 "blocking": o.blocking, "unexpected_count": o.unexpected_count,
                 "element_count": o.element_count, "observed_value": _jsonable(o.observed_value),
                 "quarantined": o.quarantined, "error": o.error}
                for o in self.failures
            ],
            "schema_drift": [d.message(self.system, self.stream) for d in self.drift],
            "sample_failing_rows": self.samples,
            "messages": self.messages(),
            "hint": self.hint(),
            "notes": self.notes,
            "error": self.error,
            "suite_stale": self.suite_stale,
            "seconds": round(self.seconds, 3),
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


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


def _samples(con: duckdb.DuckDBPyConnection, table: str, violation_sql: str, limit: int) -> list[dict[str, Any]]:
    violation = violation_sql.format(batch=table)
    cur = con.execute(
        f"select t.* from {table} t where t.{q(RAW_ID)} in "
        f"(select {q(RAW_ID)} from ({violation}) v limit {int(limit)}) limit {int(limit)}"
    )
    names = [d[0] for d in cur.description]
    keep = [n for n in names if n not in AIRBYTE_COLUMNS or n == RAW_ID]
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=True) if n in keep} for row in cur.fetchall()]


def _run_gx(con: duckdb.DuckDBPyConnection, suite_data: dict[str, Any], system: str, stream: str,
            parameters: dict[str, Any], docs_dir: Path | None) -> tuple[Any, Path | None]:
    """Run the suite with an ephemeral GX context on ``con``'s database; returns (result, docs index)."""
    import great_expectations as gx
    from great_expectations.core import ExpectationSuite

    gx_duckdb.install()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # logs, not terminal bars
    datasource = context.data_sources.add_sql(
        "recon_duckdb", connection_string="duckdb:///:memory:", kwargs=gx_duckdb.engine_kwargs(con))
    asset = datasource.add_table_asset(stream, table_name=stream, schema_name=f"raw_{system}")
    batch_definition = asset.add_batch_definition_whole_table("whole_table")
    suite = context.suites.add(ExpectationSuite(**{k: v for k, v in suite_data.items() if k != "id"}))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=suite))
    actions = []
    index = None
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site("recon_run", {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["recon_run"]))
        index = docs_dir / "index.html"
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=f"{suite.name}__run", validation_definitions=[definition], actions=actions,
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5}))
    try:
        result = checkpoint.run(expectation_parameters=parameters)
    finally:
        datasource.get_execution_engine().close()
    return next(iter(result.run_results.values())), index


def validate_stream(
    con: duckdb.DuckDBPyConnection,
    config: ReconConfig,
    system: str,
    stream: str,
    *,
    as_of_date: dt.date | None = None,
    now: dt.datetime | None = None,
    expectations_dir: Path | None = None,
    docs_dir: Path | None = None,
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
        as_of_date: the run's as-of day (freshness counts from its end; stamped on violations).
        now: the clock (tests pin it).
        expectations_dir: the GX File Data Context with the suites (default: the config's, see
            ``suites.expectations_dir_for``). Missing or outdated suites of a config's own folder
            are written first (``result.notes`` says so); the committed demo suites never are.
        docs_dir: build GX Data Docs for this run into this folder.
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
        exists = con.execute("select count(*) from information_schema.tables where table_schema = ? "
                             "and table_name = 'contract_schema_snapshots'", [store.SCHEMA]).fetchall()[0][0]
        previous = store.last_snapshot(con, system, stream) if exists else None
    result.drift = _drift(previous, columns, accepted_types)
    result.row_count = con.execute(f"select count(*) from {table}").fetchall()[0][0]

    # A rule on a missing column cannot run, and its SQL error would abort the connection's transaction
    # for the rules after it: run only the column_exists check for that column (it names the cause).
    absent = set(accepted_types) - set(columns)
    skipped = [e for e in suite_data["expectations"] if e["type"] != "expect_column_to_exist"
               and _columns_of(e) & absent]
    if skipped:
        suite_data = {**suite_data, "expectations": [e for e in suite_data["expectations"] if e not in skipped]}
    hours = freshness_hours(config, system, stream, overrides)
    parameters = {} if hours is None else {"freshness_min": (ref - dt.timedelta(hours=hours)).isoformat()}
    run_docs = docs_dir / name if docs_dir is not None else None
    try:
        validation, result.docs_path = _run_gx(con, suite_data, system, stream, parameters, run_docs)
    except Exception as exc:  # a contract that cannot run is a failure, never a pass
        log.exception("contract %s could not run", name)
        result.error = f"validation could not run: {type(exc).__name__}: {exc}"
        return result

    by_rule: dict[str, dict[str, Any]] = {e["meta"]["rule_id"]: e for e in suite_data["expectations"]}
    for item in validation.results:
        meta = item.expectation_config.meta or {}
        rule_id = meta.get("rule_id", item.expectation_config.type)
        res = item.result or {}
        error = None
        info = item.exception_info or {}
        if info.get("raised_exception"):
            error = str(info.get("exception_message"))
        elif info and "raised_exception" not in info:
            raised = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
            if raised:
                error = str(raised[0].get("exception_message"))
        unexpected = res.get("unexpected_count")
        if unexpected is None and item.expectation_config.type == "unexpected_rows_expectation":
            unexpected = res.get("observed_value")
        result.outcomes.append(Outcome(
            rule_id=rule_id,
            check=meta.get("check", ""),
            column=meta.get("column"),
            expectation_type=item.expectation_config.type,
            blocking=bool(meta.get("blocking")),
            success=bool(item.success) and error is None,
            description=by_rule.get(rule_id, {}).get("description") or item.expectation_config.type,
            unexpected_count=unexpected,
            element_count=res.get("element_count", result.row_count if unexpected is not None else None),
            observed_value=None if unexpected is not None else res.get("observed_value"),
            error=error,
            row_level="violation_sql" in meta,
            quarantine="violation_sql" in meta and bool(meta.get("quarantine", True)),
        ))

    for e in skipped:
        meta = e["meta"]
        result.outcomes.append(Outcome(
            rule_id=meta["rule_id"], check=meta.get("check", ""), column=meta.get("column"), expectation_type=e["type"],
            blocking=bool(meta.get("blocking")), success=False, description=e.get("description") or e["type"],
            error=f"not run: column(s) {sorted(_columns_of(e) & absent)} missing", row_level="violation_sql" in meta))
    failed_rows = [o for o in result.failures if o.row_level and o.error is None]
    for outcome in failed_rows:
        try:
            result.samples[outcome.rule_id] = _samples(con, table, by_rule[outcome.rule_id]["meta"]["violation_sql"],
                                                       sample_size)
        except duckdb.Error as exc:
            outcome.error = f"sample query failed: {exc}"

    if record:
        _record(con, result, contract, by_rule, failed_rows, now)
    result.seconds = time.perf_counter() - started
    return result


def _columns_of(expectation: dict[str, Any]) -> set[str]:
    """The source columns an expectation of a generated suite reads (its rule's column(s), its kwargs)."""
    kwargs = expectation.get("kwargs") or {}
    column = (expectation.get("meta") or {}).get("column") or ""
    return {c for c in [*column.split(","), kwargs.get("column") or "", *(kwargs.get("column_list") or [])] if c}


def _record(con: duckdb.DuckDBPyConnection, result: ContractResult, contract: Any,
            by_rule: dict[str, dict[str, Any]], failed_rows: list[Outcome], now: dt.datetime) -> None:
    rules = [{"rule_id": o.rule_id, "check": o.check, "column": o.column, "description": o.description,
              "violation_sql": by_rule[o.rule_id]["meta"]["violation_sql"]}
             for o in failed_rows if o.error is None and o.quarantine]
    con.execute("begin").fetchall()
    try:
        counts = store.replace_quarantine(con, result.system, result.stream, result.table, rules,
                                          result.as_of_date, now)
        for outcome in failed_rows:
            outcome.quarantined = counts.get(outcome.rule_id)
        result.quarantined_rows = con.execute(
            f"select count(distinct _airbyte_raw_id) from {store.SCHEMA}.contract_quarantine "
            "where system = ? and stream = ?", [result.system, result.stream]).fetchall()[0][0]
        stream_level = [
            {"column": o.column, "rule_id": o.rule_id, "expectation": o.expectation_type,
             "failing_value": None if o.observed_value is None else str(_jsonable(o.observed_value)),
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
            con, system=result.system, stream=result.stream, table=result.table, as_of_date=result.as_of_date,
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
