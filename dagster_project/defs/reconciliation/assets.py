"""Reconciliation: the dbt models (staging, canonical orders, diffs) as Dagster assets."""


import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from dagster_project.config.model import ReconConfig
from dagster_project.dbt.dbt_project import AS_OF_DATE_ENV, get_dbt_project, set_dbt_env
from dagster_project.resources.partitions import daily_partitions
from dagster_project.warehouse import publish_sources, serve_results


class ReconDbtTranslator(DagsterDbtTranslator):
    """Sources map to the ingestion assets (source meta); every model is in the reconciliation group."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") == "source":
            return "ingestion"
        if "reporting" in (dbt_resource_props.get("fqn") or []):
            return "reporting"
        return "reconciliation"

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        # The model's documentation, as an analyst reads it; the SQL is one click away (the code
        # version and dbt docs), and its developer comments name repository files.
        return (dbt_resource_props.get("description") or "").strip() or super().get_description(dbt_resource_props)


class DbtRunConfig(dg.Config):
    """Switches for a reconciliation run."""

    full_refresh: bool = False


# The models that read the exception store run after the `exceptions` asset, in the night's second
# dbt step; every other model runs in the first, before it.
AFTER_EXCEPTIONS = "source:exception_store+"


def build_dbt_assets(recon_config: ReconConfig, *, after_exceptions: bool = False) -> dg.AssetsDefinition:
    """The dbt models as one multi-asset: the core models, or (``after_exceptions``) those that read the store."""
    project = get_dbt_project(recon_config)
    selection = {"select": AFTER_EXCEPTIONS} if after_exceptions else {"exclude": AFTER_EXCEPTIONS}

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        name="recon_dbt_after_exceptions" if after_exceptions else "recon_dbt_models",
        **selection,
        # One as-of day per run: days are reconciled in order, never as one range.
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
        partitions_def=daily_partitions(recon_config),
        dagster_dbt_translator=ReconDbtTranslator(
            settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
        ),
    )
    def recon_dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtRunConfig
    ) -> Iterator[Any]:
        """Build the dbt models of this step (staging, canonical orders, diffs; or the exception metrics) as of D."""
        as_of = context.partition_key
        set_dbt_env(recon_config)
        # The day travels in the environment, so --vars (and dbt's partial parse) stay the same every night.
        os.environ[AS_OF_DATE_ENV] = as_of
        # Unit tests check the rules' SQL in CI (tests/test_dbt_models.py), not on every night's data.
        args = ["build", "--vars", json.dumps(recon_config.dbt_vars(), sort_keys=True),
                "--exclude", "test_type:unit"]
        if config.full_refresh:
            args.append("--full-refresh")
        on_engine = recon_config.warehouse.engine != "duckdb"
        if on_engine:  # the step's sources onto the engine first (dagster_project.warehouse)
            published = publish_sources(recon_config, json.loads(project.manifest_path.read_text()),
                                        after_exceptions=after_exceptions)
            context.log.info("published to the warehouse: " + ", ".join(
                f"{p.schema}.{p.table} ({p.mode}, {p.rows} rows)" for p in published))
        invocation = dbt.cli(args, context=context)
        yield from invocation.stream()
        if on_engine:  # what the step built, back where the exceptions, reports and CLI read it
            served = serve_results(recon_config, invocation.manifest, invocation.get_artifact("run_results.json"),
                                   as_of)
            context.log.info(f"copied back from the warehouse: {len(served)} tables, "
                             f"{sum(s.rows for s in served)} rows")

    return recon_dbt_models


def build_defs(config: ReconConfig) -> dg.Definitions:
    return dg.Definitions(assets=[build_dbt_assets(config), build_dbt_assets(config, after_exceptions=True),
                                  *bookkeeping_specs(config)])


def bookkeeping_specs(config: ReconConfig) -> list[dg.AssetSpec]:
    """Tables written outside the asset graph's own steps that dbt models read, each with its producer.

    They are external assets (nothing materializes them as such): the lineage graph shows who writes
    them and which models read them, instead of reads with no upstream.
    """
    raw = [dg.AssetKey(["raw", system, stream]) for system, sc in sorted(config.systems.items())
           for stream in sorted(sc.streams)]
    return [
        dg.AssetSpec(["recon_meta", "landed_files"], deps=raw, group_name="ingestion", kinds={"duckdb"},
                     owners=["team:data-engineering"],
                     description="One row per file a connector landed; written by each ingestion asset."),
        dg.AssetSpec(["recon_meta", "contract_quarantined_ids"], deps=raw, group_name="ingestion",
                     kinds={"duckdb"}, owners=["team:data-engineering"],
                     description="Raw rows the contract checks quarantined; written by each ingestion asset's "
                                 "contract check, left out of staging."),
        dg.AssetSpec(["recon", "exception_events"], deps=[dg.AssetKey("exceptions")], group_name="exceptions",
                     kinds={"duckdb"}, owners=["team:revenue-ops"],
                     description="The exceptions' append-only event log; written by the exceptions asset, "
                                 "the escalation sensor and the owners' CLI."),
        dg.AssetSpec(["recon", "manual_matches"], group_name="exceptions", kinds={"duckdb"},
                     owners=["team:revenue-ops"],
                     description="Orphan records an owner linked to an order by hand; written by "
                                 "`recon exceptions match`, read by the role unions."),
    ]
