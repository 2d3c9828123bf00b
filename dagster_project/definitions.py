"""Assembles the Dagster definitions from each domain's ``build_defs``; nothing else lives here."""

from __future__ import annotations

import dagster as dg

from dagster_project.config.model import ReconConfig, load_config
from dagster_project.dbt.dbt_project import get_dbt_resource
from dagster_project.defs.contracts import checks as contract_checks
from dagster_project.defs.exceptions import assets as exception_assets
from dagster_project.defs.exceptions import sensors as exception_sensors
from dagster_project.defs.ingestion import assets as ingestion_assets
from dagster_project.defs.reconciliation import assets as reconciliation_assets
from dagster_project.defs.reconciliation import schedules as reconciliation_schedules
from dagster_project.defs.reporting import assets as reporting_assets
from dagster_project.defs.reporting import sensors as reporting_sensors
from dagster_project.resources.duckdb_resource import DuckDBResource


def build_definitions(config_path: str | None = None) -> dg.Definitions:
    """All definitions for one config file (defaults to $RECON_CONFIG or the demo config)."""
    return build_definitions_for(load_config(config_path))


def build_definitions_for(config: ReconConfig) -> dg.Definitions:
    """All definitions for an already loaded config."""
    return dg.Definitions.merge(
        ingestion_assets.build_defs(config),
        contract_checks.build_defs(config),
        reconciliation_assets.build_defs(config),
        exception_assets.build_defs(config),
        exception_sensors.build_defs(config),
        reporting_assets.build_defs(config),
        reporting_sensors.build_defs(config),
        reconciliation_schedules.build_defs(config),
        dg.Definitions(
            resources={
                "duckdb": DuckDBResource(database=str(config.duckdb_path), state_dir=str(config.state_dir),
                                         memory_limit=config.project.duckdb_memory_limit),
                "dbt": get_dbt_resource(config),
            },
            # One DuckDB file has one writer: run each step in the run's own process, in order.
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
