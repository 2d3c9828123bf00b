"""Turn the contract checks' violations of an as-of day into exception-ready diff rows.

A row that breaks its stream's contract is quarantined (left out of the reconciliation) and becomes a
``contract_violation`` exception owned by the owner of that source; a stream-level break (a missing
or retyped column) becomes one exception for the stream.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb

from dagster_project.lib.config import ReconConfig
from dagster_project.lib.duckdb_resource import table_exists


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
