"""The daily reconciliation report as a partitioned asset, with its metrics as numeric metadata."""

import datetime as dt
from typing import Any

import dagster as dg

from dagster_project.config.model import ReconConfig
from dagster_project.reports import ReportResult, build_report
from dagster_project.reports.render import money, pct
from dagster_project.resources.duckdb_resource import DuckDBResource
from dagster_project.resources.partitions import daily_partitions

REPORT_ASSET_KEY = dg.AssetKey(["reconciliation_report"])
# The marts the report reads (dbt assets are keyed marts/<model>).
REPORT_MARTS = (
    "fct_orders", "fct_order_diffs", "fct_system_freshness", "fct_order_state_history", "fct_reconciliation_daily",
    "fct_exception_rates", "fct_money_at_risk", "fct_exception_resolution_metrics",
)
# Metrics published as numeric metadata (the asset's Plots tab charts them across partitions).
NUMERIC_METRICS = (
    "orders_in_scope", "orders_reconciled", "reconciled_rate", "diffs", "diffs_opened", "open_exceptions",
    "latency_p50_hours", "latency_p95_hours", "latency_p50_hours_30d", "latency_p95_hours_30d",
    "exception_rate_30d", "mttr_days_30d", "manual_intervention_rate_30d",
)


def report_metadata(result: ReportResult) -> dict[str, Any]:
    """Links to the files, a markdown preview, and every metric as a number."""
    data = result.data
    metadata: dict[str, Any] = {
        "as_of_date": str(result.as_of_date),
        "report_path": dg.MetadataValue.path(str(result.html)),
        "report_folder": dg.MetadataValue.path(str(result.folder)),
        "summary_json": dg.MetadataValue.path(str(result.json)),
        "tie_out_ok": dg.MetadataValue.bool(data.tie_out_ok),
        "preview": dg.MetadataValue.md(preview_markdown(result)),
    }
    for key in NUMERIC_METRICS:
        value = data.metrics.get(key)
        if value is not None:
            metadata[key] = dg.MetadataValue.float(float(value))
    for currency in data.currencies:
        amount = data.at_risk.get(currency, {}).get("amount", 0)
        metadata[f"money_at_risk_{currency}"] = dg.MetadataValue.float(float(amount))
    for r in data.match_rates:
        if r["match_rate"] is not None:
            metadata[f"match_rate_{r['left_role']}_{r['right_role']}"] = dg.MetadataValue.float(r["match_rate"])
    return metadata


def preview_markdown(result: ReportResult) -> str:
    """The report's headline in markdown (shown in the asset's materialization in the UI)."""
    data = result.data
    m = data.metrics
    lines = [f"**Reconciliation report {result.as_of_date}**, tie-out "
             f"{'sums exactly' if data.tie_out_ok else '**does not sum**'}. Open `{result.html}`.", "",
             "| currency | sold | paid | invoiced | fulfilled | reconciled | at risk |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for h in data.headline:
        c = h["currency"]
        risk = data.at_risk.get(c, {"amount": 0, "exceptions": 0})
        lines.append(f"| {c} | {money(h['sold'], c)} | {money(h['paid'], c)} | {money(h['invoiced'], c)} | "
                     f"{money(h['fulfilled'], c)} | {money(h['reconciled'], c)} | {money(risk['amount'], c)} "
                     f"({risk['exceptions']} exceptions) |")
    lines += ["", f"Orders reconciled {pct(m.get('reconciled_rate'))}; open exceptions {m.get('open_exceptions')}"
                  f" (oldest since {m.get('oldest_open_since') or '-'}); exception rate (30 d) "
              f"{pct(m.get('exception_rate_30d'))}; manual intervention (30 d) "
              f"{pct(m.get('manual_intervention_rate_30d'))}."]
    return "\n".join(lines)


def build_defs(config: ReconConfig) -> dg.Definitions:
    @dg.asset(
        key=REPORT_ASSET_KEY,
        group_name="reporting",
        deps=[dg.AssetKey(["exceptions"]), *(dg.AssetKey(["marts", name]) for name in REPORT_MARTS)],
        partitions_def=daily_partitions(config),
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
        kinds={"duckdb", "python"},
        owners=["team:revenue-ops"],
        metadata={"folder": str(config.state_dir / "reports")},
    )
    def reconciliation_report(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        """Daily reconciliation report for finance (tie-out, match rates, money at risk, trend) as HTML, CSV, XLSX, JSON."""
        as_of = dt.date.fromisoformat(context.partition_key)
        with duckdb.get_connection() as con:
            result = build_report(con, config, as_of)
        if not result.data.tie_out_ok:
            context.log.error(f"the tie-out of {as_of} does not sum: {result.json}")
        context.log.info(f"report of {as_of} written to {result.folder}")
        return dg.MaterializeResult(metadata=report_metadata(result))

    return dg.Definitions(assets=[reconciliation_report])
