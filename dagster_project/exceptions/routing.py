"""Routing: who owns an exception, for how long, and who it escalates to (DESIGN.md section 6).

An exception gets its owner when it opens (or reopens). The first rule that applies wins:

1. ``routing.rules``: explicit rules from the config (diff type, system, role, state, severity,
   customer segment, minimum amount).
2. Billing: any discrepancy about a system of ``routing.billing_roles`` goes to
   ``routing.billing_owner`` at once.
3. Last writer: the system that last wrote the order owns resolution for ``routing.last_writer_hours``
   after that write; then the exception is handed over to the owner the next rules pick.
4. Diff type: ``owners.orphan_record_by_role`` for orphans, else ``owners.by_diff_type``.
5. State: ``owners.by_state`` for the order's canonical state.
6. dbt: the owner (``meta.dagster.owners``) of the dbt model that produced the diff (``routing.use_dbt_meta_owners``).
7. ``owners.fallback``.

Routing is a pure function of the diff, the order's context and a clock, so reruns and dry runs
route the same way. The nightly sync routes at the end of the as-of day (``cutoff(D)``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from dagster_project.config.exceptions import EscalationStep

if TYPE_CHECKING:
    from dagster_project.config.model import ReconConfig

DIFF_MODEL = "fct_order_diffs"
# Roles whose staged rows carry an order_id (customers are keyed by customer).
ORDER_ROLES = ("orders", "payments", "invoices", "fulfillments")


@dataclass(frozen=True)
class OrderContext:
    """What routing needs to know about an order as of a day."""

    order_id: str
    state: str | None = None
    segment: str | None = None
    last_writer_system: str | None = None
    last_written_at: dt.datetime | None = None


@dataclass(frozen=True)
class Route:
    """An owner and why; ``owner_until`` bounds a temporary owner, then ``next_owner`` takes over."""

    owner: str
    rule: str
    owner_until: dt.datetime | None = None
    next_owner: str | None = None
    next_rule: str | None = None


def cutoff(as_of: dt.date) -> dt.datetime:
    """The end of the as-of day (exclusive), naive UTC."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())


class Router:
    """Routes diffs to owners from the config; without a config, keeps the owner dbt computed."""

    def __init__(self, config: ReconConfig | None = None, dbt_owners: dict[str, str] | None = None) -> None:
        self.config = config
        if dbt_owners is None and config is not None and config.routing.use_dbt_meta_owners:
            dbt_owners = dbt_meta_owners(config)
        self.dbt_owners = dbt_owners or {}

    def route(self, diff: dict[str, Any], context: OrderContext | None, at: dt.datetime) -> Route:
        """The owner of an exception made from ``diff`` at time ``at`` (naive UTC).

        Args:
            diff: a row of ``marts.fct_order_diffs`` (needs diff_type, system, role, severity,
                amount_at_risk; owner is used when there is no config).
            context: the order's state, segment and last writer, when known.
            at: the routing time; the nightly sync uses the end of the as-of day.

        Returns:
            The route: owner, the rule that chose it, and a hand-over when the owner is temporary.
        """
        if self.config is None:
            return Route(owner=diff.get("owner") or "data-engineering", rule="diff_owner")
        routing = self.config.routing
        for rule in routing.rules:
            if _matches(rule, diff, context):
                return Route(owner=rule.owner, rule=f"rule:{rule.name}")
        role = diff.get("role") or self._role_of(diff.get("system"))
        if routing.billing_owner and role in routing.billing_roles:
            return Route(owner=routing.billing_owner, rule="billing")
        if (
            routing.last_writer_hours > 0
            and context is not None
            and context.last_writer_system
            and context.last_written_at is not None
        ):
            until = _naive(context.last_written_at) + dt.timedelta(hours=routing.last_writer_hours)
            owner = self.system_owner(context.last_writer_system)
            if owner and at < until:
                after = self._steady(diff, context)
                return Route(owner=owner, rule=f"last_writer:{context.last_writer_system}", owner_until=until,
                             next_owner=after.owner, next_rule=after.rule)
        return self._steady(diff, context)

    def _steady(self, diff: dict[str, Any], context: OrderContext | None) -> Route:
        owners = self.config.owners  # type: ignore[union-attr]
        role = diff.get("role") or self._role_of(diff.get("system"))
        diff_type = diff.get("diff_type")
        if diff_type == "orphan_record" and role in owners.orphan_record_by_role:
            return Route(owner=owners.orphan_record_by_role[role], rule="orphan_role")
        if diff_type in owners.by_diff_type:
            return Route(owner=owners.by_diff_type[diff_type], rule="diff_type")
        if context is not None and context.state in owners.by_state:
            return Route(owner=owners.by_state[context.state], rule="state")
        model_owner = self.dbt_owners.get(diff.get("dbt_model") or DIFF_MODEL)
        if model_owner:
            return Route(owner=model_owner, rule="dbt_meta")
        return Route(owner=owners.fallback, rule="fallback")

    def system_owner(self, system: str) -> str | None:
        """Owner of a source system: routing.system_owners, else the orphan owner of its role."""
        assert self.config is not None
        if system in self.config.routing.system_owners:
            return self.config.routing.system_owners[system]
        role = self._role_of(system)
        return self.config.owners.orphan_record_by_role.get(role) if role else None

    def _role_of(self, system: str | None) -> str | None:
        if self.config is None or not system:
            return None
        first = system.split("+")[0]
        spec = self.config.systems.get(first)
        return spec.role if spec else None

    def escalation_chain(self, owner: str) -> list[EscalationStep]:
        """The escalation steps for an exception whose (pre-escalation) owner is ``owner``."""
        if self.config is None:
            return []
        chains = self.config.routing.escalation
        return list(chains.by_owner.get(owner, chains.default))


def _matches(rule: Any, diff: dict[str, Any], context: OrderContext | None) -> bool:
    checks = [
        (rule.diff_types, diff.get("diff_type")),
        (rule.systems, diff.get("system")),
        (rule.roles, diff.get("role")),
        (rule.severities, diff.get("severity")),
        (rule.states, context.state if context else None),
        (rule.segments, context.segment if context else None),
    ]
    if any(allowed and value not in allowed for allowed, value in checks):
        return False
    if rule.min_amount is not None:
        amount = diff.get("amount_at_risk")
        if amount is None or float(amount) < rule.min_amount:
            return False
    return True


def _naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def dbt_meta_owners(config: ReconConfig) -> dict[str, str]:
    """The owner of each dbt model, from the manifest dbt wrote for this config (empty if none).

    The first of dagster-dbt's ``meta.dagster.owners`` (the owners the Dagster UI shows), without the
    ``team:`` prefix: ``["team:revenue-ops"]`` routes to ``revenue-ops``.
    """
    manifest = config.state_dir / "dbt" / "target" / "manifest.json"
    if not manifest.is_file():
        return {}
    return dict(_read_owners(str(manifest), manifest.stat().st_mtime_ns))


@lru_cache(maxsize=4)
def _read_owners(path: str, _mtime: int) -> tuple[tuple[str, str], ...]:
    try:
        nodes = json.loads(Path(path).read_text()).get("nodes", {})
    except (OSError, ValueError):
        return ()
    out = []
    for node in nodes.values():
        if node.get("resource_type") != "model":
            continue
        meta = {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}
        owners = (meta.get("dagster") or {}).get("owners") or []
        owner = owners[0] if isinstance(owners, list) and owners else None
        if isinstance(owner, str) and owner:
            out.append((node["name"], owner.removeprefix("team:")))
    return tuple(sorted(out))


# ---- the order's context ------------------------------------------------------------------------


def relation_columns(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> list[str] | None:
    """Columns of a table or view, or None when it does not exist."""
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, name],
    ).fetchall()
    return [r[0] for r in rows] or None


def staged_relations(con: duckdb.DuckDBPyConnection, config: ReconConfig | None,
                     roles: tuple[str, ...] = ORDER_ROLES) -> list[tuple[str, str, str, str, list[str]]]:
    """The existing staging relations of the configured systems: (system, role, stream, name, columns)."""
    if config is None:
        return []
    out = []
    for system, spec in sorted(config.systems.items()):
        if spec.role not in roles:
            continue
        for stream in sorted(spec.streams):
            name = f"stg_{system}__{stream}"
            columns = relation_columns(con, "staging", name)
            if columns:
                out.append((system, spec.role, stream, name, columns))
    return out


def load_order_contexts(con: duckdb.DuckDBPyConnection, config: ReconConfig | None, as_of: dt.date,
                        order_ids: list[str]) -> dict[str, OrderContext]:
    """State, segment and last writer of each order as of a day, read from the marts and staging.

    The last writer is the system whose visible staged row of the order has the greatest
    ``updated_at`` as of the day. Missing tables are skipped (the context is then partial).
    """
    if not order_ids or config is None:
        return {}
    ids = sorted(set(order_ids))
    state: dict[str, tuple[str | None, str | None]] = {}
    if relation_columns(con, "marts", "fct_orders"):
        for order_id, st, segment in con.execute(
            "select order_id, state, customer_segment from marts.fct_orders "
            "where as_of_date = ? and order_id in (select unnest(?::varchar[]))",
            [as_of, ids],
        ).fetchall():
            state[order_id] = (st, segment)
    if relation_columns(con, "marts", "fct_order_state_history"):
        missing = [i for i in ids if i not in state]
        if missing:
            for order_id, st, segment in con.execute(
                "select order_id, state, customer_segment from ("
                " select *, row_number() over (partition by order_id order by as_of_date desc) as rn"
                " from marts.fct_order_state_history"
                " where as_of_date <= ? and order_id in (select unnest(?::varchar[]))) where rn = 1",
                [as_of, missing],
            ).fetchall():
                state[order_id] = (st, segment)
    writers: dict[str, tuple[str, dt.datetime]] = {}
    parts, params = [], []
    end = cutoff(as_of)
    for system, _role, _stream, name, columns in staged_relations(con, config):
        if "order_id" not in columns or "updated_at" not in columns:
            continue
        visible = "updated_at < ?" + (" and (available_at is null or available_at < ?)"
                                      if "available_at" in columns else "")
        parts.append(f'select order_id, ? as system, cast(updated_at as timestamp) as updated_at '
                     f'from staging."{name}" where order_id in (select unnest(?::varchar[])) and {visible}')
        params += [system, ids, end] + ([end] if "available_at" in columns else [])
    if parts:
        sql = ("select order_id, system, updated_at from (select *, row_number() over "
               "(partition by order_id order by updated_at desc, system desc) as rn from ("
               + " union all ".join(parts) + ")) where rn = 1")
        for order_id, system, updated_at in con.execute(sql, params).fetchall():
            writers[order_id] = (system, updated_at)
    out = {}
    for order_id in ids:
        st, segment = state.get(order_id, (None, None))
        system, written = writers.get(order_id, (None, None))
        out[order_id] = OrderContext(order_id, st, segment, system, written)
    return out
