"""The end-of-run summary: what was landed, what disagrees, what is open and where to look next."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb

from dagster_project.config.model import ReconConfig
from dagster_project.lib.database import table_exists as _exists
from dagster_project.lib.money import format_money


@dataclass
class Summary:
    as_of_date: dt.date | None
    rows_per_stream: list[tuple[str, str, int]] = field(default_factory=list)
    quarantined: int = 0
    contract_quarantined: int = 0
    contract_violations: int = 0
    orders: int = 0
    states: list[tuple[str, int]] = field(default_factory=list)
    diffs_per_type: list[tuple[str, int]] = field(default_factory=list)
    open_exceptions: int = 0
    exceptions_by_status: list[tuple[str, int]] = field(default_factory=list)
    money_at_risk: list[tuple[str, float]] = field(default_factory=list)
    stale_systems: list[str] = field(default_factory=list)
    source_warnings: list[tuple[str, str]] = field(default_factory=list)
    notifications: dict[str, int] = field(default_factory=dict)  # outbox messages per status
    notifications_failing: int = 0  # pending messages whose last attempt failed (or whose variable is unset)
    notification_errors: list[tuple[str, str, int]] = field(default_factory=list)  # channel, error, messages

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of_date": str(self.as_of_date) if self.as_of_date else None,
            "rows_per_stream": [{"system": s, "stream": t, "rows": n} for s, t, n in self.rows_per_stream],
            "quarantined": self.quarantined,
            "contract_quarantined": self.contract_quarantined,
            "contract_violations": self.contract_violations,
            "orders": self.orders,
            "states": dict(self.states),
            "diffs_per_type": dict(self.diffs_per_type),
            "open_exceptions": self.open_exceptions,
            "exceptions_by_status": dict(self.exceptions_by_status),
            "money_at_risk": dict(self.money_at_risk),
            "stale_systems": self.stale_systems,
            "source_warnings": [{"system": s, "reason": r} for s, r in self.source_warnings],
            "notifications": self.notifications,
            "notifications_failing": self.notifications_failing,
            "notification_errors": [{"channel": c, "error": e, "messages": n} for c, e, n in self.notification_errors],
        }


def build_summary(con: duckdb.DuckDBPyConnection, config: ReconConfig, as_of: dt.date | None = None) -> Summary:
    """Collect the summary from the database (read-only queries).

    Args:
        con: a connection to the project's DuckDB file.
        config: the config (which systems and streams exist).
        as_of: the day to describe; defaults to the latest day in the diff history.
    """
    summary = Summary(as_of_date=as_of)
    for system_name, system in sorted(config.systems.items()):
        for stream in sorted(system.streams):
            rows = 0
            if _exists(con, f"raw_{system_name}", stream):
                rows = con.execute(f'select count(*) from "raw_{system_name}"."{stream}"').fetchall()[0][0]
            summary.rows_per_stream.append((system_name, stream, int(rows)))
    if _exists(con, "recon_meta", "quarantine"):
        # A rejected file is one quarantine row standing for its rows (``records``, newer databases).
        has_records = con.execute("select count(*) from duckdb_columns() where schema_name = 'recon_meta' "
                                  "and table_name = 'quarantine' and column_name = 'records'").fetchall()[0][0]
        counted = "coalesce(sum(coalesce(records, 1)), 0)" if has_records else "count(*)"
        summary.quarantined = int(con.execute(f"select {counted} from recon_meta.quarantine").fetchall()[0][0])
    if _exists(con, "recon_meta", "contract_quarantine"):
        summary.contract_quarantined = int(con.execute(
            "select count(distinct (system, stream, _airbyte_raw_id)) from recon_meta.contract_quarantine"
        ).fetchall()[0][0])
    if _exists(con, "marts", "fct_order_diffs"):
        if summary.as_of_date is None:
            summary.as_of_date = con.execute("select max(as_of_date) from marts.fct_order_diffs").fetchall()[0][0]
        summary.diffs_per_type = [
            (t, int(n)) for t, n in con.execute(
                "select diff_type, count(*) from marts.fct_order_diffs where as_of_date = ? "
                "group by 1 order by 2 desc, 1", [summary.as_of_date]).fetchall()
        ]
    if _exists(con, "marts", "fct_orders"):
        summary.orders = int(con.execute("select count(*) from marts.fct_orders").fetchall()[0][0])
        summary.states = [(s, int(n)) for s, n in con.execute(
            "select state, count(*) from marts.fct_orders group by 1 order by 2 desc, 1").fetchall()]
    if _exists(con, "marts", "fct_system_freshness") and summary.as_of_date is not None:
        summary.stale_systems = [r[0] for r in con.execute(
            "select system from marts.fct_system_freshness where as_of_date = ? and is_stale order by 1",
            [summary.as_of_date]).fetchall()]
        summary.source_warnings = [(s, r) for s, r in con.execute(
            "select system, health_reason from marts.fct_system_freshness "
            "where as_of_date = ? and health_reason is not null order by 1", [summary.as_of_date]).fetchall()]
    if _exists(con, "recon", "exceptions"):
        summary.exceptions_by_status = [(s, int(n)) for s, n in con.execute(
            "select status, count(*) from recon.exceptions group by 1 order by 2 desc, 1").fetchall()]
        summary.open_exceptions = sum(n for s, n in summary.exceptions_by_status if s in ("open", "acknowledged"))
        summary.money_at_risk = [(c, float(a)) for c, a in con.execute(
            "select currency, sum(amount_at_risk) from recon.exceptions "
            "where status in ('open', 'acknowledged') and currency is not null "
            "group by 1 order by 2 desc").fetchall()]
        summary.contract_violations = int(con.execute(
            "select count(*) from recon.exceptions where diff_type = 'contract_violation' "
            "and status in ('open', 'acknowledged')").fetchall()[0][0])
    if _exists(con, "recon", "notification_outbox"):
        summary.notifications = {s: int(n) for s, n in con.execute(
            "select status, count(*) from recon.notification_outbox group by 1 order by 1").fetchall()}
        summary.notification_errors = [(c, e, int(n)) for c, e, n in con.execute(
            "select channel, last_error, count(*) from recon.notification_outbox "
            "where status in ('pending', 'dead') and last_error is not null group by all order by 1, 2").fetchall()]
        summary.notifications_failing = int(con.execute(
            "select count(*) from recon.notification_outbox where status = 'pending' and last_error is not null"
        ).fetchall()[0][0])
    return summary


def render_summary(summary: Summary, config: ReconConfig) -> str:
    """Human-readable summary with the next steps."""
    lines = [f"Reconciliation as of {summary.as_of_date}", ""]
    if summary.source_warnings:
        lines.append("Sources that need attention (each has a stale_source exception):")
        for system, reason in summary.source_warnings:
            lines.append(f"  {system}: {reason}")
        lines.append("")
    lines.append("Landed rows per source stream:")
    for system, stream, rows in summary.rows_per_stream:
        role = config.systems[system].role
        lines.append(f"  {system + '.' + stream:<22} {role:<13} {rows:>10,}")
    lines.append(f"  unreadable rows quarantined by the connectors: {summary.quarantined:,}")
    lines.append(f"  rows quarantined by the contract checks:       {summary.contract_quarantined:,}"
                 f"  (open contract_violation exceptions: {summary.contract_violations:,};"
                 " recon exceptions list --type contract_violation)")
    lines.append("")
    lines.append(f"Canonical orders: {summary.orders:,}")
    for state, n in summary.states:
        lines.append(f"  {state:<12} {n:>10,}")
    lines.append("")
    total = sum(n for _, n in summary.diffs_per_type)
    lines.append(f"Diffs as of {summary.as_of_date}: {total:,}")
    for diff_type, n in summary.diffs_per_type:
        lines.append(f"  {diff_type:<22} {n:>8,}")
    if summary.stale_systems:
        lines.append(f"  (held, stale systems: {', '.join(summary.stale_systems)})")
    lines.append("")
    status = ", ".join(f"{s} {n:,}" for s, n in summary.exceptions_by_status) or "none"
    lines.append(f"Exceptions open: {summary.open_exceptions:,}  ({status})")
    risk = ", ".join(format_money(a, c) for c, a in summary.money_at_risk) or "0"
    lines.append(f"Money at risk (open exceptions): {risk}")
    if summary.notifications:
        counts = summary.notifications
        lines.append(f"Notifications: sent {counts.get('sent', 0):,}, failing {summary.notifications_failing:,}, "
                     f"dead {counts.get('dead', 0):,}, waiting {counts.get('pending', 0) + counts.get('queued', 0):,}")
        for channel, error, n in summary.notification_errors:
            lines.append(f"  {channel}: {error} ({n:,} message(s))")
        if summary.notification_errors:
            lines.append("  recon sql \"select channel, status, attempts, next_attempt_at, last_error "
                         "from recon.notification_outbox where last_error is not null\"")
    lines.append("")
    lines.append(f"DuckDB file: {config.duckdb_path}")
    lines.append("Start exploring:")
    lines.append("  recon sql \"select diff_type, system, count(*) as diffs, sum(amount_at_risk) as at_risk")
    lines.append(f"             from marts.fct_order_diffs where as_of_date = '{summary.as_of_date}'")
    lines.append("             group by all order by diffs desc\"")
    lines.append("  recon sql \"select * from marts.fct_orders where state = 'ON_HOLD' limit 20\"")
    lines.append("Open the Dagster UI (runs, asset graph, backfills): make ui   (then http://127.0.0.1:3000)")
    return "\n".join(lines)
