"""Notification faults against real loopback servers: the nightly's own clock, retries, hangs, poison messages.

- A critical exception opened by the nightly run goes out in that same run (the exceptions step and
  the notification step agree on the clock), for an as-of day that ended hours before the run.
- A retried delivery carries the same ``Idempotency-Key``, also when the receiver took the first
  request and answered only after our timeout, so the receiver can drop the repeat.
- One message a channel refuses does not hold back the others of that channel.
- The run's summary says how many messages failed.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
import test_notifications as notifications_test
from test_notifications import D1, NIGHT, ROLES, SLACK_SECRET, a_bad_night, diff

from dagster_project.config.exceptions import WebhookChannel
from dagster_project.defs.exceptions import assets as exception_assets
from dagster_project.defs.exceptions import sensors
from dagster_project.exceptions import store as exceptions_store
from dagster_project.lib.database import connect
from dagster_project.notifications import flush, outbox_summary
from dagster_project.reports.run_summary import build_summary, render_summary
from dagster_project.resources.duckdb_resource import DuckDBResource
from dagster_project.runs.runner import notification_note

# Fixtures shared with test_notifications: a real HTTP server, a real SMTP server, the config, a connection.
http, smtp, cfg, con = notifications_test.http, notifications_test.smtp, notifications_test.cfg, notifications_test.con

_DIFF_COLUMNS = ("order_id", "customer_id", "diff_type", "system", "role", "severity", "owner", "amount_at_risk",
                 "currency", "expected_value", "actual_value", "systems_involved", "rule", "reproduce_sql",
                 "reproduce_command", "first_seen_date")


def write_marts(path, as_of: dt.date, diffs: list[dict]) -> None:
    """The two marts the exceptions step reads, as real tables (what dbt would have built for the day)."""
    con = connect(path)
    con.execute("create schema if not exists marts")
    con.execute("create table marts.fct_order_diffs (diff_id varchar, as_of_date date, order_id varchar, "
                "customer_id varchar, diff_type varchar, system varchar, role varchar, severity varchar, "
                "owner varchar, amount_at_risk decimal(20, 4), currency varchar, expected_value varchar, "
                "actual_value varchar, systems_involved varchar, rule varchar, reproduce_sql varchar, "
                "reproduce_command varchar, first_seen_date date)")
    con.executemany(f"insert into marts.fct_order_diffs values ({', '.join('?' * 18)})",
                    [[f"d{i}", as_of, *(d[c] for c in _DIFF_COLUMNS)] for i, d in enumerate(diffs)])
    con.execute("create table marts.fct_system_freshness (system varchar, as_of_date date, is_stale boolean, role varchar, "
                "health_reason varchar, landed_rows bigint, visible_rows bigint, last_seen_at timestamp)")
    con.close()


def nightly_steps(cfg) -> list[dg.AssetsDefinition]:
    """The nightly job's exceptions step and its notification step, as Dagster runs them."""
    return [*exception_assets.build_defs(cfg).assets, *sensors.build_defs(cfg).assets]


def test_a_critical_exception_opened_by_the_nightly_goes_out_in_that_run(cfg, http, smtp, monkeypatch):
    write_marts(cfg.duckdb_path, D1, a_bad_night())
    # The run for D1 starts at 02:00 the next morning: the exceptions step queues on its clock, the
    # notification step runs three minutes later. (Before, it flushed at the end of D1, before the queueing.)
    monkeypatch.setattr(exceptions_store, "_now", lambda: NIGHT)
    monkeypatch.setattr(sensors, "_now", lambda: NIGHT + dt.timedelta(minutes=3))
    resources = {"duckdb": DuckDBResource(database=str(cfg.duckdb_path))}
    result = dg.materialize(nightly_steps(cfg), partition_key=D1.isoformat(), resources=resources)
    assert result.success
    critical = [p for p in http.on(f"/slack/{SLACK_SECRET}") if "critical" in p["json"]["text"]]
    assert len(critical) == 1 and "SO-1" in critical[0]["json"]["text"]
    assert len([p for p in http.on("/hook") if p["json"]["kind"] == "immediate"]) == 1
    assert any(m["Subject"].startswith("[recon] critical:") for m in smtp.messages)
    con = connect(cfg.duckdb_path)
    assert outbox_summary(con) == {"digested": 15, "sent": 9}  # the digests went in the same run too
    assert con.execute("select count(*) from recon.notification_outbox where kind = 'immediate' "
                       "and sent_at = ?", [NIGHT + dt.timedelta(minutes=3)]).fetchall() == [(3,)]
    con.close()
    assert notification_note(result) == ""
    # the run is retried: nothing is queued or sent twice
    assert dg.materialize(nightly_steps(cfg), partition_key=D1.isoformat(), resources=resources).success
    assert len(http.posts) == 6 and len(smtp.messages) == 3


def test_a_retried_delivery_carries_the_same_idempotency_key(con, cfg, http, smtp):
    exceptions_store.sync_exceptions(con, D1, [diff("SO-1", severity="critical", amount=5000)], set(), ROLES,
                                     config=cfg, now=NIGHT)
    http.fail_with = [(503, {}), (503, {})]  # slack, then the webhook: unavailable once
    assert flush(con, cfg, NIGHT).failed == 2
    assert flush(con, cfg, NIGHT + dt.timedelta(minutes=1)).sent == 2
    for path in (f"/slack/{SLACK_SECRET}", "/hook"):
        tries = [r["headers"] for r in http.requests if r["path"] == path]
        assert len(tries) == 2
        assert tries[0]["Idempotency-Key"] == tries[1]["Idempotency-Key"] == tries[0]["X-Recon-Message-Id"]
    assert len({r["headers"]["Idempotency-Key"] for r in http.requests}) == 2  # one key per channel's message


def test_a_receiver_that_answers_after_the_timeout_can_drop_the_repeat(con, cfg, http, smtp):
    channels = {"ticketing": WebhookChannel(type="webhook", token_env="RECON_WEBHOOK_TOKEN", timeout_seconds=0.2)}
    cfg = cfg.model_copy(update={"notifications": cfg.notifications.model_copy(update={"channels": channels})})
    exceptions_store.sync_exceptions(con, D1, [diff("SO-1", severity="critical", amount=5000)], set(), ROLES,
                                     config=cfg, now=NIGHT)
    http.hang_seconds = [1.0]  # takes the post, answers after our timeout
    first = flush(con, cfg, NIGHT)
    assert (first.sent, first.failed) == (0, 1) and "connection failed" in first.errors[0]
    assert flush(con, cfg, NIGHT + dt.timedelta(minutes=1)).sent == 1
    posts = http.on("/hook")
    assert len(posts) == 2  # at least once: the receiver saw it twice ...
    assert len({p["headers"]["Idempotency-Key"] for p in posts}) == 1  # ... under one key, so it keeps one


def critical_night() -> list[dict]:
    return [diff(f"SO-{i}", severity="critical", amount=1000 + i) for i in range(1, 6)]


def test_one_refused_message_does_not_hold_back_its_channel(con, cfg, http, smtp):
    exceptions_store.sync_exceptions(con, D1, critical_night(), set(), ROLES, config=cfg, now=NIGHT)
    # the ticketing system refuses the message about SO-2 (HTTP 422); every other message is fine
    http.reject = lambda body: 422 if any(i.get("order_id") == "SO-2" for i in body.get("items", [])) else None
    night = flush(con, cfg, NIGHT)
    assert (night.sent, night.failed, night.deferred) == (14, 1, 0)
    assert night.errors == ["ticketing: HTTP 422"]
    assert sorted(p["json"]["items"][0]["order_id"] for p in http.on("/hook")) == ["SO-1", "SO-3", "SO-4", "SO-5"]
    summary = build_summary(con, cfg, D1)
    assert (summary.notifications_failing, summary.notifications.get("sent")) == (1, 14)
    text = render_summary(summary, cfg)
    assert "Notifications: sent 14, failing 1" in text and "ticketing: HTTP 422 (1 message(s))" in text


def test_a_refused_recipient_does_not_hold_back_the_other_mail(con, cfg, http, smtp):
    night = [diff("SO-1", severity="critical"), diff("SO-2", severity="critical"),
             diff("SO-5", "missing_payment", "psp", "payments", "critical"),
             diff("SO-6", "missing_payment", "psp", "payments", "critical")]
    exceptions_store.sync_exceptions(con, D1, night, set(), ROLES, config=cfg, now=NIGHT)
    smtp.refuse = {"rev@test.local"}  # revenue-ops' mailbox is refused; payments-ops' mail goes to ops@
    stats = flush(con, cfg, NIGHT)
    assert (stats.sent, stats.failed, stats.deferred) == (10, 2, 0)  # slack 4, webhook 4, email 2
    assert sorted(e.split(": ")[0] for e in stats.errors) == ["email", "email"]
    assert "smtp refused the message" in stats.errors[0]
    assert sorted(m["To"] for m in smtp.messages) == ["ops@test.local", "ops@test.local"]


def test_a_channel_failing_every_message_is_left_after_three(con, cfg, http, smtp):
    exceptions_store.sync_exceptions(con, D1, critical_night(), set(), ROLES, config=cfg, now=NIGHT)
    http.reject = lambda body: 500 if "blocks" not in body else None  # the webhook answers 500 to everything
    night = flush(con, cfg, NIGHT)
    assert (night.sent, night.failed, night.deferred) == (10, 3, 2)  # slack 5 + email 5; webhook 3 tried
    assert len([r for r in http.requests if r["path"] == "/hook"]) == 3
    http.reject = None
    assert flush(con, cfg, NIGHT + dt.timedelta(hours=1)).sent == 5
    assert len(http.on("/hook")) == 5


@pytest.mark.parametrize("unset", [False, True])
def test_the_run_line_says_how_many_notifications_failed(cfg, http, smtp, monkeypatch, unset):
    con = connect(cfg.duckdb_path)
    exceptions_store.sync_exceptions(con, D1, critical_night()[:2], set(), ROLES, config=cfg, now=NIGHT)
    con.close()
    if unset:
        monkeypatch.delenv("RECON_SLACK_WEBHOOK_URL")
    else:
        http.fail_with = [(500, {}), (500, {})]  # the first two HTTP posts, whichever channel
    monkeypatch.setattr(sensors, "_now", lambda: NIGHT + dt.timedelta(minutes=3))
    resources = {"duckdb": DuckDBResource(database=str(cfg.duckdb_path))}
    result = dg.materialize(nightly_steps(cfg)[1:], partition_key=D1.isoformat(), resources=resources)
    assert result.success
    note = notification_note(result)
    assert note.startswith("  2 notification(s) failed: ")
    assert ("RECON_SLACK_WEBHOOK_URL is not set" in note) == unset


def test_the_notification_step_never_reads_a_clock_behind_the_exceptions_step():
    # A message the exceptions step queued a moment ago is due when the notification step flushes: its
    # clock is the same wall clock at the same precision (it once dropped the microseconds, so a message
    # queued in the same second waited for the outbox sensor).
    queued = exceptions_store._now()
    assert sensors._now() >= queued
