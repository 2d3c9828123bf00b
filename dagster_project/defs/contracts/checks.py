"""Contract checks: two asset checks per landed stream from one validation (its GX suite as one SQL query).

``contract`` is **blocking**: it fails, with ERROR severity, only when going on would be meaningless
(a mapped column missing or retyped, mostly-null keys, a suite or table missing), and then Dagster
skips everything downstream. ``contract_rows`` is **non-blocking**: it fails with WARN severity when
rows break the row-level rules; those rows are quarantined and the run goes on. Two checks because
the Dagster UI (1.13) prints "This is a blocking asset check" from the check's declaration and
"Failed" beside it for any failed result: one blocking check that warned read as a blocked run.
Both come from one ``@multi_asset_check`` step, so the stream is validated once.
"""

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_project.config.model import ReconConfig
from dagster_project.contracts.docs import results_root
from dagster_project.contracts.runner import ContractResult, validate_stream
from dagster_project.contracts.suites import expectations_dir_for
from dagster_project.resources.duckdb_resource import DuckDBResource

CHECK_NAME = "contract"
ROWS_CHECK_NAME = "contract_rows"


def _common(result: ContractResult, meta: dict[str, Any]) -> dict[str, object]:
    """Metadata both checks show: what was validated, and where the full result is."""
    metadata: dict[str, object] = {k: meta[k] for k in
                                   ("suite", "table", "as_of_date", "row_count", "expectations", "seconds")
                                   if meta[k] is not None}
    if result.result_path is not None:
        metadata["validation_result"] = dg.MetadataValue.path(str(result.result_path))
        metadata["data_docs"] = f"recon contracts docs --run {result.result_path.parent.name}"
    metadata["notes"] = dg.MetadataValue.json(result.notes)
    return metadata


def _expectations(meta: dict[str, Any], blocking: bool) -> list[dict[str, object]]:
    return [e for e in meta["failing_expectations"] if e["blocking"] is blocking]


def check_results(result: ContractResult) -> list[dg.AssetCheckResult]:
    """The two Dagster verdicts of one validation: ``contract`` (ERROR, blocks) and ``contract_rows`` (WARN).

    A validation that could not run fails both: the blocking one with the cause, the rows one saying
    its rules were not run (a check that could not run never passes).
    """
    key = dg.AssetKey(["raw", result.system, result.stream])
    blocking = result.blocking_messages()
    warnings = [m for m in result.messages() if m not in blocking]
    hint = result.hint()
    meta = result.to_metadata()
    contract = {**_common(result, meta),
                "failed_blocking": meta["failed_blocking"],
                "failing_expectations": dg.MetadataValue.json(_expectations(meta, True)),
                "schema_drift": dg.MetadataValue.json([d.message(result.system, result.stream) for d in result.drift]),
                "messages": dg.MetadataValue.md("\n".join(f"- {m}" for m in blocking) or "nothing blocks"),
                **({"hint": hint} if hint else {}), **({"error": result.error} if result.error else {})}
    row_failures = _expectations(meta, False)
    rows_passed = result.error is None and not row_failures
    rows = {**_common(result, meta),
            "quarantined_rows": result.quarantined_rows,
            "failing_expectations": dg.MetadataValue.json(row_failures),
            "sample_failing_rows": dg.MetadataValue.json(result.samples),
            "messages": dg.MetadataValue.md("\n".join(f"- {m}" for m in warnings) or "all passed")}
    if result.error:
        rows_text = f"not run: {result.error} (see the contract check)"
    elif row_failures:
        rows_text = (f"{result.quarantined_rows} row(s) quarantined, the run goes on: "
                     + "; ".join(m[:300] for m in warnings))[:2000]
    else:
        rows_text = None
    return [
        dg.AssetCheckResult(asset_key=key, check_name=CHECK_NAME, passed=not result.blocking,
                            severity=dg.AssetCheckSeverity.ERROR, metadata=contract,
                            description=describe(result)),
        dg.AssetCheckResult(asset_key=key, check_name=ROWS_CHECK_NAME, passed=rows_passed,
                            severity=dg.AssetCheckSeverity.WARN, metadata=rows, description=rows_text),
    ]


def describe(result: ContractResult) -> str | None:
    """The blocking check's description: every blocking problem (stream, column, cause), then what to run."""
    parts = [m[:500] for m in result.blocking_messages()]
    if result.hint():
        parts.append(f"To fix: {result.hint()}")
    return "; ".join(parts)[:2000] or None


def _stream_checks(config: ReconConfig, system: str, stream: str, expectations_dir: Path) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(["raw", system, stream])
    suite = f"{system}__{stream}__contract"

    @dg.multi_asset_check(
        name=f"{system}__{stream}__contract_checks",
        specs=[
            dg.AssetCheckSpec(CHECK_NAME, asset=key, blocking=True, description=(
                f"Great Expectations contract {suite} on raw_{system}.{stream}, its blocking rules: a mapped "
                "column missing or retyped, mostly-null keys, or a suite or table missing fail it and stop "
                "everything downstream.")),
            dg.AssetCheckSpec(ROWS_CHECK_NAME, asset=key, blocking=False, description=(
                f"Great Expectations contract {suite} on raw_{system}.{stream}, its row rules: rows that break "
                "them are quarantined (exceptions of type contract_violation) and the run goes on; a failure "
                "is a warning.")),
        ],
        description=f"Validate raw_{system}.{stream} against {suite} (one SQL query over the rows delivered "
                    "by the as-of day).",
    )
    def _check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource):
        """Validate the landed stream against its contract suite; quarantine rows that break it."""
        # The checks are not partitioned (partitioned checks are a Dagster preview feature): they
        # validate the whole landed table and take the as-of day from the run's partition.
        partition = context.run.tags.get("dagster/partition")
        as_of = dt.date.fromisoformat(partition) if partition else None
        with duckdb.get_connection() as con:
            result = validate_stream(con, config, system, stream, as_of_date=as_of,
                                     expectations_dir=expectations_dir,
                                     results_dir=results_root(config) / context.run.run_id,
                                     run_name=context.run.run_id)
        for note in result.notes:
            context.log.info(note)
        blocking = set(result.blocking_messages())
        for message in result.messages():
            (context.log.error if message in blocking else context.log.warning)(message)
        if result.hint():
            context.log.error(f"{system}.{stream}: to fix: {result.hint()}")
        yield from check_results(result)

    return _check


def build_checks(config: ReconConfig, expectations_dir: Path | None = None) -> list[dg.AssetChecksDefinition]:
    """The ``contract`` and ``contract_rows`` checks of each configured stream, on ``raw/<system>/<stream>``.

    Args:
        config: the project config.
        expectations_dir: the GX context with the suites (default: the config's own, see
            ``expectations_dir_for``).

    Returns:
        The checks.
    """
    expectations_dir = expectations_dir or expectations_dir_for(config)
    return [
        _stream_checks(config, system, stream, expectations_dir)
        for system in sorted(config.systems)
        for stream in sorted(config.systems[system].streams)
    ]


def build_defs(config: ReconConfig, expectations_dir: Path | None = None) -> dg.Definitions:
    return dg.Definitions(asset_checks=build_checks(config, expectations_dir))
