"""The owner's CLI: ``recon exceptions list|show|ack|assign|resolve|accept|reopen|match`` and ``recon order``.

The main CLI registers the click objects :data:`exceptions` (a group) and :data:`order` (a command);
both read the config path from ``ctx.obj["config_path"]``. Every human action records who did it
(``--actor``, default ``$RECON_ACTOR`` or the login name) and the note in the exception's event log.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import click
import duckdb

from dagster_project.lib.config import ConfigError, ReconConfig, load_config

ACTOR_ENV = "RECON_ACTOR"
_STATUSES = ("open", "acknowledged", "resolved", "auto_resolved", "accepted")


def _config(ctx: click.Context) -> ReconConfig:
    try:
        return load_config((ctx.obj or {}).get("config_path"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _database(cfg: ReconConfig, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    from dagster_project.lib.duckdb_resource import connect

    if not cfg.duckdb_path.exists():
        raise click.ClickException(f"no database at {cfg.duckdb_path}: run `recon run --date D` or `recon demo` first")
    try:
        con = connect(cfg.duckdb_path, read_only=not write)
    except duckdb.IOException as exc:
        raise click.ClickException(f"the database is busy (a run is writing?): {exc}") from None
    try:
        yield con
    finally:
        con.close()


def _default_actor() -> str:
    try:
        return os.environ.get(ACTOR_ENV) or getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(_plain(value), indent=2, default=str))


def _money(amount: Any, currency: Any) -> str:
    return f"{currency or ''} {Decimal(str(amount or 0)):,.2f}".strip()


@click.group()
def exceptions() -> None:
    """List, inspect and work on exceptions (acknowledge, assign, resolve, accept, reopen, match)."""


# ---- reading ------------------------------------------------------------------------------------


@exceptions.command("list")
@click.option("--owner", "owners", multiple=True, help="Only these owners (repeatable).")
@click.option("--type", "types", multiple=True, help="Only these diff types (repeatable).")
@click.option("--status", "statuses", multiple=True, type=click.Choice([*_STATUSES, "all"]),
              help="Statuses to show (repeatable). Default: open and acknowledged.")
@click.option("--system", "systems", multiple=True, help="Only these systems (repeatable).")
@click.option("--severity", "severities", multiple=True, type=click.Choice(["low", "medium", "high", "critical"]))
@click.option("--order", "order_id", help="Only this order.")
@click.option("--min-age", type=int, help="At least this many days since first seen.")
@click.option("--max-age", type=int, help="At most this many days since first seen.")
@click.option("--min-amount", type=float, help="At least this amount at risk.")
@click.option("--max-amount", type=float, help="At most this amount at risk.")
@click.option("--overdue", is_flag=True, help="Only exceptions past their due time.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, owners: tuple[str, ...], types: tuple[str, ...], statuses: tuple[str, ...],
          systems: tuple[str, ...], severities: tuple[str, ...], order_id: str | None, min_age: int | None,
          max_age: int | None, min_amount: float | None, max_amount: float | None, overdue: bool, limit: int,
          as_json: bool) -> None:
    """List exceptions, newest first, with filters. Age counts days from first seen to the latest as-of day."""
    from dagster_project.lib.exceptions_store import relation_columns, rows

    cfg = _config(ctx)
    where, params = ["1 = 1"], []
    chosen = () if "all" in statuses else (statuses or ("open", "acknowledged"))
    for column, values in (("owner", owners), ("diff_type", types), ("status", chosen), ("system", systems),
                           ("severity", severities)):
        if values:
            where.append(f"{column} in (select unnest(?::varchar[]))")
            params.append(list(values))
    if order_id:
        where.append("(order_id = ? or matched_order_id = ?)")
        params += [order_id, order_id]
    if min_age is not None:
        where.append("age_days >= ?")
        params.append(min_age)
    if max_age is not None:
        where.append("age_days <= ?")
        params.append(max_age)
    if min_amount is not None:
        where.append("amount_at_risk >= ?")
        params.append(min_amount)
    if max_amount is not None:
        where.append("amount_at_risk <= ?")
        params.append(max_amount)
    if overdue:
        where.append("status in ('open', 'acknowledged') and due_at < ?")
        params.append(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    with _database(cfg) as con:
        if not relation_columns(con, "recon", "exceptions"):
            found: list[dict[str, Any]] = []
            total = 0
        else:
            base = ("with x as (select *, date_diff('day', first_seen_date, "
                    "(select max(last_as_of_date) from recon.exceptions)) as age_days from recon.exceptions) "
                    f"select * from x where {' and '.join(where)}")
            total = con.execute(f"select count(*) from ({base})", params).fetchall()[0][0]
            found = rows(con, f"{base} order by last_seen_date desc, amount_at_risk desc, exception_id limit ?",
                         [*params, limit])
    columns = ("exception_id", "order_id", "customer_id", "diff_type", "system", "status", "severity", "owner",
               "amount_at_risk", "currency", "age_days", "first_seen_date", "last_seen_date", "due_at",
               "escalation_level", "routing_rule")
    if as_json:
        _echo_json({"total": total, "exceptions": [{c: r.get(c) for c in columns} for r in found]})
        return
    if not found:
        click.echo("no exceptions match")
        return
    click.echo(f"{'id':<20}  {'order':<14} {'type@system':<28} {'status':<13} {'sev':<8} {'amount':>14}  "
               f"{'age':>3}  {'owner':<18} due")
    for r in found:
        due = r["due_at"].strftime("%Y-%m-%d %H:%M") if r["due_at"] else "-"
        click.echo(f"{r['exception_id']:<20}  {r['order_id']:<14} {r['diff_type'] + '@' + r['system']:<28} "
                   f"{r['status']:<13} {r['severity'] or '-':<8} {_money(r['amount_at_risk'], r['currency']):>14}  "
                   f"{r['age_days']:>3}  {r['owner'] or '-':<18} {due}")
    if total > len(found):
        click.echo(f"... {total - len(found)} more (use --limit)")


@exceptions.command("show")
@click.argument("exception_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show(ctx: click.Context, exception_id: str, as_json: bool) -> None:
    """Show one exception: the diff, owner, SLA, lineage and its whole event log."""
    from dagster_project.lib.exceptions_store import find_exception, relation_columns, rows

    cfg = _config(ctx)
    with _database(cfg) as con:
        if not relation_columns(con, "recon", "exceptions"):
            raise click.ClickException("no exceptions yet")
        try:
            ex = find_exception(con, exception_id)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        events = rows(con, "select * from recon.exception_events where exception_id = ? order by recorded_at, "
                           "event_id", [ex["exception_id"]])
    if isinstance(ex.get("lineage"), str):
        ex["lineage"] = json.loads(ex["lineage"])
    for e in events:
        if isinstance(e.get("details"), str):
            e["details"] = json.loads(e["details"])
    if as_json:
        _echo_json({"exception": ex, "events": events})
        return
    click.echo(f"Exception {ex['exception_id']}: {ex['diff_type']} on {ex['system']} for order {ex['order_id']}")
    facts = [
        ("status", ex["status"]), ("severity", ex["severity"]), ("owner", ex["owner"]),
        ("routed by", ex.get("routing_rule")), ("due", ex["due_at"]),
        ("escalation level", ex.get("escalation_level") or 0),
        ("customer", ex["customer_id"]), ("amount at risk", _money(ex["amount_at_risk"], ex["currency"])),
        ("expected", ex["expected_value"]), ("actual", ex["actual_value"]),
        ("systems involved", ex["systems_involved"]), ("first seen", ex["first_seen_date"]),
        ("last seen", ex["last_seen_date"]), ("rule", ex["rule"]), ("dbt model", ex.get("dbt_model")),
        ("matched to order", ex.get("matched_order_id")), ("resolution note", ex.get("resolution_note")),
        ("reproduce", ex["reproduce_command"]), ("timeline", f"recon order {ex['order_id']}"),
    ]
    for name, value in facts:
        if value not in (None, ""):
            click.echo(f"  {name + ':':<18} {value}")
    lineage = ex.get("lineage") or {}
    for stream in lineage.get("streams", []):
        click.echo(f"  {'stream:':<18} {stream.get('system')}/{stream.get('stream')} last synced "
                   f"{stream.get('last_synced_at') or 'never'}")
    click.echo("\nEvents:")
    for e in events:
        move = e["to_status"] if e["from_status"] == e["to_status"] else f"{e['from_status'] or 'new'} -> {e['to_status']}"
        owner = f"  owner {e['from_owner'] or ''} -> {e['to_owner']}" if e.get("to_owner") else ""
        click.echo(f"  {e['recorded_at']:%Y-%m-%d %H:%M}  {e['event_type']:<13} {move:<28} {e['actor']:<17}"
                   f"{owner}  {e['reason'] or ''}")


# ---- acting -------------------------------------------------------------------------------------


def _act(ctx: click.Context, ids: tuple[str, ...], action: Callable[..., dict[str, Any]], verb: str,
         **kwargs: Any) -> None:
    from dagster_project.lib.exceptions_store import TransitionError

    cfg = _config(ctx)
    done, failed = [], []
    with _database(cfg, write=True) as con:
        for ref in ids:
            try:
                event = action(con, ref, config=cfg, **kwargs)
            except (LookupError, ValueError) as exc:
                kind = "not allowed" if isinstance(exc, TransitionError) else "error"
                failed.append(f"{ref}: {kind}: {exc}")
                continue
            done.append(event)
            click.echo(f"{verb} {event['exception_id']} ({event['from_status']} -> {event['to_status']}"
                       + (f", owner {event['to_owner']}" if event.get("to_owner") else "") + ")")
    if failed:
        raise click.ClickException("\n".join(failed))


_actor_option = click.option("--actor", default=_default_actor, show_default=f"${ACTOR_ENV} or your login",
                             help="Who is acting (recorded in the event log).")


@exceptions.command("ack")
@click.argument("exception_ids", nargs=-1, required=True)
@click.option("--note", help="Optional note.")
@_actor_option
@click.pass_context
def ack(ctx: click.Context, exception_ids: tuple[str, ...], note: str | None, actor: str) -> None:
    """Acknowledge exceptions (open -> acknowledged): you are on it."""
    from dagster_project.lib.exceptions_store import acknowledge

    _act(ctx, exception_ids, acknowledge, "acknowledged", actor=actor, note=note)


@exceptions.command("assign")
@click.argument("exception_ids", nargs=-1, required=True)
@click.option("--to", "owner", required=True, help="The new owner (team or person).")
@click.option("--note", help="Why.")
@_actor_option
@click.pass_context
def assign_(ctx: click.Context, exception_ids: tuple[str, ...], owner: str, note: str | None, actor: str) -> None:
    """Reassign exceptions to another owner (routing no longer moves them; escalation still applies)."""
    from dagster_project.lib.exceptions_store import assign

    _act(ctx, exception_ids, assign, "assigned", owner=owner, actor=actor, note=note)


@exceptions.command("resolve")
@click.argument("exception_ids", nargs=-1, required=True)
@click.option("--note", required=True, help="What was done (required).")
@_actor_option
@click.pass_context
def resolve_(ctx: click.Context, exception_ids: tuple[str, ...], note: str, actor: str) -> None:
    """Resolve exceptions with a note. One still present on a later day reopens."""
    from dagster_project.lib.exceptions_store import resolve

    _act(ctx, exception_ids, resolve, "resolved", actor=actor, note=note)


@exceptions.command("accept")
@click.argument("exception_ids", nargs=-1, required=True)
@click.option("--note", required=True, help="Why this difference is acceptable (required).")
@_actor_option
@click.pass_context
def accept_(ctx: click.Context, exception_ids: tuple[str, ...], note: str, actor: str) -> None:
    """Accept a known difference: closed while the difference stays the same, reopened when it changes."""
    from dagster_project.lib.exceptions_store import accept

    _act(ctx, exception_ids, accept, "accepted", actor=actor, note=note)


@exceptions.command("reopen")
@click.argument("exception_ids", nargs=-1, required=True)
@click.option("--note", required=True, help="Why (required).")
@_actor_option
@click.pass_context
def reopen_(ctx: click.Context, exception_ids: tuple[str, ...], note: str, actor: str) -> None:
    """Reopen resolved, auto-resolved or accepted exceptions; the SLA clock restarts."""
    from dagster_project.lib.exceptions_store import reopen

    _act(ctx, exception_ids, reopen, "reopened", actor=actor, note=note)


@exceptions.command("match")
@click.argument("exception_id")
@click.option("--order", "order_id", required=True, help="The order the orphan record belongs to.")
@click.option("--note", required=True, help="How you know (required).")
@_actor_option
@click.pass_context
def match(ctx: click.Context, exception_id: str, order_id: str, note: str, actor: str) -> None:
    """Link an orphan record (an orphan_record exception) to an order by hand."""
    from dagster_project.lib.exceptions_store import match_orphan

    _act(ctx, (exception_id,), match_orphan, "matched", order_id=order_id, actor=actor, note=note)


# ---- recon order --------------------------------------------------------------------------------


@click.command("order")
@click.argument("order_id")
@click.option("--as-of", "as_of", help="Show the order as of this day (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def order(ctx: click.Context, order_id: str, as_of: str | None, as_json: bool) -> None:
    """Show an order's whole timeline: every system's records, its state over time, diffs, exceptions."""
    from dagster_project.lib.timeline import build_timeline, render_timeline

    day = None
    if as_of:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            raise click.BadParameter(f"expected a date as YYYY-MM-DD, got '{as_of}'", param_hint="--as-of") from None
    cfg = _config(ctx)
    with _database(cfg) as con:
        timeline = build_timeline(con, cfg, order_id, day)
    if as_json:
        _echo_json(timeline.as_dict())
        return
    click.echo(render_timeline(timeline))
    if timeline.order is None and not timeline.entries:
        ctx.exit(1)
