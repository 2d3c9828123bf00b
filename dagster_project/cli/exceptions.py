"""The owner's CLI: ``recon exceptions list|show|queue|ack|assign|resolve|accept|reopen|match`` and ``recon order``.

The main CLI registers the click objects :data:`exceptions` (a group) and :data:`order` (a command);
both read the config path from ``ctx.obj["config_path"]``. Every human action records who did it
(``--actor``, default ``$RECON_ACTOR`` or the login name) and the note in the exception's event log.
An exception id can be given as any unique start of it (4+ characters; ``list`` prints 10).

The read commands (list, show, queue, order) import DuckDB, click and the config only: no Dagster,
dbt, Great Expectations, pandas or Arrow (``tests/test_exceptions_cli.py`` checks it); the store's
writes (and Arrow) load when an action runs.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import duckdb

from dagster_project.config.model import ConfigError, ReconConfig, load_config
from dagster_project.exceptions.read import (
    SEVERITIES,
    SHORT_ID,
    STATUSES,
    events_of,
    find_exception,
    has_store,
    latest_as_of,
    list_exceptions,
    plain,
    queue_digest,
)
from dagster_project.lib.money import format_money
from ingestion.catalogue import diff_title

ACTOR_ENV = "RECON_ACTOR"
OWNER_ENV = "RECON_OWNER"
_ORDER_HELP = "past due first, then severity (critical first), then the largest amount within each currency"


def _config(ctx: click.Context) -> ReconConfig:
    try:  # nothing here runs or syncs: the cron and connector options are checked by `config validate` and runs
        return load_config((ctx.obj or {}).get("config_path"), run_checks=False)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _database(cfg: ReconConfig, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    from dagster_project.lib.database import connect

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


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(plain(value), indent=2, default=str))


def _when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


_LIST_COLUMNS = ("exception_id", "short_id", "order_id", "customer_id", "diff_type", "system", "status", "severity",
                 "owner", "amount_at_risk", "currency", "age_days", "first_seen_date", "last_seen_date", "due_at",
                 "overdue", "escalation_level", "routing_rule")


def _table(found: list[dict[str, Any]]) -> list[str]:
    """The owner's view of exceptions, one line each; past-due ones marked."""
    out = [f"{'id':<{SHORT_ID}}  {'order':<14} {'type@system':<28} {'status':<13} {'sev':<8} {'amount at risk':>16}  "
           f"{'age':>3}  {'due (UTC)':<16}      owner"]
    for r in found:
        late = "LATE " if r["overdue"] else "     "
        out.append(f"{r['short_id']:<{SHORT_ID}}  {r['order_id']:<14} {r['diff_type'] + '@' + r['system']:<28} "
                   f"{r['status']:<13} {r['severity'] or '-':<8} "
                   f"{format_money(r['amount_at_risk'], r['currency']):>16}  {r['age_days']:>3}  "
                   f"{_when(r['due_at']):<16} {late}{r['owner'] or '-'}")
    return out


@click.group()
def exceptions() -> None:
    """List, inspect and work on exceptions (acknowledge, assign, resolve, accept, reopen, match)."""


# ---- reading ------------------------------------------------------------------------------------


@exceptions.command("list")
@click.option("--owner", "owners", multiple=True, help="Only these owners (repeatable).")
@click.option("--type", "types", multiple=True, help="Only these diff types (repeatable).")
@click.option("--status", "statuses", multiple=True, type=click.Choice([*STATUSES, "all"]),
              help="Statuses to show (repeatable). Default: open and acknowledged.")
@click.option("--system", "systems", multiple=True, help="Only these systems (repeatable).")
@click.option("--severity", "severities", multiple=True, type=click.Choice(SEVERITIES))
@click.option("--currency", "currencies", multiple=True, help="Only amounts in these currencies (repeatable).")
@click.option("--order", "order_id", help="Only this order.")
@click.option("--min-age", type=int, help="At least this many days since first seen.")
@click.option("--max-age", type=int, help="At most this many days since first seen.")
@click.option("--min-amount", type=float,
              help="At least this amount at risk, in the one --currency given (amounts in different currencies "
                   "are not comparable).")
@click.option("--max-amount", type=float, help="At most this amount at risk, in the one --currency given.")
@click.option("--overdue", is_flag=True,
              help="Only exceptions past their due time as of the latest as-of day (not the wall clock).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (full ids, every field).")
@click.pass_context
def list_(ctx: click.Context, owners: tuple[str, ...], types: tuple[str, ...], statuses: tuple[str, ...],
          systems: tuple[str, ...], severities: tuple[str, ...], currencies: tuple[str, ...], order_id: str | None,
          min_age: int | None, max_age: int | None, min_amount: float | None, max_amount: float | None,
          overdue: bool, limit: int, as_json: bool) -> None:
    """List exceptions: past due first, then severity, then the largest amount within each currency.

    Days count against the latest as-of day (the last day a nightly run reconciled), not the wall clock:
    age is days from first seen to it, and an exception is past due (LATE) when its due time is at or
    before the end of it. Amounts print in their currency's decimals; ids print as their first 10 characters.
    """
    if (min_amount is not None or max_amount is not None) and len(currencies) != 1:
        raise click.UsageError("--min-amount/--max-amount compare amounts in one currency: add --currency CODE "
                               "(once); amounts in different currencies are not comparable")
    cfg = _config(ctx)
    where, params = [], []
    chosen = () if "all" in statuses else (statuses or ("open", "acknowledged"))
    for column, values in (("owner", owners), ("diff_type", types), ("status", chosen), ("system", systems),
                           ("severity", severities), ("upper(currency)", tuple(c.upper() for c in currencies))):
        if values:
            where.append(f"{column} in (select unnest(?::varchar[]))")
            params.append(list(values))
    for condition, value in (("(order_id = ? or matched_order_id = ?)", order_id), ("age_days >= ?", min_age),
                             ("age_days <= ?", max_age), ("amount_at_risk >= ?", min_amount),
                             ("amount_at_risk <= ?", max_amount)):
        if value is not None:
            where.append(condition)
            params += [value] * condition.count("?")
    if overdue:
        where.append("overdue")
    with _database(cfg) as con:
        as_of, total, late, found = None, 0, 0, []
        if has_store(con):
            as_of = latest_as_of(con)
            total, late, found = list_exceptions(con, where, params, limit, as_of)
    if as_json:
        _echo_json({"as_of": as_of, "order": _ORDER_HELP, "total": total, "overdue": late,
                    "exceptions": [{c: r.get(c) for c in _LIST_COLUMNS} for r in found]})
        return
    if not found:
        click.echo("no exceptions match" + (f" (as of {as_of})" if as_of else ""))
        return
    click.echo(f"As of {as_of} (latest run): {total} match, {late} past due (LATE); {_ORDER_HELP}.")
    for line in _table(found):
        click.echo(line)
    if total > len(found):
        click.echo(f"... {total - len(found)} more (use --limit)")


@exceptions.command("show")
@click.argument("exception_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show(ctx: click.Context, exception_id: str, as_json: bool) -> None:
    """Show one exception (id or a unique start of it): the diff, owner, SLA, lineage and its event log.

    The event log is on one clock: each event's as-of day (the day of data it acted on) and the
    wall-clock time it was recorded, ordered by as-of day, then time.
    """
    cfg = _config(ctx)
    with _database(cfg) as con:
        try:
            ex = find_exception(con, exception_id)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        *_, (listed,) = list_exceptions(con, ["exception_id = ?"], [ex["exception_id"]], 1)
        events = events_of(con, [ex["exception_id"]])
    ex["overdue"], ex["age_days"] = listed["overdue"], listed["age_days"]
    if isinstance(ex.get("lineage"), str):
        ex["lineage"] = json.loads(ex["lineage"])
    for e in events:
        if isinstance(e.get("details"), str):
            e["details"] = json.loads(e["details"])
    if as_json:
        _echo_json({"exception": ex, "events": events})
        return
    click.echo(f"Exception {ex['exception_id']}: {diff_title(ex['diff_type'])} ({ex['diff_type']}) on "
               f"{ex['system']} for order {ex['order_id']}")
    due = _when(ex["due_at"]) + " UTC" + (" (PAST DUE as of the latest run)" if ex["overdue"] else "")
    facts = [
        ("status", ex["status"]), ("severity", ex["severity"]), ("owner", ex["owner"]),
        ("routed by", ex.get("routing_rule")), ("due", due if ex["due_at"] else None),
        ("escalation level", ex.get("escalation_level") or 0),
        ("customer", ex["customer_id"]), ("amount at risk", format_money(ex["amount_at_risk"], ex["currency"])),
        ("expected", ex["expected_value"]), ("actual", ex["actual_value"]),
        ("systems involved", ex["systems_involved"]), ("first seen", ex["first_seen_date"]),
        ("last seen", ex["last_seen_date"]), ("age", f"{ex['age_days']} day(s)"), ("rule", ex["rule"]),
        ("dbt model", ex.get("dbt_model")), ("matched to order", ex.get("matched_order_id")),
        ("resolution note", ex.get("resolution_note")), ("reproduce", ex["reproduce_command"]),
        ("timeline", f"recon order {shlex.quote(ex['order_id'])}"),
    ]
    for name, value in facts:
        if value not in (None, ""):
            click.echo(f"  {name + ':':<18} {value}")
    lineage = ex.get("lineage") or {}
    for stream in lineage.get("streams", []):
        click.echo(f"  {'stream:':<18} {stream.get('system')}/{stream.get('stream')} last synced "
                   f"{stream.get('last_synced_at') or 'never'}")
    click.echo(f"\nEvents (as-of day, then the wall-clock time recorded, UTC):\n  {'as of':<10}  {'recorded':<16}  "
               f"{'event':<13} {'status':<28} {'by':<17}")
    for e in events:
        move = e["to_status"] if e["from_status"] == e["to_status"] else f"{e['from_status'] or 'new'} -> {e['to_status']}"
        owner = ""
        if e.get("to_owner"):
            owner = f"  owner {e['from_owner']} -> {e['to_owner']}" if e.get("from_owner") else f"  owner {e['to_owner']}"
        click.echo(f"  {e['as_of_day']}  {_when(e['recorded_at']):<16}  {e['event_type']:<13} {move:<28} "
                   f"{e['actor']:<17}{owner}  {e['reason'] or ''}")


@exceptions.command("queue")
@click.option("--owner", required=True, envvar=OWNER_ENV, show_envvar=True,
              help="The owner (team or person) whose queue to show.")
@click.option("--top", type=int, default=10, show_default=True, help="How many exceptions to list.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def queue(ctx: click.Context, owner: str, top: int, as_json: bool) -> None:
    """One owner's open queue as of the latest run: counts by severity, past due, money at risk, the top items.

    Money at risk is one figure per currency (never added across currencies); the top items are in the
    list order (past due, severity, amount within currency).
    """
    cfg = _config(ctx)
    with _database(cfg) as con:
        if not has_store(con):
            raise click.ClickException("no exceptions yet: run `recon run --date D` first")
        digest = queue_digest(con, owner, top)
    if as_json:
        _echo_json(digest)
        return
    click.echo(f"Queue of {owner} as of {digest['as_of']} (latest run): {digest['open']} open, "
               f"{digest['overdue']} past due")
    if not digest["open"]:
        return
    click.echo("  by severity:   " + ", ".join(f"{s} {c['open']} ({c['overdue']} past due)"
                                             for s, c in digest["by_severity"].items() if c["open"]))
    click.echo(f"  oldest due:    {_when(digest['oldest_due'])} UTC")
    for m in digest["money_at_risk"]:
        if m["currency"] is None:  # diffs about a source or a record without an amount (stale_source, orphans)
            click.echo(f"  no currency:   {m['exceptions']} exception(s) without a currency")
            continue
        click.echo(f"  at risk:       {format_money(m['amount'], m['currency']):>18} in {m['exceptions']} "
                   f"exception(s), {format_money(m['overdue_amount'], m['currency'])} past due")
    click.echo(f"\nTop {len(digest['top'])} ({_ORDER_HELP}):")
    for line in _table(digest["top"]):
        click.echo("  " + line)
    if digest["open"] > len(digest["top"]):
        click.echo(f"  ... {digest['open'] - len(digest['top'])} more: recon exceptions list --owner {owner}")


# ---- acting -------------------------------------------------------------------------------------


def _act(ctx: click.Context, ids: tuple[str, ...], action: Callable[..., dict[str, Any]], verb: str,
         **kwargs: Any) -> None:
    from dagster_project.exceptions.store import TransitionError

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
    from dagster_project.exceptions.store import acknowledge

    _act(ctx, exception_ids, acknowledge, "acknowledged", actor=actor, note=note)


@exceptions.command("assign")
@click.argument("exception_ids", nargs=-1, required=True)
@click.option("--to", "owner", required=True, help="The new owner (team or person).")
@click.option("--note", help="Why.")
@_actor_option
@click.pass_context
def assign_(ctx: click.Context, exception_ids: tuple[str, ...], owner: str, note: str | None, actor: str) -> None:
    """Reassign exceptions to another owner (routing no longer moves them; escalation still applies)."""
    from dagster_project.exceptions.store import assign

    _act(ctx, exception_ids, assign, "assigned", owner=owner, actor=actor, note=note)


@exceptions.command("resolve")
@click.argument("exception_ids", nargs=-1, required=True)
@click.option("--note", required=True, help="What was done (required).")
@_actor_option
@click.pass_context
def resolve_(ctx: click.Context, exception_ids: tuple[str, ...], note: str, actor: str) -> None:
    """Resolve exceptions with a note. One still present on a later day reopens."""
    from dagster_project.exceptions.store import resolve

    _act(ctx, exception_ids, resolve, "resolved", actor=actor, note=note)


@exceptions.command("accept")
@click.argument("exception_ids", nargs=-1, required=True)
@click.option("--note", required=True, help="Why this difference is acceptable (required).")
@_actor_option
@click.pass_context
def accept_(ctx: click.Context, exception_ids: tuple[str, ...], note: str, actor: str) -> None:
    """Accept a known difference: closed while the difference stays the same, reopened when it changes."""
    from dagster_project.exceptions.store import accept

    _act(ctx, exception_ids, accept, "accepted", actor=actor, note=note)


@exceptions.command("reopen")
@click.argument("exception_ids", nargs=-1, required=True)
@click.option("--note", required=True, help="Why (required).")
@_actor_option
@click.pass_context
def reopen_(ctx: click.Context, exception_ids: tuple[str, ...], note: str, actor: str) -> None:
    """Reopen resolved, auto-resolved or accepted exceptions; the SLA clock restarts."""
    from dagster_project.exceptions.store import reopen

    _act(ctx, exception_ids, reopen, "reopened", actor=actor, note=note)


@exceptions.command("match")
@click.argument("exception_id")
@click.option("--order", "order_id", required=True, help="The order the orphan record belongs to.")
@click.option("--note", required=True, help="How you know (required).")
@_actor_option
@click.pass_context
def match(ctx: click.Context, exception_id: str, order_id: str, note: str, actor: str) -> None:
    """Link an orphan record (an orphan_record exception) to an order by hand."""
    from dagster_project.exceptions.store import match_orphan

    _act(ctx, (exception_id,), match_orphan, "matched", order_id=order_id, actor=actor, note=note)


# ---- recon order --------------------------------------------------------------------------------


@click.command("order")
@click.argument("order_id")
@click.option("--as-of", "as_of", help="Show the order as of this day (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def order(ctx: click.Context, order_id: str, as_of: str | None, as_json: bool) -> None:
    """Show an order's whole timeline: every system's records, its state over time, diffs, exceptions."""
    from dagster_project.exceptions.timeline import build_timeline, render_timeline

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
