"""``recon contracts``: generate the suites and run them outside Dagster (e.g. onboarding a source)."""

from __future__ import annotations

from pathlib import Path

import click

from dagster_project.config.model import ConfigError, ReconConfig, load_config
from dagster_project.contracts.suites import ProtectedSuitesError, expectations_dir_for, generate_suites


def _load(ctx: click.Context) -> ReconConfig:
    try:
        return load_config((ctx.obj or {}).get("config_path"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.option("--expectations-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The GX File Data Context holding the suites (default: the config's project.expectations_dir, "
                   "else <state_dir>/expectations; the demo config's is the committed expectations/).")
@click.pass_context
def contracts(ctx: click.Context, expectations_dir: Path | None) -> None:
    """Contract checks: Great Expectations suites that guard every landed source stream."""
    ctx.ensure_object(dict)
    ctx.obj["expectations_dir"] = expectations_dir


def _folder(ctx: click.Context, cfg: ReconConfig) -> Path:
    return (ctx.obj["expectations_dir"] or expectations_dir_for(cfg)).resolve()


@contracts.command("generate")
@click.option("--system", help="Only this system's streams.")
@click.pass_context
def generate(ctx: click.Context, system: str | None) -> None:
    """Write the config's suites from the config and <folder>/overrides.yml (commit them if you review them)."""
    cfg = _load(ctx)
    try:
        paths = generate_suites(cfg, _folder(ctx, cfg), system)
    except ProtectedSuitesError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        click.echo(f"wrote {path}")


@contracts.command("check")
@click.option("--system", help="Only this system's streams.")
@click.option("--docs", "docs_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also build GX Data Docs into this folder (imports Great Expectations: a few seconds).")
@click.option("--record", is_flag=True,
              help="Write quarantine, violations and the accepted schema snapshot (default: read-only).")
@click.pass_context
def check(ctx: click.Context, system: str | None, docs_dir: Path | None, record: bool) -> None:
    """Run the contract suites against the landed tables and print a verdict (exit 1 on any failure).

    Validates every landed row (no as-of day), as one SQL query per stream."""
    from dagster_project.contracts.runner import validate_all
    from dagster_project.lib.database import connect

    cfg = _load(ctx)
    if not cfg.duckdb_path.is_file():
        raise click.ClickException(f"database {cfg.duckdb_path} not found: nothing has landed yet")
    con = connect(cfg.duckdb_path, read_only=not record)
    try:
        results = validate_all(con, cfg, system=system, expectations_dir=_folder(ctx, cfg),
                               docs_dir=docs_dir, record=record)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    finally:
        con.close()
    failed = 0
    for r in results:
        for note in r.notes:
            click.echo(note)
        verdict = "PASS" if r.passed else ("FAIL (blocking)" if r.blocking else "FAIL (warning)")
        click.echo(f"{verdict:<16} {r.suite}  {r.row_count if r.row_count is not None else '-'} rows, "
                   f"{len(r.outcomes) - len(r.failures)}/{len(r.outcomes)} expectations passed")
        for message in r.messages():
            click.echo(f"    - {message}")
        if r.hint():
            click.echo(f"    to fix: {r.hint()}")
        if r.suite_stale:
            click.echo("    ! the committed suite differs from the config; run `recon contracts generate`")
        if r.docs_path:
            click.echo(f"    docs: {r.docs_path}")
        failed += not r.passed
    click.echo(f"{len(results) - failed} of {len(results)} stream(s) passed their contract")
    if failed:
        ctx.exit(1)


@contracts.command("docs")
@click.option("--run", "run_id", help="The Dagster run whose contract results to render (default: the newest).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The Data Docs folder (default: <state_dir>/contracts/data_docs/<run id>).")
@click.pass_context
def docs(ctx: click.Context, run_id: str | None, out_dir: Path | None) -> None:
    """Build GX Data Docs from the validation results a run's contract checks wrote."""
    import json

    from dagster_project.contracts.docs import build_data_docs, docs_root, latest_run, results_root
    from dagster_project.contracts.suites import SuiteNotFoundError, load_suite_json

    cfg = _load(ctx)
    run_dir = results_root(cfg) / run_id if run_id else latest_run(cfg)
    if run_dir is None or not run_dir.is_dir():
        raise click.ClickException(
            f"no contract results {'for run ' + run_id if run_id else 'yet'} under {results_root(cfg)}: "
            "run the day first (`recon run`), or use `recon contracts check --docs DIR`")
    results = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(run_dir.glob("*.json"))]
    if not results:
        raise click.ClickException(f"{run_dir} holds no validation results")
    folder = _folder(ctx, cfg)
    try:
        suites = [load_suite_json(folder, r["suite_name"]) for r in results]
    except SuiteNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    index = build_data_docs(results, suites, out_dir or docs_root(cfg) / run_dir.name)
    click.echo(f"Data Docs of {len(results)} validation(s) of run {run_dir.name}: {index}")
