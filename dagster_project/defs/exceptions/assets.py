"""Exceptions: each day's diffs become owned, SLA'd exceptions with an audit trail."""


import datetime as dt
import json

import dagster as dg

from dagster_project.config.model import ReconConfig
from dagster_project.exceptions.contract_diffs import system_diffs
from dagster_project.exceptions.diffs import diffs_for, stale_systems
from dagster_project.exceptions.store import SCHEMA, sync_exceptions
from dagster_project.resources.duckdb_resource import DuckDBResource
from dagster_project.resources.partitions import daily_partitions


def build_defs(config: ReconConfig) -> dg.Definitions:
    @dg.asset(
        key=["exceptions"],
        group_name="exceptions",
        # Every mart it reads (routing reads the state of each order and its history).
        deps=[dg.AssetKey(["marts", name]) for name in
              ("fct_order_diffs", "fct_system_freshness", "fct_orders", "fct_order_state_history")],
        partitions_def=daily_partitions(config),
        kinds={"duckdb", "python"},
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
        owners=["team:revenue-ops"],
        metadata={"table": f"{SCHEMA}.exceptions", "events_table": f"{SCHEMA}.exception_events"},
    )
    def exceptions(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        """Open, update, reopen and auto-resolve exceptions from the day's diffs (idempotent, forward-only)."""
        as_of = dt.date.fromisoformat(context.partition_key)
        with duckdb.get_connection() as con:
            diffs = diffs_for(con, as_of) + system_diffs(con, as_of, config)
            stale = stale_systems(con, as_of)
            health = {d["system"]: json.loads(d["actual_value"])["reason"]
                      for d in diffs if d["diff_type"] == "stale_source"}
            stats = sync_exceptions(con, as_of, diffs, stale, config.roles, config=config)
            open_rows = con.execute(
                f"select count(*), coalesce(sum(amount_at_risk), 0) from {SCHEMA}.exceptions "
                "where status in ('open', 'acknowledged')"
            ).fetchall()[0]
        if stale:
            context.log.warning(f"stale systems as of {as_of}: {sorted(stale)}; their exceptions are held")
        for system, reason in sorted(health.items()):
            context.log.warning(f"source {system} as of {as_of}: {reason} (a stale_source exception is open)")
        return dg.MaterializeResult(
            metadata={
                **stats.as_metadata(),
                "as_of_date": str(as_of),
                "stale_systems": ", ".join(sorted(stale)) or "none",
                "source_warnings": "; ".join(f"{s}: {r}" for s, r in sorted(health.items())) or "none",
                "open_exceptions": int(open_rows[0]),
                "open_amount_at_risk": float(open_rows[1]),
            }
        )

    return dg.Definitions(assets=[exceptions])
