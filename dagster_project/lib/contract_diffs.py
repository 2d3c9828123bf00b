"""System-level exceptions of an as-of day as exception-ready diff rows (the dbt diffs are per order).

- A row that breaks its stream's contract is quarantined (left out of the reconciliation) and becomes a
  ``contract_violation`` exception owned by the owner of that source; a stream-level break (a missing
  or retyped column) becomes one exception for the stream.
- A source that is stale as of the day, or whose landed rows are (almost) all invisible as of the day
  (``marts.fct_system_freshness.health_reason``), becomes one ``stale_source`` exception for the
  system, so "the pipeline is late" is an owned item and not an empty diff table.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb

from dagster_project.lib.config import ReconConfig
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
    for (system, stream, level, row_key, order_id, raw_id, column, _rule_id, expectation, failing, severity,
         reason, snapshot) in cursor.fetchall():
        subject = order_id if (level == "row" and order_id) else (
            f"<{system}.{stream}:{row_key}>" if level == "row" else f"<{system}.{stream}>")
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
    """Every system-level diff row of the day: contract violations and source health."""
    return contract_violation_diffs(con, as_of, config) + source_health_diffs(con, as_of, config)
