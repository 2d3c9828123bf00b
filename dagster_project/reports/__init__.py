"""The daily reconciliation report (DESIGN.md section 9) and its metrics (section 8).

:func:`build_report` reads one as-of day from DuckDB (:mod:`.data`), renders a self-contained HTML page
with inline SVG charts (:mod:`.render`), and writes CSV per section, an XLSX workbook and a JSON summary
into ``<state_dir>/reports/<YYYY-MM-DD>/`` (:mod:`.writers`). The Dagster asset ``reconciliation_report``
and ``recon report --date D`` both call it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_project.config.model import ReconConfig
from dagster_project.reports.collect import collect
from dagster_project.reports.data import ReportData, ReportDataError
from dagster_project.reports.render import render_html
from dagster_project.reports.writers import summary, write_csvs, write_json, write_text, write_xlsx

__all__ = ["ReportData", "ReportDataError", "ReportResult", "build_report", "collect", "render_html",
           "report_dir", "summary"]


@dataclass
class ReportResult:
    """Where the report went and its headline figures."""

    as_of_date: dt.date
    folder: Path
    html: Path
    json: Path
    xlsx: Path
    csvs: list[Path]
    data: ReportData
    summary: dict[str, Any] = field(default_factory=dict)


def report_dir(config: ReconConfig, as_of: dt.date, out: Path | None = None) -> Path:
    """The dated folder of a day's report: ``<out or state_dir/reports>/<YYYY-MM-DD>/``."""
    return (out or config.state_dir / "reports").expanduser().resolve() / as_of.isoformat()


def build_report(con: Any, config: ReconConfig, as_of: dt.date, out: Path | None = None,
                 generated_at: dt.datetime | None = None) -> ReportResult:
    """Collect, render and write the report of one as-of day (rewriting the day's folder).

    Args:
        con: an open DuckDB connection to the reconciliation database.
        config: the project config.
        as_of: the as-of day.
        out: the reports root (default ``<state_dir>/reports``); the day's folder is created under it.
        generated_at: the time stamped in the HTML footer and the JSON (None: now, UTC).

    Returns:
        The written files and the collected data.

    Raises:
        ReportDataError: the day has not been reconciled.
    """
    data = collect(con, config, as_of)
    folder = report_dir(config, as_of, out)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (generated_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)).strftime("%Y-%m-%d %H:%M:%S")
    rows = config.report.workbook_rows
    html_path = write_text(folder / "report.html", render_html(data, generated_at=stamp, workbook_rows=rows))
    csvs = write_csvs(data, folder)
    xlsx = write_xlsx(data, folder / "report.xlsx", rows)
    files = {"html": "report.html", "xlsx": "report.xlsx", "csv": sorted(p.name for p in csvs)}
    json_path = write_json(data, folder / "summary.json", {"generated_at": stamp, "files": files})
    return ReportResult(as_of, folder, html_path, json_path, xlsx, csvs, data, summary(data))
