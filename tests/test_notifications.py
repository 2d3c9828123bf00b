"""Notifications against real local servers: an HTTP server (Slack and webhook posts) and an SMTP server.

Everything listens on 127.0.0.1. The outbox is exercised end to end: critical at once, digests per
owner, retry with backoff, dead letters, secrets kept out of logs, and a channel down for a night.
"""

from __future__ import annotations

import datetime as dt
import email
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from aiosmtpd.controller import Controller

from dagster_project.config.exceptions import (
    DigestConfig,
    EmailChannel,
    NotificationsConfig,
    RetryConfig,
    SlackChannel,
    WebhookChannel,
)
from dagster_project.config.model import ReconConfig
from dagster_project.defs.exceptions import sensors
from dagster_project.exceptions.store import escalate, sync_exceptions
from dagster_project.lib.database import connect
from dagster_project.notifications import build_senders, flush, outbox_summary
from dagster_project.notifications.channels import redact
from dagster_project.resources.duckdb_resource import DuckDBResource

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
NIGHT = dt.datetime(2026, 10, 2, 2, 0)
ROLES = {"orders": ["shop"], "payments": ["psp"], "invoices": ["erp"], "fulfillments": ["wms"]}
SLACK_SECRET = "T000/B000/SECRETslackTOKEN"
WEBHOOK_TOKEN = "tok-SECRET-webhook"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpReceiver:
    """A real HTTP server on 127.0.0.1 that records JSON posts; it can fail, go down and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.posts: list[dict] = []
        self.requests: list[dict] = []  # every request, answered or not (headers and path)
        self.fail_with: list[tuple[int, dict]] = []  # queued error responses
        self.reject: Callable[[dict], int | None] | None = None  # an error status for some bodies
        self.hang_seconds: list[float] = []  # queued: accept a post, then answer only after this long
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers)})
                rejected = receiver.reject(json.loads(body)) if receiver.reject else None
                if rejected:
                    self.send_response(rejected)
                    self.end_headers()
                    return
                if receiver.fail_with:
                    code, headers = receiver.fail_with.pop(0)
                    self.send_response(code)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    return
                receiver.posts.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                if receiver.hang_seconds:  # received, but the answer comes after the client gave up
                    time.sleep(receiver.hang_seconds.pop(0))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def on(self, path: str) -> list[dict]:
        return [p for p in self.posts if p["path"] == path]


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[email.message.Message] = []
        self.refuse: set[str] = set()  # recipients answered with 550
        self.controller: Controller | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd API
        if address in self.refuse:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def http():
    receiver = HttpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp():
    receiver = SmtpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def cfg(demo_config: ReconConfig, http: HttpReceiver, smtp: SmtpReceiver, monkeypatch, tmp_path) -> ReconConfig:
    monkeypatch.setenv("RECON_SLACK_WEBHOOK_URL", f"http://127.0.0.1:{http.port}/slack/{SLACK_SECRET}")
    monkeypatch.setenv("RECON_WEBHOOK_URL", f"http://127.0.0.1:{http.port}/hook")
    monkeypatch.setenv("RECON_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    monkeypatch.setenv("RECON_SMTP_HOST", f"127.0.0.1:{smtp.port}")
    monkeypatch.setenv("RECON_SMTP_PASSWORD", "smtp-SECRET-pw")
    notifications = NotificationsConfig(
        channels={
            "slack": SlackChannel(type="slack", timeout_seconds=2),
            "ticketing": WebhookChannel(type="webhook", token_env="RECON_WEBHOOK_TOKEN", timeout_seconds=2),
            "email": EmailChannel(type="email", sender="recon@test.local", timeout_seconds=2,
                                  recipients={"revenue-ops": ["rev@test.local"]},
                                  default_recipients=["ops@test.local"]),
        },
        digest=DigestConfig(interval_minutes=60),
        retry=RetryConfig(max_attempts=4, backoff_seconds=30, max_backoff_seconds=600),
    )
    # A database file named recon.duckdb makes the catalog "recon" collide with the schema "recon".
    project = demo_config.project.model_copy(update={"duckdb_path": str(tmp_path / "warehouse.duckdb")})
    return demo_config.model_copy(update={"notifications": notifications, "project": project})


@pytest.fixture
def con(cfg):
    connection = connect(cfg.duckdb_path)
    yield connection
    connection.close()


def diff(order_id, diff_type="missing_invoice", system="erp", role="invoices", severity="high", amount=120, **kw):
    return {"order_id": order_id, "customer_id": f"CUS-{order_id}", "diff_type": diff_type, "system": system,
            "role": role, "severity": severity, "owner": "x", "amount_at_risk": amount, "currency": "EUR",
            "expected_value": "posted invoice", "actual_value": "none", "systems_involved": "psp,erp",
            "rule": diff_type, "reproduce_sql": "select 1", "reproduce_command": f"recon order {order_id} --as-of x",
            "first_seen_date": D1, **kw}


def a_bad_night() -> list[dict]:
    """One critical diff, three for revenue-ops, two for payments-ops."""
    return [
        diff("SO-1", severity="critical", amount=5000),
        diff("SO-2"), diff("SO-3"), diff("SO-4"),
        diff("SO-5", "missing_payment", "psp", "payments", "medium"),
        diff("SO-6", "missing_payment", "psp", "payments", "medium"),
    ]


def test_critical_at_once_and_one_digest_per_owner(con, cfg, http, smtp):
    stats = sync_exceptions(con, D1, a_bad_night(), set(), ROLES, config=cfg, now=NIGHT)
    assert stats.notifications > 0
    sent = flush(con, cfg, NIGHT)
    assert sent.failed == 0 and sent.digests == 2 * 3  # (revenue-ops, payments-ops) x 3 channels
    slack = http.on(f"/slack/{SLACK_SECRET}")
    # one critical message + one digest per owner, not six messages
    assert len(slack) == 3
    critical = next(p["json"] for p in slack if "critical" in p["json"]["text"])
    text = json.dumps(critical)
    for needle in ("SO-1", "CUS-SO-1", "EUR 5,000.00", "revenue-ops", "recon exceptions show ", "posted invoice"):
        assert needle in text
    assert {b["type"] for b in critical["blocks"]} == {"section", "context"}
    digests = [p["json"] for p in slack if p["json"]["blocks"][0]["type"] == "header"]
    assert sorted(d["blocks"][0]["text"]["text"] for d in digests) == [
        "2 exception update(s) for payments-ops", "3 exception update(s) for revenue-ops"]
    # a second flush sends nothing more
    assert flush(con, cfg, NIGHT + dt.timedelta(minutes=5)).sent == 0
    assert len(http.on(f"/slack/{SLACK_SECRET}")) == 3


def test_webhook_carries_idempotency_key_token_and_the_context(con, cfg, http, smtp):
    sync_exceptions(con, D1, [diff("SO-1", severity="critical", amount=5000)], set(), ROLES, config=cfg, now=NIGHT)
    flush(con, cfg, NIGHT)
    (post,) = http.on("/hook")
    assert post["headers"]["Authorization"] == f"Bearer {WEBHOOK_TOKEN}"
    assert post["headers"]["Idempotency-Key"] == post["json"]["message_id"]
    assert post["json"]["schema"] == "recon.notification/v1"
    (item,) = post["json"]["items"]
    (exception_id,) = con.execute("select exception_id from recon.exceptions").fetchall()[0]
    assert {k: item[k] for k in ("order_id", "customer_id", "owner", "amount_at_risk", "currency", "amount_display",
                                 "diff_type", "diff_name", "system", "short_id", "command", "link")} == {
        "order_id": "SO-1", "customer_id": "CUS-SO-1", "owner": "revenue-ops", "amount_at_risk": "5000.0000",
        "currency": "EUR", "amount_display": "EUR 5,000.00", "diff_type": "missing_invoice",
        "diff_name": "Missing invoice", "system": "erp", "short_id": exception_id[:10],
        "command": f"recon exceptions show {exception_id[:10]}", "link": None}
    assert (item["due_at"], item["as_of_date"], item["overdue"]) == ("2026-10-02T04:00:00Z", "2026-10-01", False)
    assert item["diffs"] == [{"system": "erp", "diff_type": "missing_invoice", "diff_name": "Missing invoice",
                              "expected": "posted invoice", "actual": "none", "amount_at_risk": "5000.0000"}]


def test_email_is_multipart_text_and_html_to_the_owner(con, cfg, http, smtp):
    sync_exceptions(con, D1, [diff("SO-1", severity="critical", amount=5000), diff("SO-5", "missing_payment",
                                                                                   "psp", "payments")],
                    set(), ROLES, config=cfg, now=NIGHT)
    flush(con, cfg, NIGHT)
    by_to = {m["To"]: m for m in smtp.messages}
    assert set(by_to) == {"rev@test.local", "ops@test.local"}
    mail = by_to["rev@test.local"]
    assert mail["Subject"].startswith("[recon] critical:") and "SO-1" in mail["Subject"]
    assert mail["Message-ID"].startswith("<") and "@recon>" in mail["Message-ID"]
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.walk()
             if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "Customer:       CUS-SO-1" in parts["text/plain"] and "Next: recon exceptions show " in parts["text/plain"]
    assert "<table" in parts["text/html"] and "EUR 5,000.00" in parts["text/html"]


def test_digest_waits_for_its_interval(con, cfg, http, smtp):
    sync_exceptions(con, D1, [diff("SO-2")], set(), ROLES, config=cfg, now=NIGHT)
    assert flush(con, cfg, NIGHT).digests == 3
    sync_exceptions(con, D2, [diff("SO-2"), diff("SO-3")], set(), ROLES, config=cfg, now=NIGHT)
    assert flush(con, cfg, NIGHT + dt.timedelta(minutes=30)).digests == 0  # within the hour: waits
    later = flush(con, cfg, NIGHT + dt.timedelta(minutes=61))
    assert later.digests == 3 and later.sent == 3


def test_failures_back_off_then_deliver_once(con, cfg, http, smtp, caplog):
    sync_exceptions(con, D1, [diff("SO-1", severity="critical", amount=5000)], set(), ROLES, config=cfg, now=NIGHT)
    http.fail_with = [(500, {}), (500, {})]  # slack fails once, then the webhook fails once
    first = flush(con, cfg, NIGHT)
    assert first.failed == 2 and first.sent == 1  # email went through
    rows = con.execute("select channel, attempts, next_attempt_at, last_error from recon.notification_outbox "
                       "where status = 'pending' order by channel").fetchall()
    assert rows == [("slack", 1, NIGHT + dt.timedelta(seconds=30), "HTTP 500"),
                    ("ticketing", 1, NIGHT + dt.timedelta(seconds=30), "HTTP 500")]
    assert flush(con, cfg, NIGHT + dt.timedelta(seconds=10)).sent == 0  # not due yet
    http.fail_with = [(429, {"Retry-After": "120"})]
    second = flush(con, cfg, NIGHT + dt.timedelta(seconds=30))
    assert (second.sent, second.failed) == (1, 1)
    assert con.execute("select next_attempt_at from recon.notification_outbox where status = 'pending'"
                       ).fetchall() == [(NIGHT + dt.timedelta(seconds=150),)]
    assert flush(con, cfg, NIGHT + dt.timedelta(seconds=150)).sent == 1
    assert len(http.posts) == 2 and len(smtp.messages) == 1


def test_gives_up_after_max_attempts_but_keeps_the_message(con, cfg, http, smtp):
    sync_exceptions(con, D1, [diff("SO-1", severity="critical", amount=5000)], set(), ROLES, config=cfg, now=NIGHT)
    http.stop()
    clock = NIGHT
    for _ in range(4):
        flush(con, cfg, clock)
        clock += dt.timedelta(hours=1)
    assert outbox_summary(con) == {"dead": 2, "sent": 1}
    assert con.execute("select max(attempts) from recon.notification_outbox").fetchall() == [(4,)]


def test_secrets_never_appear_in_errors_logs_or_reprs(con, cfg, http, smtp, caplog):
    sync_exceptions(con, D1, [diff("SO-1", severity="critical", amount=5000)], set(), ROLES, config=cfg, now=NIGHT)
    http.stop()
    logger = logging.getLogger("recon-test")
    with caplog.at_level(logging.DEBUG):
        stats = flush(con, cfg, NIGHT, log=logger)
    assert stats.failed == 2
    stored = " ".join(r[0] or "" for r in con.execute("select last_error from recon.notification_outbox").fetchall())
    payloads = " ".join(r[0] for r in con.execute("select payload from recon.notification_outbox").fetchall())
    senders = build_senders(cfg)
    everything = caplog.text + stored + " ".join(stats.errors) + payloads + repr(senders) + repr(cfg)
    for secret in (SLACK_SECRET, WEBHOOK_TOKEN, "smtp-SECRET-pw", "/slack/"):
        assert secret not in everything
    assert redact(f"failed posting to http://h/{SLACK_SECRET}", (f"http://h/{SLACK_SECRET}",)) == "failed posting to ***"


def test_a_channel_whose_variable_is_unset_keeps_its_messages_until_it_is_set(cfg, con, monkeypatch, http, smtp):
    monkeypatch.delenv("RECON_SLACK_WEBHOOK_URL")
    assert sorted(build_senders(cfg)) == ["email", "ticketing"]
    stats = sync_exceptions(con, D1, a_bad_night(), set(), ROLES, config=cfg, now=NIGHT)
    assert stats.opened == 6 and stats.notifications == 6 * 3  # slack's rows are queued too
    night = flush(con, cfg, NIGHT)
    # slack: one critical + two owner digests wait, with an error naming the channel and the variable
    assert (night.failed, night.missing_secret, night.sent) == (3, 3, 6)
    assert night.errors == ["channel 'slack': environment variable RECON_SLACK_WEBHOOK_URL is not set; "
                            "3 message(s) wait until it is"]
    waiting = "select status, attempts, last_error from recon.notification_outbox where channel = 'slack' " \
              "and kind != 'item'"
    assert con.execute(waiting).fetchall() == [
        ("pending", 0, "channel 'slack': environment variable RECON_SLACK_WEBHOOK_URL is not set")] * 3
    # more flushes than retry.max_attempts (4) while it is unset: nothing is dead-lettered for it
    for hours in range(1, 7):
        assert flush(con, cfg, NIGHT + dt.timedelta(hours=hours)).missing_secret == 3
    # the variable is restored and the night is rerun: nothing queued twice, the rerun's flush delivers
    monkeypatch.setenv("RECON_SLACK_WEBHOOK_URL", f"http://127.0.0.1:{http.port}/slack/{SLACK_SECRET}")
    again = sync_exceptions(con, D1, a_bad_night(), set(), ROLES, config=cfg, now=NIGHT + dt.timedelta(hours=7))
    assert again.notifications == 0
    later = flush(con, cfg, NIGHT + dt.timedelta(hours=7))
    assert (later.sent, later.failed, later.missing_secret) == (3, 0, 0)
    assert len(http.on(f"/slack/{SLACK_SECRET}")) == 3 and len(http.on("/hook")) == 3 and len(smtp.messages) == 3
    assert con.execute("select count(*) from recon.notification_outbox where last_error is not null").fetchall() == [
        (0,)]
    assert flush(con, cfg, NIGHT + dt.timedelta(hours=8)).sent == 0


def test_every_variable_unset_sends_nothing_and_says_so(cfg, con, monkeypatch, http, smtp):
    for name in ("RECON_SLACK_WEBHOOK_URL", "RECON_WEBHOOK_URL", "RECON_SMTP_HOST"):
        monkeypatch.delenv(name)
    assert build_senders(cfg) == {}
    stats = sync_exceptions(con, D1, a_bad_night(), set(), ROLES, config=cfg, now=NIGHT)
    assert stats.opened == 6 and stats.notifications == 18
    night = flush(con, cfg, NIGHT)
    assert (night.sent, night.failed, night.missing_secret) == (0, 9, 9)
    assert sorted(e.split(":")[0] for e in night.errors) == ["channel 'email'", "channel 'slack'",
                                                             "channel 'ticketing'"]
    assert "RECON_SMTP_HOST" in " ".join(night.errors) and http.posts == [] and smtp.messages == []


def test_escalation_notifies_the_new_owner_at_once(con, cfg, http, smtp):
    sync_exceptions(con, D1, [diff("SO-2")], set(), ROLES, config=cfg, now=NIGHT)
    flush(con, cfg, NIGHT)
    http.posts.clear()
    stats = escalate(con, cfg, dt.datetime(2026, 10, 3, 0))
    assert stats.steps == 1 and stats.notifications == 3  # slack, ticketing, email (default recipients)
    flush(con, cfg, dt.datetime(2026, 10, 3, 0))
    slack = http.on(f"/slack/{SLACK_SECRET}")
    assert len(slack) == 1 and "Exception escalated" in slack[0]["json"]["text"]
    assert "revenue-ops-lead" in json.dumps(slack[0]["json"])


def outbox_sensor(defs: dg.Definitions) -> dg.SensorDefinition:
    return next(s for s in defs.sensors if s.name == "notification_outbox_sensor")


def test_a_channel_down_for_the_night_delays_but_never_loses_or_doubles(cfg, http, smtp, monkeypatch):
    con = connect(cfg.duckdb_path)
    # every channel is down for the whole night
    http.stop()
    smtp.stop()
    sync_exceptions(con, D1, a_bad_night(), set(), ROLES, config=cfg, now=NIGHT)
    queued = "select count(*) from recon.notification_outbox where kind != 'digest'"
    expected = con.execute(queued).fetchall()[0][0]
    assert expected == 6 * 3
    con.close()
    defs = sensors.build_defs(cfg)
    resources = {"duckdb": DuckDBResource(database=str(cfg.duckdb_path))}
    clock = {"now": NIGHT}
    monkeypatch.setattr(sensors, "_now", lambda: clock["now"])
    asset = next(iter(defs.assets))
    for minutes in (0, 1, 5):  # the nightly asset, then the outbox sensor ticking while the channels are down
        clock["now"] = NIGHT + dt.timedelta(minutes=minutes)
        if minutes == 0:
            assert dg.materialize([asset], partition_key=D1.isoformat(), resources=resources).success
        else:
            with dg.build_sensor_context(resources=resources) as tick:  # its resources open and close per tick
                outbox_sensor(defs)(tick)
    # the night is rerun (a retry of the run): nothing is queued twice
    con = connect(cfg.duckdb_path)
    sync_exceptions(con, D1, a_bad_night(), set(), ROLES, config=cfg, now=NIGHT + dt.timedelta(minutes=10))
    assert con.execute(queued).fetchall()[0][0] == expected
    assert con.execute("select count(*) from recon.notification_outbox where status = 'sent'").fetchall() == [(0,)]
    con.close()
    assert http.posts == [] and smtp.messages == []
    # the channels come back; the sensor keeps ticking until everything is through
    http.start()
    smtp.start()
    sensor = outbox_sensor(defs)
    for minutes in range(10, 10 + 24 * 60, 60):
        clock["now"] = NIGHT + dt.timedelta(minutes=minutes)
        with dg.build_sensor_context(resources=resources) as tick:
            sensor(tick)
    con = connect(cfg.duckdb_path)
    assert outbox_summary(con) == {"digested": 15, "sent": 9}
    con.close()
    # exactly once: 1 critical + 2 owner digests, per channel
    slack = http.on(f"/slack/{SLACK_SECRET}")
    hooks = http.on("/hook")
    assert len(slack) == 3 and len(hooks) == 3 and len(smtp.messages) == 3
    ids = [p["headers"]["X-Recon-Message-Id"] for p in http.posts] + [m["X-Recon-Message-Id"] for m in smtp.messages]
    assert len(ids) == len(set(ids)) == 9
    items = [i["order_id"] for p in hooks for i in p["json"]["items"]]
    assert sorted(items) == ["SO-1", "SO-2", "SO-3", "SO-4", "SO-5", "SO-6"]
