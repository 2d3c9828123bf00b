"""Ingestion: one asset per source stream, keyed raw/<system>/<stream>."""
# No `from __future__ import annotations`: Dagster inspects the real type of `context`.



import dagster as dg

from dagster_project.config.model import ReconConfig, SystemConfig
from dagster_project.resources.duckdb_resource import DuckDBResource
from dagster_project.resources.partitions import daily_partitions
from ingestion.connectors import stream_for
from ingestion.sync import FileDropStream, sync_stream

MAX_RETRIES = 2


def file_drop_stream(system_name: str, system: SystemConfig, stream_name: str) -> FileDropStream:
    """The connector's view of one configured file-drop stream."""
    return stream_for(system_name, system, stream_name)


def _stream_asset(config: ReconConfig, system_name: str, stream_name: str) -> dg.AssetsDefinition:
    system = config.systems[system_name]

    @dg.asset(
        key=["raw", system_name, stream_name],
        group_name="ingestion",
        partitions_def=daily_partitions(config),
        kinds={"duckdb", system.connector},
        owners=["team:data-engineering"],
        description=f"Lands {system_name}.{stream_name} ({system.role}) into DuckDB raw_{system_name}.{stream_name}. "
        + (system.description or ""),
        retry_policy=dg.RetryPolicy(max_retries=MAX_RETRIES, delay=5, backoff=dg.Backoff.EXPONENTIAL),
        check_specs=[
            dg.AssetCheckSpec(
                "sync_succeeded",
                asset=dg.AssetKey(["raw", system_name, stream_name]),
                description="The last sync of this stream succeeded. When it failed after every retry, the "
                "stream is materialized unchanged (so downstream runs and puts the system's orders ON_HOLD "
                "as stale) and this check fails with the error.",
            )
        ],
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
        metadata={"system": system_name, "role": system.role, "connector": system.connector},
    )
    def _land(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        """Sync the stream with its connector (data and state commit together)."""
        stream = stream_for(system_name, system, stream_name)
        check_key = dg.AssetKey(["raw", system_name, stream_name])
        try:
            with duckdb.get_connection() as con:
                result = sync_stream(con, stream)
        except Exception as e:
            if context.retry_number < MAX_RETRIES:
                raise  # retried by the retry policy
            # Out of retries: say so clearly, and let downstream run: with no fresh landing the
            # system is stale, so its orders go ON_HOLD instead of becoming "missing" exceptions.
            context.log.error(f"{system_name}.{stream_name}: sync failed after {MAX_RETRIES + 1} attempts: {e}")
            return dg.MaterializeResult(
                metadata={"sync_status": "FAILED", "error": str(e)[:2000], "connector": system.connector},
                check_results=[
                    dg.AssetCheckResult(
                        check_name="sync_succeeded",
                        asset_key=check_key,
                        passed=False,
                        severity=dg.AssetCheckSeverity.ERROR,
                        metadata={"error": str(e)[:2000]},
                        description=f"source system {system_name!r} is down or failing; its orders are ON_HOLD",
                    )
                ],
            )
        context.log.info(
            f"{system_name}.{stream_name}: {result.records_landed} landed, {result.records_quarantined} "
            f"quarantined, {result.records_with_errors} with type errors ({result.connector})"
        )
        return dg.MaterializeResult(
            metadata={
                "sync_status": result.status.upper(),
                "records_read": result.records_read,
                "records_landed": result.records_landed,
                "records_quarantined": result.records_quarantined,
                "records_with_errors": result.records_with_errors,
                "files_landed": result.files_landed,
                "files_seen": result.files_seen,
                "bytes": result.bytes,
                "seconds": float(result.seconds),
                "cursor": str(result.cursor) if result.cursor is not None else "",
                "newest_file_modified_at": str(result.newest_file_modified_at),
                "table": result.table,
                "sync_id": result.sync_id,
            },
            check_results=[
                dg.AssetCheckResult(check_name="sync_succeeded", asset_key=check_key, passed=True)
            ],
        )

    return _land


def build_ingestion_assets(config: ReconConfig) -> list[dg.AssetsDefinition]:
    """One landing asset per configured stream."""
    return [
        _stream_asset(config, system_name, stream_name)
        for system_name, system in sorted(config.systems.items())
        for stream_name in sorted(system.streams)
    ]


def build_defs(config: ReconConfig) -> dg.Definitions:
    return dg.Definitions(assets=build_ingestion_assets(config))
