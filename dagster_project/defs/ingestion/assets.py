"""Ingestion: one asset per source stream, keyed raw/<system>/<stream>."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dagster_project.lib.config import ReconConfig, SystemConfig
from dagster_project.lib.duckdb_resource import DuckDBResource
from dagster_project.lib.partitions import daily_partitions
from ingestion.sync import FileDropStream, sync_stream


def file_drop_stream(system_name: str, system: SystemConfig, stream_name: str) -> FileDropStream:
    """The connector's view of one configured stream."""
    stream = system.streams[stream_name]
    return FileDropStream(
        system=system_name,
        stream=stream_name,
        path=Path(system.path).expanduser().resolve(),
        glob=stream.glob,
        format=stream.format,
        primary_key=list(stream.primary_key),
        cursor_field=stream.cursor_field,
        csv_delimiter=stream.csv_delimiter,
    )


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
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
        metadata={"system": system_name, "role": system.role, "connector": system.connector},
    )
    def _land(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        """Land every new file of the stream (incremental by file; data and state commit together)."""
        with duckdb.get_connection() as con:
            result = sync_stream(con, file_drop_stream(system_name, system, stream_name))
        context.log.info(
            f"{system_name}.{stream_name}: {result.records_landed} landed, {result.records_quarantined} "
            f"quarantined from {result.files_landed} new file(s)"
        )
        return dg.MaterializeResult(
            metadata={
                "records_read": result.records_read,
                "records_landed": result.records_landed,
                "records_quarantined": result.records_quarantined,
                "files_landed": result.files_landed,
                "files_seen": result.files_seen,
                "bytes": result.bytes,
                "seconds": float(result.seconds),
                "newest_file_modified_at": str(result.newest_file_modified_at),
                "table": result.table,
            }
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
