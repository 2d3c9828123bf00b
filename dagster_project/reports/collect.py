"""Collect every figure of the daily report for one as-of day (:mod:`.data` for the day's orders and
exceptions, :mod:`.over_time` for the figures across days)."""

from __future__ import annotations

import datetime as dt

import duckdb

from dagster_project.config.model import ReconConfig
from dagster_project.lib.database import table_exists as _exists
from dagster_project.reports.data import (
    ReportData,
    ReportDataError,
    headline_figures,
    match_rates,
    order_lists,
)
from dagster_project.reports.over_time import changes, freshness, operating_metrics, trend


def collect(con: duckdb.DuckDBPyConnection, config: ReconConfig, as_of: dt.date) -> ReportData:
    """Read every figure of the report for ``as_of``, and the headline of the previous reconciled day.

    Args:
        con: an open DuckDB connection (read-only is enough).
        config: the project config (systems per role).
        as_of: the as-of day.

    Returns:
        The report's sections.

    Raises:
        ReportDataError: the marts are missing or the day was never reconciled.
    """
    for table in ("fct_order_state_history", "fct_order_diffs", "fct_reconciliation_daily"):
        if not _exists(con, "marts", table):
            raise ReportDataError(f"marts.{table} does not exist: run the nightly job first (recon run --date D)")
    built = con.execute("select count(*) from marts.fct_reconciliation_daily where as_of_date = ?",
                        [as_of]).fetchall()[0][0]
    if not built:
        raise ReportDataError(f"{as_of} has not been reconciled: run `recon run --date {as_of}` first")
    has_store = _exists(con, "recon", "exceptions") and _exists(con, "recon", "exception_events")
    roles = {r: s for r, s in config.roles.items()}
    previous_day = con.execute("select max(as_of_date) from marts.fct_reconciliation_daily where as_of_date < ?",
                               [as_of]).fetchall()[0][0]
    previous = None
    if previous_day is not None:
        previous = ReportData(as_of_date=previous_day, systems_by_role=roles, currencies=[])
        headline_figures(con, previous, has_store)
    data = ReportData(as_of_date=as_of, systems_by_role=roles, currencies=[], previous_date=previous_day)
    params = {"as_of": as_of}
    headline_figures(con, data, has_store)
    order_lists(con, data)
    match_rates(con, data, params)
    trend(con, data, params, has_store)
    operating_metrics(con, data, params, has_store)
    freshness(con, data, params)
    data.changes = changes(data, previous)
    if not has_store:
        data.notes.append("The exception store does not exist yet: every diff counts as an open exception.")
    con.execute("drop table if exists _report_orders")
    return data
