"""The ``recon`` command line: demo data, nightly runs through Dagster, the UI, and queries."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

import click

from dagster_project.config.model import (
    DEMO_CONFIG_PATH,
    ConfigError,
    ReconConfig,
    load_config,
    resolve_config_path,
)

DEFAULT_DEMO_ORDERS = 5000
DEFAULT_DEMO_DAYS = 7
DEFAULT_DEMO_SEED = 7


def _load(ctx: click.Context, run_checks: bool = True) -> ReconConfig:
    """The config; read commands pass ``run_checks=False``: none of the runs' checks, no partition end."""
    path = ctx.obj["config_path"]
    try:
        config = load_config(path, run_checks=run_checks)
        if (run_checks and config.project.end_date is None
                and Path(path).resolve() == DEMO_CONFIG_PATH.resolve()):
            end = _demo_end_date(config)
            if end is not None:  # the demo's partitions end with its data (the UI inherits the variable)
                os.environ["RECON_END_DATE"] = end
                config = load_config(path)
        return config
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _demo_end_date(config: ReconConfig) -> str | None:
    """The last day of the generated demo data (its manifest), if there is any."""
    try:
        return json.loads((_demo_data_dir(config) / "manifest.json").read_text())["end_date"]
    except (OSError, ValueError, KeyError):
        return None


def _date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date as YYYY-MM-DD, got '{value}'", param_hint=name) from None


class _DomainCommands(click.Group):
    """The root group; each domain's commands load from their module on first use.

    ``recon exceptions list`` then imports the exceptions CLI only, not the report renderer (Jinja)
    or the contract suites; ``recon --help`` loads them all to print their one-line help.
    """

    lazy: dict[str, str] = {
        "contracts": "dagster_project.cli.contracts:contracts",
        "exceptions": "dagster_project.cli.exceptions:exceptions",
        "order": "dagster_project.cli.exceptions:order",
        "report": "dagster_project.cli.reports:report",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy:
            import importlib

            module, _, attr = self.lazy[name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)


@click.group(cls=_DomainCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="RECON_CONFIG", type=click.Path(dir_okay=False),
              help="Project config (YAML). Default: $RECON_CONFIG, else the demo config.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Order reconciliation: find every order whose state disagrees across systems, every night."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = str(resolve_config_path(config_path))


# ---- config -------------------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Inspect and validate the project config."""


@config.command("validate")
@click.option("--data", is_flag=True,
              help="Also land every stream into a scratch database, run its contract and the staging models, "
                   "and preview what it would give (nothing of yours is written).")
@click.option("--date", "date_", help="As-of day of the --data preview (YYYY-MM-DD; default: today).")
@click.pass_context
def config_validate(ctx: click.Context, data: bool, date_: str | None) -> None:
    """Validate the config file and print what it declares: systems, each role's fields, suites."""
    from dagster_project.cli.onboarding.describe import check_buildable, describe_config

    cfg = _load(ctx)
    try:
        check_buildable(cfg)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{cfg.source_file}: ok")
    click.echo(describe_config(cfg))
    if date_ is not None and not data:
        raise click.UsageError("--date goes with --data")
    if not data:
        return
    from dagster_project.cli.onboarding.preview import preview_config

    as_of = _date(date_, "--date") or dt.date.today()
    result = preview_config(cfg, as_of, echo=click.echo)
    click.echo(result.render())
    if result.blocking:
        ctx.exit(1)


@cli.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The config file to write.")
@click.option("--system", "systems", multiple=True, metavar="NAME:ROLE:FOLDER",
              help="A source system: its name, role and the folder its exports are dropped in (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def init(out: Path, systems: tuple[str, ...], force: bool) -> None:
    """Write a commented starting config for your systems, guessed from the files in their folders."""
    from dagster_project.cli.onboarding.scaffold import ScaffoldError, scaffold
    from ingestion.catalogue import ROLE_FIELDS

    if out.exists() and not force:
        raise click.ClickException(f"{out} exists; choose another --out or pass --force")
    try:
        text, found = scaffold(list(systems), out)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}")
    for system in found:
        for stream in system.streams:
            required = [n for n, (_, req) in ROLE_FIELDS[system.role].items() if req]
            todo = [n for n in required if n not in stream.fields and n != "kind"]
            click.echo(f"  {system.name}.{stream.name} ({system.role}, {stream.format}, {stream.files} file(s)): "
                       f"{len(required) - len(todo)} of {len(required)} required field(s) guessed"
                       + (f"; TODO: {', '.join(todo)}" if todo else ""))
    try:
        load_config(out)
    except ConfigError as exc:
        click.echo(f"not valid yet (fill in the TODOs):\n{exc}")
    else:
        click.echo("it validates; check the guesses and the TODO comments")
    click.echo(f"next: recon --config {out} config validate --data --date YYYY-MM-DD")


# ---- demo ---------------------------------------------------------------------------------------


def _demo_data_dir(cfg: ReconConfig) -> Path:
    paths = [Path(s.path).expanduser().resolve() for s in cfg.systems.values()]
    return Path(os.path.commonpath(paths)) if len(paths) > 1 else paths[0].parent


@cli.command("demo-data")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: the demo config's data folder).")
@click.option("--orders", type=int, default=DEFAULT_DEMO_ORDERS, show_default=True)
@click.option("--days", type=int, default=DEFAULT_DEMO_DAYS, show_default=True)
@click.option("--seed", type=int, default=DEFAULT_DEMO_SEED, show_default=True)
@click.option("--start", "start", help="First day (YYYY-MM-DD). Default: the config's start_date.")
@click.option("--rate", "rates", multiple=True, metavar="DIFF_TYPE=RATE",
              help="Injection rate per diff type, e.g. --rate missing_invoice=0.02 (repeatable).")
@click.option("--no-outage", is_flag=True, help="Do not simulate a missing ERP export day.")
@click.option("--snapshots", is_flag=True,
              help="Deliver every system as a nightly full snapshot (each day's file holds every record).")
@click.pass_context
def demo_data(ctx: click.Context, out_dir: str | None, orders: int, days: int, seed: int, start: str | None,
              rates: tuple[str, ...], no_outage: bool, snapshots: bool = False) -> None:
    """Write five systems' exports (native shapes) with injected problems and a ground truth."""
    from ingestion.demo.generator import generate

    cfg = _load(ctx)
    out = Path(out_dir).resolve() if out_dir else _demo_data_dir(cfg)
    injection: dict[str, float] = {}
    for item in rates:
        name, _, value = item.partition("=")
        try:
            injection[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"expected DIFF_TYPE=RATE, got '{item}'", param_hint="--rate") from None
    try:
        summary = generate(out, orders=orders, days=days, seed=seed,
                           start_date=_date(start, "--start") or cfg.project.start_date,
                           rules=cfg.rules.model_dump(mode="json", by_alias=True),
                           injection_rates=injection or None, outage=not no_outage,
                           delivery="snapshot" if snapshots else "daily")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(_describe_generation(summary))


def _describe_generation(summary) -> str:
    rows = ", ".join(f"{name} {n:,}" for name, n in sorted(summary.rows.items()))
    stale = ", ".join(f"{system} on {day}" for system, day in summary.stale) or "none"
    return "\n".join([
        f"wrote demo data to {summary.out_dir}",
        f"  {summary.start_date} .. {summary.end_date}: {summary.orders:,} orders, {summary.customers:,} customers",
        f"  rows: {rows}",
        f"  injected problems: {sum(summary.injected.values()):,} across {len(summary.injected)} diff types"
        f" (ground truth: {summary.out_dir / 'ground_truth.csv'})",
        f"  look-alikes that must not show: {sum(summary.lookalikes.values()):,}",
        f"  contract breaks: {summary.contract_breaks} ({summary.out_dir / 'contract_breaks.csv'})",
        f"  stale source days (ON_HOLD): {stale}",
    ])


@cli.command()
@click.option("--orders", type=int, default=DEFAULT_DEMO_ORDERS, show_default=True)
@click.option("--days", type=int, default=DEFAULT_DEMO_DAYS, show_default=True)
@click.option("--seed", type=int, default=DEFAULT_DEMO_SEED, show_default=True)
@click.option("--fresh", is_flag=True, help="Delete the demo database and data first.")
@click.pass_context
def demo(ctx: click.Context, orders: int, days: int, seed: int, fresh: bool) -> None:
    """Generate demo data if absent, run every demo day through Dagster, print a summary."""
    import shutil
    import time

    from dagster_project.runs.runner import days_between, run_days

    cfg = _load(ctx)
    data_dir = _demo_data_dir(cfg)
    if fresh:
        shutil.rmtree(data_dir, ignore_errors=True)
        for path in (cfg.duckdb_path, cfg.duckdb_path.with_suffix(".duckdb.wal")):
            path.unlink(missing_ok=True)
    manifest = data_dir / "manifest.json"
    if not manifest.exists():
        click.echo(f"Generating demo data ({orders:,} orders over {days} days, seed {seed}) in {data_dir} ...")
        ctx.invoke(demo_data, out_dir=str(data_dir), orders=orders, days=days, seed=seed, start=None,
                   rates=(), no_outage=False)
    meta = json.loads(manifest.read_text())
    os.environ["RECON_END_DATE"] = meta["end_date"]  # the partitions end with the data just generated
    cfg = _load(ctx)
    first = dt.date.fromisoformat(meta["start_date"])
    last = dt.date.fromisoformat(meta["end_date"])
    click.echo(f"Running the nightly reconciliation through Dagster for {first} .. {last}:")
    started = time.perf_counter()
    results = run_days(cfg, days_between(first, last), echo=click.echo, command="recon demo")
    if not all(r.success for r in results):
        raise click.ClickException("a run failed; see the error above and the run in the Dagster UI (make ui)")
    click.echo(f"All {len(results)} days ran in {time.perf_counter() - started:.0f}s.\n")
    _print_summary(cfg, last)


# ---- runs ---------------------------------------------------------------------------------------


@cli.command()
@click.option("--date", "date_", required=True, help="As-of day (YYYY-MM-DD).")
@click.option("--to", "to", help="Last as-of day of a range (inclusive); days run in order.")
@click.option("--dry-run", is_flag=True,
              help="Show which exceptions this config would open, update and resolve, without touching them.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: the plan as JSON.")
@click.option("--wait", is_flag=True, help="If another run of this config is in progress, wait for it (default: fail).")
@click.pass_context
def run(ctx: click.Context, date_: str, to: str | None, dry_run: bool, as_json: bool, wait: bool) -> None:
    """Run the nightly job for a day or a range, through Dagster (recorded in the Dagster instance)."""
    from dagster_project.runs.runner import days_between, dry_run_day, run_days

    cfg = _load(ctx)
    first = _date(date_, "--date")
    last = _date(to, "--to") or first
    if dry_run:
        if last != first:
            raise click.UsageError("--dry-run plans one day: drop --to")
        try:
            plan = dry_run_day(cfg, first, echo=(lambda *_: None) if as_json else click.echo)
        except (ValueError, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(json.dumps(plan.as_dict(), indent=2, default=str) if as_json else plan.render())
        return
    try:
        days = days_between(first, last)
        results = run_days(cfg, days, echo=click.echo, wait=wait)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not all(r.success for r in results):
        raise click.ClickException("a run failed; see the error above")
    _print_summary(cfg, last)


def _print_summary(cfg: ReconConfig, as_of: dt.date) -> None:
    from dagster_project.lib.database import connect
    from dagster_project.reports.run_summary import build_summary, render_summary

    con = connect(cfg.duckdb_path, read_only=True)
    try:
        click.echo(render_summary(build_summary(con, cfg, as_of), cfg))
    finally:
        con.close()


@cli.command()
@click.option("--date", "date_", help="As-of day (default: the latest reconciled day).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def summary(ctx: click.Context, date_: str | None, as_json: bool) -> None:
    """Print the reconciliation summary for a day."""
    from dagster_project.lib.database import connect
    from dagster_project.reports.run_summary import build_summary, render_summary

    cfg = _load(ctx, run_checks=False)
    if not cfg.duckdb_path.exists():
        raise click.ClickException(f"no database at {cfg.duckdb_path}: run `recon run --date D` or `recon demo` first")
    con = connect(cfg.duckdb_path, read_only=True)
    try:
        result = build_summary(con, cfg, _date(date_, "--date"))
    finally:
        con.close()
    click.echo(json.dumps(result.as_dict(), indent=2, default=str) if as_json else render_summary(result, cfg))


@cli.command()
@click.argument("query")
@click.option("--limit", type=int, default=50, show_default=True, help="Rows to print.")
@click.option("--json", "as_json", is_flag=True, help="Print every row as a JSON array of objects (no limit).")
@click.pass_context
def sql(ctx: click.Context, query: str, limit: int, as_json: bool = False) -> None:
    """Run a read-only SQL query against the reconciliation database and print the result."""
    import duckdb

    from dagster_project.lib.database import connect

    cfg = _load(ctx, run_checks=False)
    if not cfg.duckdb_path.exists():
        raise click.ClickException(f"no database at {cfg.duckdb_path}")
    con = connect(cfg.duckdb_path, read_only=True)
    try:
        cursor = con.execute(query)
        names = [d[0] for d in cursor.description] if cursor.description else []
        rows = cursor.fetchall() if names else []
    except duckdb.Error as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        con.close()
    if as_json:
        click.echo(json.dumps([dict(zip(names, row, strict=True)) for row in rows], default=str))
        return
    click.echo(_text_table(names, rows[:limit]))
    if len(rows) > limit:
        click.echo(f"... {len(rows) - limit:,} more rows (use --limit)")


def _text_table(names: list[str], rows: list[tuple]) -> str:
    """Columns aligned under their names; numbers right-aligned, NULL as an empty cell."""
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    numeric = [bool(rows) and all(isinstance(r[i], int | float | Decimal) or r[i] is None for r in rows)
               for i in range(len(names))]

    def line(values: list[str]) -> str:
        cells = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))
        return "  ".join(cells).rstrip()

    return "\n".join([line(list(names)), *(line(r) for r in cells)])


@cli.command()
@click.option("--serve", is_flag=True, help="Serve the docs site on 127.0.0.1 after generating it.")
@click.option("--port", type=int, default=8080, show_default=True)
@click.pass_context
def docs(ctx: click.Context, serve: bool, port: int) -> None:
    """Generate dbt docs (every model and column described, with lineage) for analysts."""
    import subprocess

    from dagster_project.dbt.dbt_project import dbt_target_dir, get_dbt_project, set_dbt_env

    cfg = _load(ctx)
    if not cfg.duckdb_path.exists():
        raise click.ClickException(f"no database at {cfg.duckdb_path}: run `recon demo` or `recon run` first")
    project_dir = str(get_dbt_project(cfg).project_dir)
    set_dbt_env(cfg)
    target = dbt_target_dir(cfg).parent / "docs"
    dbt = str(Path(sys.executable).with_name("dbt"))
    common = ["--project-dir", project_dir, "--profiles-dir", project_dir,
              "--vars", json.dumps(cfg.dbt_vars(), sort_keys=True), "--target-path", str(target)]
    env = {**os.environ, "RECON_AS_OF_DATE": os.environ.get("RECON_AS_OF_DATE", str(cfg.project.start_date))}
    subprocess.run([dbt, "--quiet", "docs", "generate", *common], check=True, env=env)
    click.echo(f"dbt docs written to {target / 'index.html'}")
    if serve:
        subprocess.run([dbt, "--quiet", "docs", "serve", *common, "--port", str(port), "--host", "127.0.0.1",
                        "--no-browser"], check=True, env=env)


@cli.command()
@click.option("--port", type=int, default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.pass_context
def ui(ctx: click.Context, port: int, host: str) -> None:
    """Serve the Dagster UI (dagster dev) for this project: runs, asset graph, schedule, backfills."""
    from dagster_project.dbt.dbt_project import get_dbt_project
    from dagster_project.runs.runner import dagster_home

    cfg = _load(ctx)
    home = dagster_home(cfg)
    get_dbt_project(cfg)  # generated files and manifest are ready before the UI loads the code
    workspace = Path(__file__).resolve().parents[2] / "workspace.yaml"
    os.environ["RECON_CONFIG"] = str(cfg.source_file)
    click.echo(f"Dagster home: {home}\nOpen http://{host}:{port}")
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(str(dagster), [str(dagster), "dev", "-w", str(workspace), "-h", host, "-p", str(port)])


def main() -> None:
    import warnings

    # Dagster flags backfill_policy as beta on every load; say it once in the docs, not on every command.
    # Matched by message, not by dagster.BetaWarning: importing Dagster here would slow every command.
    warnings.filterwarnings("ignore", message=".* is currently in beta")
    warnings.filterwarnings("ignore", message=".*varying BackfillPolicies.*")
    from dagster_project.lib.errors import PlainError

    try:
        cli(obj={})
    except PlainError as exc:  # a run in progress, a busy database, dbt that cannot parse: said plainly
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:  # the machine said no: a full disk, a read-only folder, a missing permission
        if os.environ.get("RECON_DEBUG"):
            raise
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"Error: {exc.strerror or exc}{where}. Fix it and run the same command again (a rerun "
                   "is idempotent); RECON_DEBUG=1 shows the stack trace.", err=True)
        sys.exit(1)
    except Exception as exc:
        said = _sqlite_refusal(exc)
        if said is None or os.environ.get("RECON_DEBUG"):
            raise
        # Dagster's run history is SQLite files under DAGSTER_HOME (SQLAlchemy wraps what SQLite said); a
        # SQLite file a `sql` connector reads is someone else's, and is not named as the history.
        what = (f"Dagster's run history ({os.environ.get('DAGSTER_HOME', 'DAGSTER_HOME')}) could not be written"
                if _raised_in_dagster_storage(exc) else "a SQLite database refused")
        click.echo(f"Error: {what}: {said}. Fix it and run the same command again (a rerun is idempotent); "
                   "RECON_DEBUG=1 shows the stack trace.", err=True)
        sys.exit(1)


# What SQLite says when the machine refuses a write (the same causes as an OSError: disk, permissions).
_SQLITE_REFUSALS = ("database or disk is full", "attempt to write a readonly database", "disk I/O error",
                    "unable to open database file")


def _sqlite_refusal(exc: BaseException) -> str | None:
    """SQLite's own words if ``exc`` (or what caused it) is the machine refusing a write, else None."""
    import sqlite3

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.OperationalError) and any(r in str(seen) for r in _SQLITE_REFUSALS):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _raised_in_dagster_storage(exc: BaseException) -> bool:
    """Whether ``exc`` came out of Dagster's run or event-log storage (Dagster's classes or recon's own)."""
    import traceback

    return any("/dagster/_core/storage/" in frame.filename or frame.filename.endswith("runs/instance_storage.py")
               for frame in traceback.extract_tb(exc.__traceback__))


if __name__ == "__main__":
    main()
