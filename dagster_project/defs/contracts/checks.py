"""Contract checks: one blocking asset check per landed stream, its GX suite run as one SQL query on DuckDB."""

import datetime as dt
from pathlib import Path

import dagster as dg

from dagster_project.lib.config import ReconConfig
from dagster_project.lib.contracts.docs import results_root
from dagster_project.lib.contracts.runner import ContractResult, validate_stream
from dagster_project.lib.contracts.suites import expectations_dir_for
from dagster_project.lib.duckdb_resource import DuckDBResource

CHECK_NAME = "contract"


def check_result(result: ContractResult) -> dg.AssetCheckResult:
    """The Dagster verdict of one validation: ERROR (blocks downstream) or WARN, with its metadata."""
    metadata: dict[str, object] = {k: v for k, v in result.to_metadata().items() if v is not None}
    metadata["failing_expectations"] = dg.MetadataValue.json(metadata.get("failing_expectations", []))
    metadata["sample_failing_rows"] = dg.MetadataValue.json(metadata.get("sample_failing_rows", {}))
    metadata["messages"] = dg.MetadataValue.md("\n".join(f"- {m}" for m in result.messages()) or "all passed")
    metadata.pop("schema_drift", None)
    metadata["schema_drift"] = dg.MetadataValue.json([d.message(result.system, result.stream) for d in result.drift])
    if result.result_path is not None:
        metadata["validation_result"] = dg.MetadataValue.path(str(result.result_path))
        metadata["data_docs"] = f"recon contracts docs --run {result.result_path.parent.name}"
    for key in ("hint", "error"):
        if metadata.get(key) is None:
            metadata.pop(key, None)
    metadata["notes"] = dg.MetadataValue.json(result.notes)
    failed = not result.passed
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if result.blocking else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=describe(result),
    )


def describe(result: ContractResult) -> str | None:
    """The check's one-paragraph description: every problem (stream, column, cause), then what to run."""
    blocking = result.blocking_messages()
    others = [m for m in result.messages() if m not in blocking]
    parts = [m[:500] for m in blocking]
    if result.hint():
        parts.append(f"To fix: {result.hint()}")
    parts += [m[:300] for m in others]
    return "; ".join(parts)[:2000] or None


def _stream_check(config: ReconConfig, system: str, stream: str, expectations_dir: Path) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["raw", system, stream]),
        name=CHECK_NAME,
        blocking=True,
        description=f"Great Expectations contract {system}__{stream}__contract on raw_{system}.{stream} "
        "(one SQL query over the rows delivered by the as-of day): "
        "blocks on a missing/retyped mapped column or mostly-null keys; warns and quarantines bad rows.",
    )
    def _check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
        """Validate the landed stream against its contract suite; quarantine rows that break it."""
        # The check itself is not partitioned (partitioned checks are a Dagster preview feature): it
        # validates the whole landed table and takes the as-of day from the run's partition.
        partition = context.run.tags.get("dagster/partition")
        as_of = dt.date.fromisoformat(partition) if partition else None
        with duckdb.get_connection() as con:
            result = validate_stream(con, config, system, stream, as_of_date=as_of,
                                     expectations_dir=expectations_dir,
                                     results_dir=results_root(config) / context.run.run_id,
                                     run_name=context.run.run_id)
        for note in result.notes:
            context.log.info(note)
        log = context.log.error if result.blocking else context.log.warning
        for message in result.messages():
            log(message)
        if result.hint():
            log(f"{system}.{stream}: to fix: {result.hint()}")
        return check_result(result)

    return _check


def build_checks(config: ReconConfig, expectations_dir: Path | None = None) -> list[dg.AssetChecksDefinition]:
    """One ``contract`` check per configured stream, on the asset ``raw/<system>/<stream>``.

    Args:
        config: the project config.
        expectations_dir: the GX context with the suites (default: the config's own, see
            ``expectations_dir_for``).

    Returns:
        The checks.
    """
    expectations_dir = expectations_dir or expectations_dir_for(config)
    return [
        _stream_check(config, system, stream, expectations_dir)
        for system in sorted(config.systems)
        for stream in sorted(config.systems[system].streams)
    ]


def build_defs(config: ReconConfig, expectations_dir: Path | None = None) -> dg.Definitions:
    return dg.Definitions(asset_checks=build_checks(config, expectations_dir))
