"""Dry run: what a rule or config change would do to the exceptions, without touching them.

``plan_exceptions`` runs the same planner as the nightly sync (``exceptions.store.plan_sync``) with
the same routing and SLAs, against the current exceptions, and returns the plan. It only reads;
it works on a read-only connection. ``recon run --date D --dry-run`` builds the day's diffs on a
scratch copy of the database and prints the plan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from dagster_project.exceptions.routing import Router, load_order_contexts
from dagster_project.exceptions.store import (
    PlannedChange,
    SyncStats,
    load_exceptions,
    load_stream_syncs,
    plan_sync,
    sla_hours_for,
)

if TYPE_CHECKING:
    from dagster_project.config.model import ReconConfig

_ACTIONS = ("open", "reopen", "update", "auto_resolve", "handover", "hold")
_LABELS = {"open": "would open", "reopen": "would reopen", "update": "would update",
           "auto_resolve": "would auto-resolve", "handover": "would hand over", "hold": "held (stale source)"}


@dataclass
class Plan:
    """The exceptions a day's diffs would open, reopen, update, resolve and hold."""

    as_of_date: dt.date
    stats: SyncStats
    changes: list[PlannedChange] = field(default_factory=list)

    def of(self, action: str) -> list[PlannedChange]:
        return [c for c in self.changes if c.action == action]

    @property
    def opened(self) -> list[PlannedChange]:
        return self.of("open")

    @property
    def updated(self) -> list[PlannedChange]:
        return self.of("update")

    @property
    def reopened(self) -> list[PlannedChange]:
        return self.of("reopen")

    @property
    def resolved(self) -> list[PlannedChange]:
        return self.of("auto_resolve")

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of_date": self.as_of_date.isoformat(),
            "counts": {a: len(self.of(a)) for a in _ACTIONS} | {"unchanged": self.stats.unchanged,
                                                                "skipped_older": self.stats.skipped_older},
            "changes": [c.as_dict() for c in self.changes],
        }

    def render(self, limit: int = 20) -> str:
        """Human-readable plan: counts, then up to ``limit`` exceptions per action."""
        lines = [f"Dry run as of {self.as_of_date}: nothing was written."]
        counts = ", ".join(f"{len(self.of(a))} {_LABELS[a].removeprefix('would ')}" for a in _ACTIONS)
        lines.append(f"  {counts}, {self.stats.unchanged} unchanged")
        for action in _ACTIONS:
            items = self.of(action)
            if not items:
                continue
            lines.append(f"\n{_LABELS[action]} ({len(items)}):")
            for c in items[:limit]:
                amount = f"{float(c.amount_at_risk):,.2f}" if c.amount_at_risk is not None else "-"
                lines.append(f"  {c.order_id:<14} {c.diff_type}@{c.system:<10} {c.severity or '-':<8} "
                             f"{amount:>12}  owner {c.owner}  {c.reason}")
            if len(items) > limit:
                lines.append(f"  ... {len(items) - limit} more (use --json for all)")
        return "\n".join(lines)


def plan_exceptions(con: duckdb.DuckDBPyConnection, as_of: dt.date, diffs: list[dict[str, Any]],
                    stale_systems: set[str], config: ReconConfig, now: dt.datetime | None = None) -> Plan:
    """What syncing ``diffs`` as of ``as_of`` would do to the exceptions, computed without writing.

    Args:
        con: a connection to the database holding the exceptions (read-only is fine).
        as_of: the as-of day.
        diffs: the day's diff rows as the (changed) rules produce them.
        stale_systems: systems stale as of the day.
        config: the (changed) config: routing, SLAs, roles.
        now: the clock for the plan's timestamps.

    Returns:
        The plan: opened, updated, reopened, auto-resolved, held and handed-over exceptions.
    """
    router = Router(config)
    contexts = load_order_contexts(con, config, as_of, [d["order_id"] for d in diffs])
    planned = plan_sync(load_exceptions(con), as_of, diffs, stale_systems, config.roles, router=router,
                        sla=sla_hours_for(config), contexts=contexts, stream_syncs=load_stream_syncs(con), now=now)
    return Plan(as_of_date=as_of, stats=planned.stats, changes=planned.changes)
