"""The durable notification outbox: ``recon.notification_outbox`` in the reconciliation database.

Rows:
- ``kind='immediate'``: one event for one channel; sent at once (critical severity, escalations).
- ``kind='item'``: one event waiting for its owner's digest (``status='queued'``), then ``digested``.
- ``kind='digest'``: the items of one owner and channel, built by :func:`build_digests`.

``message_id`` is the idempotency key: a hash of the channel and the event (or of the digest's
items), so queuing the same event twice is a no-op. Sending is at-least-once towards the channel
and exactly-once in the usual case: a row is marked ``sent`` right after its channel accepted it,
and every request carries the key (``Idempotency-Key`` header, email ``Message-ID``) so a receiver
can drop a repeat after a crash between the two. A failed send is retried with exponential backoff
(``next_attempt_at``); after ``retry.max_attempts`` the row is ``dead`` (kept, never deleted).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb

from dagster_project.config.exceptions import EmailChannel
from dagster_project.exceptions.read import SHORT_ID
from dagster_project.exceptions.routing import cutoff
from dagster_project.lib.bulk_write import insert_rows
from dagster_project.notifications.channels import (
    DeliveryError,
    Sender,
    build_senders,
    missing_env,
    redact,
)

if TYPE_CHECKING:
    from dagster_project.config.model import ReconConfig

OUTBOX_TABLE = "recon.notification_outbox"
_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}

_DDL = f"""
create schema if not exists recon;
create table if not exists {OUTBOX_TABLE} (
    message_id varchar primary key,
    channel varchar not null,
    owner varchar not null,
    kind varchar not null,
    status varchar not null,
    severity varchar,
    exception_ids json,
    event_ids json,
    payload json not null,
    digest_id varchar,
    attempts integer not null,
    next_attempt_at timestamp not null,
    last_error varchar,
    created_at timestamp not null,
    sent_at timestamp
);
"""


@dataclass
class FlushStats:
    """What one flush did."""

    digests: int = 0
    sent: int = 0
    failed: int = 0          # messages due that did not go out: a failed send, or a channel's variable unset
    dead: int = 0            # of those, given up after retry.max_attempts (kept, never deleted)
    missing_secret: int = 0  # of those, waiting because their channel's environment variable is unset
    deferred: int = 0        # not tried: their channel failed earlier in this flush, or is disabled
    pending: int = 0         # left to send after this flush (pending or waiting for a digest)
    errors: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


def ensure_outbox(con: duckdb.DuckDBPyConnection) -> None:
    """Create the outbox table if it does not exist."""
    con.execute(_DDL)


def _key(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _link(config: ReconConfig, exception: dict[str, Any]) -> str | None:
    """The timeline URL from ``notifications.timeline_url`` (``{order_id}``, ``{exception_id}``), or None."""
    url = config.notifications.timeline_url
    if not url:
        return None
    # The ids are the source's text: quoted for a URL (``SO-X'; drop table x; --``).
    for name in ("order_id", "exception_id"):
        url = url.replace("{" + name + "}", urllib.parse.quote(str(exception[name]), safe=""))
    return url


def enqueue_for_events(con: duckdb.DuckDBPyConnection, config: ReconConfig, events: list[dict[str, Any]],
                       now: dt.datetime) -> int:
    """Queue the notifications a list of exception events calls for (run it inside the writer's transaction).

    Args:
        con: the connection holding the transaction that wrote the events.
        config: the project config (notification channels, digest and event settings).
        events: exception events (dicts with event_id, exception_id, event_type, to_owner, reason, actor).
        now: creation time of the rows.

    Returns:
        The number of outbox rows added (an event already queued adds none).
    """
    settings = config.notifications
    wanted = [e for e in events if e["event_type"] in settings.events]
    # Every enabled channel, whether or not its variables are set now: the flush says which variable
    # is missing and delivers once it is set, so a missing secret delays a notification, never loses it.
    channels = {n: c for n, c in settings.channels.items() if c.enabled}
    if not settings.enabled or not wanted or not channels:
        return 0
    ensure_outbox(con)
    ids = sorted({e["exception_id"] for e in wanted})
    cursor = con.execute("select * from recon.exceptions where exception_id in (select unnest(?::varchar[]))", [ids])
    names = [d[0] for d in cursor.description]
    exceptions = {r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()}
    orders = sorted({x["order_id"] for x in exceptions.values()})
    diffs: dict[str, list[dict[str, Any]]] = {}
    for order_id, system, diff_type, expected, actual, amount in con.execute(
        "select order_id, system, diff_type, expected_value, actual_value, amount_at_risk from recon.exceptions "
        "where order_id in (select unnest(?::varchar[])) and status in ('open', 'acknowledged') "
        "order by order_id, system, diff_type", [orders]
    ).fetchall():
        diffs.setdefault(order_id, []).append({"system": system, "diff_type": diff_type, "expected": expected,
                                               "actual": actual, "amount_at_risk": _plain(amount)})
    digest = settings.digest
    rows = []
    for event in wanted:
        ex = exceptions.get(event["exception_id"])
        if ex is None:
            continue
        owner = event.get("to_owner") or ex["owner"]
        severity = ex.get("severity") or "medium"
        as_of = event.get("as_of_date") or ex.get("last_as_of_date")
        due_at = ex.get("due_at")
        item = {
            "event_id": event["event_id"], "event_type": event["event_type"], "reason": event.get("reason"),
            "actor": event.get("actor"), "exception_id": ex["exception_id"], "order_id": ex["order_id"],
            "customer_id": ex.get("customer_id"), "diff_type": ex["diff_type"], "system": ex["system"],
            "severity": severity, "status": ex["status"], "amount_at_risk": _plain(ex.get("amount_at_risk")),
            "currency": ex.get("currency"), "owner": owner,
            # The SLA runs from the end of the as-of day: past due is judged against that day, not the wall clock.
            "due_at": due_at.strftime("%Y-%m-%dT%H:%M:%SZ") if due_at else None,
            "as_of_date": _plain(as_of),
            "overdue": bool(due_at and as_of and ex["status"] in ("open", "acknowledged") and due_at <= cutoff(as_of)),
            "expected_value": ex.get("expected_value"), "actual_value": ex.get("actual_value"),
            "diffs": diffs.get(ex["order_id"], []), "short_id": ex["exception_id"][:SHORT_ID],
            "command": f"recon exceptions show {ex['exception_id'][:SHORT_ID]}", "link": _link(config, ex),
            "reproduce_command": ex.get("reproduce_command"),
        }
        immediate = (not digest.enabled or severity in digest.immediate_severities
                     or event["event_type"] in digest.immediate_events)
        for name, spec in sorted(channels.items()):
            if spec.owners and owner not in spec.owners:
                continue
            if spec.severities and severity not in spec.severities:
                continue
            if isinstance(spec, EmailChannel) and not spec.recipients_for(owner):
                continue
            rows.append({
                "message_id": _key(name, event["event_id"]), "channel": name, "owner": owner,
                "kind": "immediate" if immediate else "item", "status": "pending" if immediate else "queued",
                "severity": severity, "exception_ids": json.dumps([ex["exception_id"]]),
                "event_ids": json.dumps([event["event_id"]]), "payload": json.dumps(item, default=str),
                "attempts": 0, "next_attempt_at": now, "created_at": now,
            })
    if not rows:
        return 0
    before = con.execute(f"select count(*) from {OUTBOX_TABLE}").fetchall()[0][0]
    insert_rows(con, *OUTBOX_TABLE.split("."), rows, ignore_conflicts=True)
    return con.execute(f"select count(*) from {OUTBOX_TABLE}").fetchall()[0][0] - before


def build_digests(con: duckdb.DuckDBPyConnection, config: ReconConfig, now: dt.datetime) -> int:
    """Fold queued items into one digest per owner and channel, at most once per ``digest.interval_minutes``.

    Returns:
        The number of digests created.
    """
    ensure_outbox(con)
    interval = dt.timedelta(minutes=config.notifications.digest.interval_minutes)
    max_items = config.notifications.digest.max_items
    created = 0
    con.begin()
    try:
        queued = con.execute(
            f"select message_id, channel, owner, severity, exception_ids, event_ids, payload from {OUTBOX_TABLE} "
            "where status = 'queued' order by channel, owner, created_at, message_id").fetchall()
        groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for row in queued:
            groups.setdefault((row[1], row[2]), []).append(row)
        last = {(c, o): t for c, o, t in con.execute(
            f"select channel, owner, max(created_at) from {OUTBOX_TABLE} where kind = 'digest' group by all"
        ).fetchall()}
        for (channel, owner), items in sorted(groups.items()):
            previous = last.get((channel, owner))
            if previous is not None and now - previous < interval:
                continue
            item_ids = [r[0] for r in items]
            digest_id = _key("digest", channel, owner, *item_ids)
            payloads = [json.loads(r[6]) for r in items]
            severity = max((r[3] or "medium" for r in items), key=lambda s: _SEVERITY_RANK.get(s, 1))
            payload = {"items": payloads[:max_items], "total_items": len(payloads)}
            exception_ids = sorted({x for r in items for x in json.loads(r[4])})
            event_ids = [x for r in items for x in json.loads(r[5])]
            con.execute(
                f"insert into {OUTBOX_TABLE} values (?, ?, ?, 'digest', 'pending', ?, ?, ?, ?, null, 0, ?, null, ?, "
                "null) on conflict do nothing",
                [digest_id, channel, owner, severity, json.dumps(exception_ids), json.dumps(event_ids),
                 json.dumps(payload), now, now])
            con.execute(f"update {OUTBOX_TABLE} set status = 'digested', digest_id = ? "
                        "where message_id in (select unnest(?::varchar[]))", [digest_id, item_ids])
            created += 1
        con.commit()
    except Exception:
        con.rollback()
        raise
    return created


def _backoff(config: ReconConfig, attempts: int) -> dt.timedelta:
    retry = config.notifications.retry
    seconds = min(retry.max_backoff_seconds, retry.backoff_seconds * (2 ** max(attempts - 1, 0)))
    return dt.timedelta(seconds=seconds)


# Consecutive failed sends after which a flush treats a channel as down even when each error looked
# like the message's own (an HTTP 500 for every request): the rest wait for the next flush.
CHANNEL_DOWN_AFTER = 3


def flush(con: duckdb.DuckDBPyConnection, config: ReconConfig, now: dt.datetime,
          senders: Mapping[str, Sender] | None = None, env: Mapping[str, str] | None = None,
          log: Any = None) -> FlushStats:
    """Build due digests, then send every pending message whose ``next_attempt_at`` has come.

    ``now`` is the wall clock: the outbox is queued and flushed on it (see docs/exceptions.md).
    Each message's outcome is committed right after its attempt. A message that fails is retried
    later with backoff and does not hold back the others of its channel; only a failure of the
    channel itself (unreachable, timeout, 429, 502/503/504, or ``CHANNEL_DOWN_AFTER`` failures in
    a row) stops this flush from sending to that channel. A message whose enabled channel has an
    environment variable unset stays pending, its attempts untouched, with an error naming the
    channel and the variable, and goes out on the first flush after the variable is set.

    Args:
        con: an open DuckDB connection (not inside a transaction).
        config: the project config.
        now: the clock (naive UTC wall-clock time).
        senders: channel name -> sender; default: built from the config and the environment.
        env: environment for building senders and naming unset variables (default os.environ).
        log: optional logger (``.info``/``.warning``); messages never contain secrets.

    Returns:
        What the flush did: digests built, sent, failed (of which dead and missing_secret), deferred,
        still pending, and one error line per failure.
    """
    stats = FlushStats()
    stats.digests = build_digests(con, config, now)
    env = os.environ if env is None else env
    senders = build_senders(config, env) if senders is None else senders
    secrets = tuple(s for sender in senders.values() for s in getattr(sender, "secrets", ()))
    max_attempts = config.notifications.retry.max_attempts
    due = con.execute(
        f"select message_id, channel, owner, kind, attempts, payload from {OUTBOX_TABLE} "
        "where status = 'pending' and next_attempt_at <= ? order by created_at, message_id", [now]).fetchall()
    down: set[str] = set()
    in_a_row: dict[str, int] = {}
    unset: dict[str, list[str]] = {}
    waiting: dict[str, list[str]] = {}
    for message_id, channel, owner, kind, attempts, payload in due:
        sender = senders.get(channel)
        if sender is None:
            if channel not in unset:
                spec = config.notifications.channels.get(channel)
                unset[channel] = missing_env(spec, env) if spec is not None and spec.enabled else []
            if unset[channel]:
                waiting.setdefault(channel, []).append(message_id)
            else:
                stats.deferred += 1
            continue
        if channel in down:
            stats.deferred += 1
            continue
        body = json.loads(payload)
        message = {"message_id": message_id, "channel": channel, "owner": owner,
                   "kind": "digest" if kind == "digest" else "immediate",
                   "items": body["items"] if kind == "digest" else [body],
                   "total_items": body.get("total_items", 1) if kind == "digest" else 1}
        try:
            sender.send(message)
        except DeliveryError as exc:
            error = redact(str(exc), secrets)
            attempts += 1
            wait = dt.timedelta(seconds=exc.retry_after) if exc.retry_after else _backoff(config, attempts)
            status = "dead" if attempts >= max_attempts else "pending"
            con.execute(f"update {OUTBOX_TABLE} set attempts = ?, status = ?, next_attempt_at = ?, last_error = ? "
                        "where message_id = ?", [attempts, status, now + wait, error, message_id])
            in_a_row[channel] = in_a_row.get(channel, 0) + 1
            if exc.channel_down or in_a_row[channel] >= CHANNEL_DOWN_AFTER:
                down.add(channel)
            stats.failed += 1
            stats.dead += int(status == "dead")
            stats.errors.append(f"{channel}: {error}")
            if log is not None:
                log.warning(f"notification {message_id} to channel '{channel}' failed (attempt {attempts}): "
                            f"{error}; {'gave up' if status == 'dead' else f'retry after {now + wait}'}")
            continue
        in_a_row[channel] = 0
        con.execute(f"update {OUTBOX_TABLE} set attempts = attempts + 1, status = 'sent', sent_at = ?, "
                    "last_error = null where message_id = ?", [now, message_id])
        stats.sent += 1
    for channel, message_ids in sorted(waiting.items()):
        names = unset[channel]
        error = (f"channel '{channel}': environment variable {names[0]} is not set" if len(names) == 1 else
                 f"channel '{channel}': environment variables {', '.join(names)} are not set")
        # Not an attempt (nothing reached the channel): attempts and next_attempt_at stay, so the
        # messages go out on the first flush after the variable is set, and are never dead-lettered for it.
        con.execute(f"update {OUTBOX_TABLE} set last_error = ? where message_id in (select unnest(?::varchar[]))",
                    [error, message_ids])
        stats.failed += len(message_ids)
        stats.missing_secret += len(message_ids)
        stats.errors.append(f"{error}; {len(message_ids)} message(s) wait until it is")
        if log is not None:
            log.warning(f"{error}: {len(message_ids)} notification(s) not sent; they are kept and go out "
                        "once it is set")
    stats.pending = con.execute(
        f"select count(*) from {OUTBOX_TABLE} where status in ('pending', 'queued')").fetchall()[0][0]
    return stats


def outbox_summary(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Messages per status (for asset metadata and the CLI)."""
    ensure_outbox(con)
    return {status: n for status, n in con.execute(
        f"select status, count(*) from {OUTBOX_TABLE} group by status order by status").fetchall()}
