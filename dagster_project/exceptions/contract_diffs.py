"""System-level exceptions of an as-of day as exception-ready diff rows (the dbt diffs are per order).

- A row that breaks its stream's contract is quarantined (left out of the reconciliation) and becomes a
  ``contract_violation`` exception owned by the owner of that source; a stream-level break (a missing
  or retyped column) becomes one exception for the stream. A row without a key is its own exception,
  named by its file and position, so a second one is never absorbed into the first.
- Input the landing quarantined (``recon_meta.quarantine``: malformed lines, invalid encoding, wrong
  column counts, values that do not fit the stream's types, rejected and unreadable files) becomes
  one ``contract_violation`` exception per file and reason, with the count, for the file's delivery
  in force as of the day: a corrected re-export of the file resolves it.
- A source that is stale as of the day, or whose landed rows are (almost) all invisible as of the day
  (``marts.fct_system_freshness.health_reason``), becomes one ``stale_source`` exception for the
  system, so "the pipeline is late" is an owned item and not an empty diff table.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.config.model import ReconConfig
from dagster_project.exceptions.routing import cutoff
from dagster_project.lib.database import table_exists


def contract_violation_diffs(con: duckdb.DuckDBPyConnection, as_of: dt.date, config: ReconConfig) -> list[dict[str, Any]]:
    """One diff row per (order or stream, system) with the day's contract violations.

    Args:
        con: the reconciliation database.
        as_of: the as-of day.
        config: for the owner of contract violations.

    Returns:
        Rows shaped like ``marts.fct_order_diffs`` with diff_type ``contract_violation``.
    """
    if not table_exists(con, "recon_meta", "contract_violations"):
        return []
    cursor = con.execute(
        """
        select system, stream, level, row_key, order_id, _airbyte_raw_id, column_name, rule_id,
               expectation, failing_value, severity, reason, cast(schema_snapshot as varchar)
        from recon_meta.contract_violations
        where as_of_date = ?
        order by system, stream, level, row_key, column_name, rule_id
        """,
        [as_of],
    )
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    owner = config.owners.by_diff_type.get("contract_violation", config.owners.fallback)
    violations = cursor.fetchall()
    keyless = _keyless_rows(con, config, violations)
    for (system, stream, level, row_key, order_id, raw_id, column, _rule_id, expectation, failing, severity,
         reason, snapshot) in violations:
        if level == "row" and order_id:
            subject = order_id
        elif level == "row" and not (row_key or "").strip("|") and raw_id in keyless:
            subject = f"<{system}.{stream}: no key, {keyless[raw_id]}>"
        else:
            subject = f"<{system}.{stream}:{row_key}>" if level == "row" else f"<{system}.{stream}>"
        entry = grouped.setdefault((subject, system), {
            "order_id": subject, "customer_id": None, "diff_type": "contract_violation", "system": system,
            "severity": "high", "owner": owner, "amount_at_risk": 0, "currency": None,
            "systems_involved": system, "rule": "contract", "first_seen_date": as_of,
            "reproduce_command": f"recon contracts check --system {system}",
            "_failures": [], "_raw_ids": [], "_snapshot": snapshot, "_stream": stream,
        })
        entry["_failures"].append(f"{stream}.{column or '*'}: {expectation} ({reason})")
        entry["_values"] = [*entry.get("_values", []), f"{column}={failing}"]
        if raw_id:
            entry["_raw_ids"].append(raw_id)
        if severity in ("error", "critical", "blocking"):
            entry["severity"] = "critical"
    rows = []
    for entry in grouped.values():
        failures, raw_ids = entry.pop("_failures"), sorted(set(entry.pop("_raw_ids")))
        values, stream, snapshot = entry.pop("_values", []), entry.pop("_stream"), entry.pop("_snapshot")
        entry["expected_value"] = "; ".join(sorted(set(failures)))[:2000]
        entry["actual_value"] = json.dumps({"values": sorted(set(values))[:20], "schema": json.loads(snapshot or "{}")},
                                           sort_keys=True, default=str)[:4000]
        ids = ", ".join(f"'{r}'" for r in raw_ids[:50])
        entry["reproduce_sql"] = (
            f'select * from "raw_{entry["system"]}"."{stream}" where _airbyte_raw_id in ({ids})' if ids
            else f"select * from recon_meta.contract_violations where as_of_date = '{as_of}' "
                 f"and system = '{entry['system']}' and stream = '{stream}'")
        rows.append(entry)
    return rows


def _relative(config: ReconConfig, system: str, path: str) -> str:
    """A landed file's path relative to its system's folder (the full path if it is elsewhere)."""
    root = getattr(config.systems.get(system), "path", None) if config is not None else None
    if root and not path.startswith("sync://"):
        try:
            return str(Path(path).relative_to(Path(root).expanduser().resolve()))
        except ValueError:
            pass
    return path


def _keyless_rows(con: duckdb.DuckDBPyConnection, config: ReconConfig, violations: list[tuple]) -> dict[str, str]:
    """For each violating row without a key: ``<file> record <n>`` (its file and position in it)."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for system, stream, level, row_key, order_id, raw_id, *_ in violations:
        if level == "row" and not order_id and not (row_key or "").strip("|") and raw_id:
            wanted.setdefault((system, stream), set()).add(raw_id)
    out: dict[str, str] = {}
    for (system, stream), ids in wanted.items():
        if not table_exists(con, f"raw_{system}", stream):
            continue
        got = con.execute(
            f'select _airbyte_raw_id, _ab_source_file_url from "raw_{system}"."{stream}" '
            "where list_contains(?, _airbyte_raw_id)", [sorted(ids)]).fetchall()
        for raw_id, url in got:
            position = int(raw_id.rsplit("-", 1)[-1]) + 1 if raw_id.rsplit("-", 1)[-1].isdigit() else raw_id
            out[raw_id] = f"{_relative(config, system, url or '?')} record {position}"
    return out


def _reason_class(reason: str) -> str:
    """What a quarantine reason is about, without its per-line details: one exception each."""
    head = reason.split(":", 1)[0].strip()
    return re.sub(r"\s+", " ", head)[:120] or "quarantined"


def landing_quarantine_diffs(con: duckdb.DuckDBPyConnection, as_of: dt.date,
                             config: ReconConfig) -> list[dict[str, Any]]:
    """One ``contract_violation`` diff row per (file, reason) the landing quarantined input for.

    Only the delivery of each file in force as of the day counts (the newest modification time up to
    the end of the day); for a record connector (``sync://<id>``), the stream's newest sync. The row
    names the file, the reason, how many input rows were not landed and their first lines.
    """
    if not table_exists(con, "recon_meta", "quarantine"):
        return []
    columns = {r[0] for r in con.execute(
        "select column_name from duckdb_columns() where schema_name = 'recon_meta' and table_name = 'quarantine'"
    ).fetchall()}
    records = "coalesce(q.records, 1)" if "records" in columns else "1"
    column_name = "q.column_name" if "column_name" in columns else "null"
    landed = ("select system, stream, file_path, file_modified_at, sync_id from recon_meta.landed_files union all "
              if table_exists(con, "recon_meta", "landed_files") else "")
    end = cutoff(as_of).replace(tzinfo=dt.UTC)
    found = con.execute(
        f"""
        with deliveries as (
            {landed}select system, stream, file_path, file_modified_at, sync_id from recon_meta.quarantine
        ), keyed as (
            select *, case when file_path like 'sync://%' then 'sync://' else file_path end as delivery
            from deliveries where file_path is not null and file_modified_at < ?
        ), current as (
            select system, stream, delivery, arg_max(sync_id, (file_modified_at, sync_id)) as sync_id
            from keyed group by all
        )
        select q.system, q.stream, q.file_path, q.reason, q.line_number, {column_name}, {records}, q.sync_id
        from recon_meta.quarantine q
        join current c on c.system = q.system and c.stream = q.stream and c.sync_id = q.sync_id
            and c.delivery = case when q.file_path like 'sync://%' then 'sync://' else q.file_path end
        order by q.system, q.stream, q.file_path, q.line_number nulls first
        """,
        [end],
    ).fetchall()
    owner = config.owners.by_diff_type.get("contract_violation", config.owners.fallback)
    grouped: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for system, stream, path, reason, line, column, count, sync_id in found:
        kind = _reason_class(reason)
        where = _relative(config, system, path)
        entry = grouped.setdefault((system, stream, path, kind), {
            "system": system, "stream": stream, "file": where, "path": path, "sync_id": sync_id, "reason": kind,
            "rows": 0, "lines": [], "columns": set(), "samples": [],
        })
        entry["rows"] += int(count)
        if line is not None and len(entry["lines"]) < 20:
            entry["lines"].append(int(line))
        if column:
            entry["columns"].add(column)
        if len(entry["samples"]) < 5:
            entry["samples"].append(reason[:300])
    rows = []
    for (system, stream, path, kind), e in grouped.items():
        quoted_path = path.replace("'", "''")
        rows.append({
            "order_id": f"<{system}.{stream}: {e['file']}: {kind}>", "customer_id": None,
            "diff_type": "contract_violation", "system": system, "severity": "high", "owner": owner,
            "amount_at_risk": 0, "currency": None, "systems_involved": system, "rule": "landing quarantine",
            "first_seen_date": as_of,
            "expected_value": f"every input row of {e['file']} lands in raw_{system}.{stream}",
            "actual_value": json.dumps({"file": e["file"], "reason": kind, "rows_not_landed": e["rows"],
                                        "lines": e["lines"], "columns": sorted(e["columns"]),
                                        "samples": e["samples"]}, sort_keys=True)[:4000],
            "reproduce_sql": (f"select * from recon_meta.quarantine where system = '{system}' and stream = "
                              f"'{stream}' and file_path = '{quoted_path}' and sync_id = {int(e['sync_id'])}"),
            "reproduce_command": f"recon contracts check --system {system}",
        })
    return rows


def source_health_diffs(con: duckdb.DuckDBPyConnection, as_of: dt.date, config: ReconConfig) -> list[dict[str, Any]]:
    """One ``stale_source`` diff row per system that needs attention as of the day.

    Args:
        con: the reconciliation database.
        as_of: the as-of day.
        config: for the owner (owners.by_diff_type.stale_source, else the role's orphan owner, else the fallback).

    Returns:
        Rows shaped like ``marts.fct_order_diffs``; the subject is ``<system>``.
    """
    if not table_exists(con, "marts", "fct_system_freshness"):
        return []
    rows = con.execute(
        "select system, role, health_reason, landed_rows, visible_rows, cast(last_seen_at as varchar) "
        "from marts.fct_system_freshness where as_of_date = ? and health_reason is not null order by system",
        [as_of],
    ).fetchall()
    out = []
    for system, role, reason, landed, visible, last_seen in rows:
        owner = (config.owners.by_diff_type.get("stale_source")
                 or config.owners.orphan_record_by_role.get(role) or config.owners.fallback)
        out.append({
            "order_id": f"<{system}>", "customer_id": None, "diff_type": "stale_source", "system": system,
            "severity": "high", "owner": owner, "amount_at_risk": 0, "currency": None, "systems_involved": system,
            "rule": "source health", "first_seen_date": as_of,
            "expected_value": "fresh rows visible as of the day",
            "actual_value": json.dumps({"reason": reason, "landed_rows": int(landed), "visible_rows": int(visible),
                                        "last_seen_at": last_seen}, sort_keys=True),
            "reproduce_sql": (f"select * from marts.fct_system_freshness where system = '{system}' "
                              f"and as_of_date = date '{as_of}'"),
            "reproduce_command": f"recon config validate --data --date {as_of}",
        })
    return out


def system_diffs(con: duckdb.DuckDBPyConnection, as_of: dt.date, config: ReconConfig) -> list[dict[str, Any]]:
    """Every system-level diff row of the day: contract violations, landing quarantines, source health."""
    return (contract_violation_diffs(con, as_of, config) + landing_quarantine_diffs(con, as_of, config)
            + source_health_diffs(con, as_of, config))
