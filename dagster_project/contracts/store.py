"""The contract tables in DuckDB (schema ``recon_meta``), owned by the contract checks.

- ``contract_schema_snapshots``: each accepted (columns, types) of a stream; the newest is what the
  next run's drift check compares with. A snapshot is accepted only by a run without blocking failures.
- ``contract_quarantine``: one row per (quarantined row, broken rule), rebuilt for a stream's rows
  visible as of the day on every recorded run (rows landed later keep their own day's verdict; the
  row rules are row-local, so every day decides a row alike and reruns change nothing). Staging leaves
  these rows out: anti-join on ``(system, stream, _airbyte_raw_id)`` or use the view
  ``contract_quarantined_ids``.
- ``contract_violations``: what the exceptions asset turns into ``contract_violation`` exceptions, per
  as-of day: one row per quarantined row and rule (``level = 'row'``) and one per failed stream-level
  rule or blocking drift (``level = 'stream'``), each with the stream's schema snapshot as JSON.
  Rewritten for (as_of_date, system, stream) on every recorded run, so reruns change nothing.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import duckdb

from dagster_project.contracts.rules import lit

SCHEMA = "recon_meta"

DDL: list[str] = [
    f"create schema if not exists {SCHEMA}",
    f"""create table if not exists {SCHEMA}.contract_schema_snapshots (
        system varchar not null,
        stream varchar not null,
        columns json not null,
        accepted_at timestamptz not null,
        as_of_date date
    )""",
    f"""create table if not exists {SCHEMA}.contract_quarantine (
        system varchar not null,
        stream varchar not null,
        _airbyte_raw_id varchar not null,
        rule_id varchar not null,
        check_name varchar not null,
        column_name varchar,
        failing_value varchar,
        reason varchar not null,
        as_of_date date,
        quarantined_at timestamptz not null
    )""",
    f"""create table if not exists {SCHEMA}.contract_violations (
        as_of_date date,
        system varchar not null,
        stream varchar not null,
        level varchar not null,
        row_key varchar,
        order_id varchar,
        _airbyte_raw_id varchar,
        column_name varchar,
        rule_id varchar not null,
        expectation varchar not null,
        failing_value varchar,
        severity varchar not null,
        reason varchar not null,
        schema_snapshot json not null,
        detected_at timestamptz not null
    )""",
    f"""create or replace view {SCHEMA}.contract_quarantined_ids as
        select distinct system, stream, _airbyte_raw_id from {SCHEMA}.contract_quarantine""",
]


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the contract tables and view if missing."""
    for ddl in DDL:
        con.execute(ddl).fetchall()


def table_columns(con: duckdb.DuckDBPyConnection, system: str, stream: str) -> dict[str, str] | None:
    """``{column: DuckDB type}`` of ``raw_<system>.<stream>`` in column order; None when it does not exist."""
    rows = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [f"raw_{system}", stream],
    ).fetchall()
    return {name: dtype for name, dtype in rows} if rows else None


def last_snapshot(con: duckdb.DuckDBPyConnection, system: str, stream: str) -> dict[str, str] | None:
    """The last accepted ``{column: type}`` of the stream, or None before the first accepted run."""
    rows = con.execute(
        f"select columns from {SCHEMA}.contract_schema_snapshots where system = ? and stream = ? "
        "order by accepted_at desc limit 1",
        [system, stream],
    ).fetchall()
    return json.loads(rows[0][0]) if rows else None


def accept_snapshot(con: duckdb.DuckDBPyConnection, system: str, stream: str, columns: dict[str, str],
                    as_of_date: date | None, now: datetime) -> None:
    """Record ``columns`` as the accepted schema, unless it equals the last accepted one."""
    if last_snapshot(con, system, stream) == columns:
        return
    con.execute(
        f"insert into {SCHEMA}.contract_schema_snapshots values (?, ?, ?::json, ?, ?)",
        [system, stream, json.dumps(columns), now, as_of_date],
    ).fetchall()


def _hits_sql(batch: str, failing: str, rules: list[dict[str, Any]]) -> str:
    """The (row, rule, failing value) of every row breaking one of ``rules``.

    A rule with a ``flag`` reads the runner's table of failing rows (``failing``: the few rows that broke
    something, with one flag column per check), so no predicate is evaluated over the stream again. Any
    other rule's violation query runs as written, with ``{batch}`` bound to the batch.
    """
    parts = []
    for r in rules:
        if r.get("flag") is not None:
            parts.append(f"select cast(_airbyte_raw_id as varchar), {lit(r['rule_id'])}, "
                         f"cast({r['failing_value']} as varchar) from {failing} where {r['flag']}")
        else:
            violation = r["violation_sql"].format(batch=f"({batch}) as batch")
            parts.append(f"select cast(v._airbyte_raw_id as varchar), {lit(r['rule_id'])}, "
                         f"cast(v.failing_value as varchar) from ({violation}) as v")
    return ("select * from (" + " union all ".join(parts) + ") as hits(_airbyte_raw_id, rule_id, failing_value)"
            if parts else "select cast(null as varchar) as _airbyte_raw_id, cast(null as varchar) as rule_id, "
                          "cast(null as varchar) as failing_value where false")


def replace_quarantine(con: duckdb.DuckDBPyConnection, system: str, stream: str, table: str, batch: str,
                       hidden: str | None, failing: str, failed_rules: list[dict[str, Any]],
                       as_of_date: date | None, now: datetime) -> tuple[dict[str, int], int]:
    """Rebuild the stream's quarantine for the rows of ``batch`` from the failed row-level rules.

    Rows landed after the as-of day (``hidden``) keep the quarantine their own day's run gave them, so
    rerunning an earlier day neither drops nor adds them; every other row of the stream is re-decided.

    Args:
        con: an open connection (the caller owns the transaction).
        system: the system.
        stream: the stream.
        table: ``raw_<system>.<stream>``.
        batch: the ``select`` of the rows validated (the ``{batch}`` of each violation query).
        hidden: the predicate of the table's rows not visible as of the day (None: all are visible).
        failing: the runner's temp table of failing rows (see :func:`_hits_sql`).
        failed_rules: dicts with rule_id, check, column, description, violation_sql, and for the
            generated shape the ``flag`` column and ``failing_value`` (see ``rules.violation_parts``).
        as_of_date: the run's as-of day.
        now: the time stamped on the rows.

    Returns:
        (quarantined row count per rule id, distinct rows quarantined in the batch).
    """
    # A rerun keeps the time a row was first quarantined, so running a day twice changes nothing.
    con.execute(
        f"create or replace temp table _contract_quarantine_before as select _airbyte_raw_id, rule_id, "
        f"quarantined_at from {SCHEMA}.contract_quarantine where system = ? and stream = ?",
        [system, stream],
    ).fetchall()
    keep = "" if hidden is None else (
        f" and _airbyte_raw_id not in (select cast(_airbyte_raw_id as varchar) from {table} where {hidden})")
    con.execute(f"delete from {SCHEMA}.contract_quarantine where system = ? and stream = ?{keep}",
                [system, stream]).fetchall()
    con.execute(f"create or replace temp table _contract_hits as {_hits_sql(batch, failing, failed_rules)}").fetchall()
    counts: dict[str, int] = {}
    for rule in failed_rules:
        counts[rule["rule_id"]] = con.execute(
            f"insert into {SCHEMA}.contract_quarantine "
            "select ?, ?, _airbyte_raw_id, rule_id, ?, ?, failing_value, ?, ?, ? from _contract_hits where rule_id = ?",
            [system, stream, rule["check"], rule["column"], rule["description"], as_of_date, now, rule["rule_id"]],
        ).fetchall()[0][0]
    rows = con.execute("select count(distinct _airbyte_raw_id) from _contract_hits").fetchall()[0][0]
    con.execute(
        f"update {SCHEMA}.contract_quarantine as q set quarantined_at = b.quarantined_at "
        "from _contract_quarantine_before as b where q.system = ? and q.stream = ? "
        "and q._airbyte_raw_id = b._airbyte_raw_id and q.rule_id = b.rule_id",
        [system, stream],
    ).fetchall()
    con.execute("drop table _contract_quarantine_before").fetchall()
    con.execute("drop table _contract_hits").fetchall()
    return counts, int(rows)


def replace_violations(con: duckdb.DuckDBPyConnection, *, system: str, stream: str, batch: str,
                       as_of_date: date | None, row_key_sql: str, order_id_sql: str | None,
                       severities: dict[str, str], expectations: dict[str, str],
                       stream_level: list[dict[str, Any]], snapshot: dict[str, str], now: datetime) -> int:
    """Rewrite the stream's ``contract_violations`` for the as-of day from the quarantine of the rows
    of ``batch`` (those visible as of the day) and the stream-level failures. Returns the rows written."""
    # A rerun of the day keeps each violation's first detection time (running a day twice changes nothing).
    con.execute(
        f"create or replace temp table _contract_violations_before as select level, _airbyte_raw_id, rule_id, "
        f"detected_at from {SCHEMA}.contract_violations where as_of_date is not distinct from ? "
        "and system = ? and stream = ?",
        [as_of_date, system, stream],
    ).fetchall()
    con.execute(
        f"delete from {SCHEMA}.contract_violations where as_of_date is not distinct from ? "
        "and system = ? and stream = ?",
        [as_of_date, system, stream],
    ).fetchall()
    snap = json.dumps(snapshot)
    con.execute("create or replace temp table _contract_rule_meta (rule_id varchar, severity varchar, "
                "expectation varchar)").fetchall()
    for rule_id, severity in severities.items():
        con.execute("insert into _contract_rule_meta values (?, ?, ?)",
                    [rule_id, severity, expectations.get(rule_id, "")]).fetchall()
    order_expr = order_id_sql or "null"
    written = con.execute(
        f"""insert into {SCHEMA}.contract_violations
        select ?, q.system, q.stream, 'row', t.row_key, t.order_id, q._airbyte_raw_id, q.column_name,
               q.rule_id, coalesce(m.expectation, q.check_name), q.failing_value,
               coalesce(m.severity, 'warning'), q.reason, ?::json, ?
        from {SCHEMA}.contract_quarantine q
        join (select cast(_airbyte_raw_id as varchar) as raw_id, cast({row_key_sql} as varchar) as row_key,
                     cast({order_expr} as varchar) as order_id from ({batch}) as batch
              where cast(_airbyte_raw_id as varchar) in (
                  select _airbyte_raw_id from {SCHEMA}.contract_quarantine where system = ? and stream = ?)
             ) t on t.raw_id = q._airbyte_raw_id
        left join _contract_rule_meta m on m.rule_id = q.rule_id
        where q.system = ? and q.stream = ?""",
        [as_of_date, snap, now, system, stream, system, stream],
    ).fetchall()[0][0]
    for item in stream_level:
        con.execute(
            f"insert into {SCHEMA}.contract_violations values (?, ?, ?, 'stream', null, null, null, ?, ?, ?, ?, ?, ?, "
            "?::json, ?)",
            [as_of_date, system, stream, item.get("column"), item["rule_id"], item["expectation"],
             item.get("failing_value"), item["severity"], item["reason"], snap, now],
        ).fetchall()
    con.execute("drop table if exists _contract_rule_meta").fetchall()
    con.execute(
        f"update {SCHEMA}.contract_violations as v set detected_at = b.detected_at "
        "from _contract_violations_before as b where v.as_of_date is not distinct from ? and v.system = ? "
        "and v.stream = ? and v.level = b.level and v.rule_id = b.rule_id "
        "and v._airbyte_raw_id is not distinct from b._airbyte_raw_id",
        [as_of_date, system, stream],
    ).fetchall()
    con.execute("drop table _contract_violations_before").fetchall()
    return int(written) + len(stream_level)
