"""``recon report --date D [--out DIR] [--open]``: write the daily reconciliation report of a day."""

from __future__ import annotations

import datetime as dt
import webbrowser
from pathlib import Path

import click

from dagster_project.config.model import ConfigError, load_config


@click.command("report")
@click.option("--date", "date_", help="As-of day (YYYY-MM-DD; default: the latest reconciled day).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Reports root (default: <state_dir>/reports); the day's folder is created under it.")
@click.option("--open", "open_", is_flag=True, help="Open the HTML report in the browser.")
@click.pass_context
def report(ctx: click.Context, date_: str | None, out_dir: str | None, open_: bool) -> None:
    """Write the daily reconciliation report (HTML, CSV, XLSX, JSON summary) of a reconciled day."""
    from dagster_project.lib.database import connect
    from dagster_project.reports import ReportDataError, build_report

    try:
        cfg = load_config((ctx.obj or {}).get("config_path"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not cfg.duckdb_path.exists():
        raise click.ClickException(f"no database at {cfg.duckdb_path}: run `recon run --date D` or `recon demo` first")
    try:
        as_of = dt.date.fromisoformat(date_) if date_ else None
    except ValueError:
        raise click.BadParameter(f"expected a date as YYYY-MM-DD, got '{date_}'", param_hint="--date") from None
    con = connect(cfg.duckdb_path, read_only=True)
    try:
        if as_of is None:
            try:
                as_of = con.execute("select max(as_of_date) from marts.fct_reconciliation_daily").fetchall()[0][0]
            except Exception:  # noqa: BLE001 - any failure here means "nothing reconciled yet"
                as_of = None
            if as_of is None:
                raise click.ClickException("no reconciled day yet: run `recon run --date D` first")
        result = build_report(con, cfg, as_of, Path(out_dir) if out_dir else None)
    except ReportDataError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        con.close()
    data = result.data
    click.echo(f"Report of {as_of}: tie-out {'sums exactly' if data.tie_out_ok else 'DOES NOT SUM'}; "
               f"{data.metrics.get('open_exceptions', 0)} open exceptions.")
    for h in data.headline:
        click.echo(f"  {h['currency']:<8} sold {h['sold']:>14,.2f}  paid {h['paid']:>14,.2f}  "
                   f"invoiced {h['invoiced']:>14,.2f}  fulfilled {h['fulfilled']:>14,.2f}")
    if data.no_currency_orders or data.no_currency_exceptions:
        click.echo(f"  without a known currency (in no figure above): {len(data.no_currency_orders)} orders, "
                   f"{data.metrics.get('open_exceptions_without_currency', 0)} open exceptions")
    click.echo(f"  html: {result.html}\n  xlsx: {result.xlsx}\n  json: {result.json}\n  csv:  {result.folder}/*.csv")
    if open_:
        webbrowser.open(result.html.as_uri())
    if not data.tie_out_ok:
        raise click.ClickException("the tie-out does not sum; see summary.json (tie_out_checks)")
