"""What each channel's message says: every field a person acts on, rendered per channel, and as delivered.

The render tests build items by hand (a JPY amount, a past-due item, a configured timeline link, a
reason with markup); the delivery test sends through real loopback Slack/webhook HTTP and SMTP servers
(the fixtures of test_notifications) and reads what arrived, then headless Chromium renders the
email's HTML to a PNG. ``RECON_UPDATE_SCREENSHOTS=1`` copies that PNG to
docs/images/notification-email.png (the one docs/exceptions.md shows).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest
import test_notifications as notifications_test
from test_notifications import D1, NIGHT, ROLES, SLACK_SECRET, diff

from dagster_project.exceptions.store import sync_exceptions
from dagster_project.notifications import flush, render

# Fixtures shared with test_notifications: a real HTTP server, a real SMTP server, the config, a connection.
http, smtp, cfg, con = notifications_test.http, notifications_test.smtp, notifications_test.cfg, notifications_test.con

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EXCEPTION_ID = "9f3c2a71b0de44c1aa0e"
LINK = "https://recon.example.com/orders/SO-77"


def item(**kw) -> dict:
    """One queued item as the outbox stores it (a JPY order two days past due)."""
    return {
        "event_id": "ev1", "event_type": "escalated", "reason": "past due: <b>no invoice</b> after 48 h",
        "actor": "system", "exception_id": EXCEPTION_ID, "short_id": EXCEPTION_ID[:10], "status": "open",
        "order_id": "SO-77", "customer_id": "CUS-9", "diff_type": "missing_invoice", "system": "erp",
        "severity": "high", "amount_at_risk": "125000.0000", "currency": "JPY", "owner": "revenue-ops-lead",
        "due_at": "2026-10-02T04:00:00Z", "as_of_date": "2026-10-03", "overdue": True,
        "expected_value": "posted invoice", "actual_value": "none",
        "diffs": [{"system": "erp", "diff_type": "missing_invoice", "expected": "posted invoice", "actual": "none",
                   "amount_at_risk": "125000.0000"},
                  {"system": "wms", "diff_type": "missing_fulfillment", "expected": "shipped", "actual": "none",
                   "amount_at_risk": "125000.0000"}],
        "command": f"recon exceptions show {EXCEPTION_ID[:10]}", "link": None, **kw,
    }


def message(*items: dict, kind: str = "immediate", total: int | None = None) -> dict:
    return {"message_id": "m1", "channel": "c", "owner": items[0]["owner"], "kind": kind, "items": list(items),
            "total_items": total or len(items)}


FIELDS = {
    "Order": "SO-77", "Diff": "Missing invoice (erp)", "Amount at risk": "JPY 125,000",
    "Due": "2026-10-02 04:00 UTC (past due as of 2026-10-03)", "Owner": "revenue-ops-lead", "Severity": "high",
    "Customer": "CUS-9", "As of": "2026-10-03",
}


class Cells(HTMLParser):
    """The text of each ``data-field`` cell, every link and every ``code`` element of an HTML body."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.links: list[str] = []
        self.code: list[str] = []
        self._field: str | None = None
        self._in_code = False
        self.text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._field = a.get("data-field", self._field)
        if self._field:
            self.fields[self._field] = ""
        self._in_code = tag == "code"
        if tag == "a":
            self.links.append(a["href"])

    def handle_endtag(self, tag):
        self._field = None if tag == "td" else self._field
        self._in_code = self._in_code and tag != "code"

    def handle_data(self, data):
        self.text += data
        if self._field:
            self.fields[self._field] += data
        if self._in_code:
            self.code.append(data)


def test_slack_is_block_kit_with_every_field_and_the_next_step():
    payload = render.slack_payload(message(item()))
    section, context = payload["blocks"]
    assert section["type"] == "section" and context["type"] == "context"
    fields = dict(f["text"].removeprefix("*").split("*\n", 1) for f in section["fields"])
    assert fields == FIELDS
    assert section["text"]["text"].startswith("*Exception escalated: Missing invoice on order SO-77*\n"
                                              "_past due: &lt;b&gt;no invoice&lt;/b&gt; after 48 h_")  # shown, not parsed
    assert "• Missing fulfillment (wms): expected shipped, actual none" in section["text"]["text"]
    assert "accessory" not in section  # no timeline_url: the command is the next step
    assert context["elements"][0]["text"] == "Next: run `recon exceptions show 9f3c2a71b0`"
    assert payload["text"] == ("[recon] high: Exception escalated: Missing invoice on order SO-77 (erp), "
                               "JPY 125,000 at risk")
    linked = render.slack_payload(message(item(link=LINK)))["blocks"]
    assert linked[0]["accessory"] == {"type": "button", "text": {"type": "plain_text", "text": "Open timeline"},
                                      "url": LINK}
    assert linked[1]["elements"][0]["text"] == f"<{LINK}|Open the timeline> · or run `recon exceptions show 9f3c2a71b0`"


def test_email_html_and_text_carry_every_field_and_escape_the_reason():
    cells = Cells()
    cells.feed(render.html_body(message(item(link=LINK))))
    assert cells.fields == FIELDS
    assert cells.links == [LINK] and cells.code == ["recon exceptions show 9f3c2a71b0"]
    assert "past due: <b>no invoice</b> after 48 h" in cells.text  # shown as text, not as markup
    assert "Missing fulfillment" in cells.text and "shipped" in cells.text
    text = render.text_body(message(item()))
    for name, value in FIELDS.items():
        assert f"  {name + ':':<15} {value}\n" in text
    assert "  - Missing fulfillment (wms): expected shipped, actual none; JPY 125,000 at risk\n" in text
    assert text.rstrip().endswith("Next: recon exceptions show 9f3c2a71b0") and "Timeline:" not in text
    assert f"  Timeline: {LINK}\n" in render.text_body(message(item(link=LINK)))


def test_webhook_json_is_the_documented_shape():
    body = render.webhook_payload(message(item(link=LINK)))
    assert set(body) == {"schema", "message_id", "kind", "owner", "channel", "subject", "total_items", "items"}
    (got,) = body["items"]
    documented = (ROOT / "docs" / "exceptions.md").read_text()
    undocumented = [k for k in got if f"`{k}`" not in documented.split("### Webhook JSON", 1)[1]]
    assert not undocumented, f"webhook fields missing from docs/exceptions.md#webhook-json: {undocumented}"
    assert {k: got[k] for k in ("order_id", "diff_type", "diff_name", "system", "amount_at_risk", "currency",
                                "amount_display", "due_at", "overdue", "as_of_date", "owner", "short_id",
                                "command", "link")} == {
        "order_id": "SO-77", "diff_type": "missing_invoice", "diff_name": "Missing invoice", "system": "erp",
        "amount_at_risk": "125000.0000", "currency": "JPY", "amount_display": "JPY 125,000",
        "due_at": "2026-10-02T04:00:00Z", "overdue": True, "as_of_date": "2026-10-03",
        "owner": "revenue-ops-lead", "short_id": "9f3c2a71b0", "command": "recon exceptions show 9f3c2a71b0",
        "link": LINK}
    assert got["diffs"][1] == {"system": "wms", "diff_type": "missing_fulfillment",
                               "diff_name": "Missing fulfillment", "expected": "shipped", "actual": "none",
                               "amount_at_risk": "125000.0000"}


def test_a_digest_and_an_item_queued_by_the_last_release_render_too():
    old = item(link=None, timeline=LINK, due_at="2026-10-02 04:00", overdue=False)
    for key in ("short_id", "command", "link", "as_of_date"):
        old.pop(key)
    digest = message(old, item(order_id="SO-78", currency=None), kind="digest", total=5)
    payload = render.slack_payload(digest)
    assert payload["blocks"][0]["text"]["text"] == "5 exception update(s) for revenue-ops-lead"
    assert payload["blocks"][-1]["elements"][0]["text"] == (
        "... and 3 more: recon exceptions list --owner revenue-ops-lead")
    old_fields = dict(f["text"].removeprefix("*").split("*\n", 1) for f in payload["blocks"][1]["fields"])
    assert old_fields["Due"] == "2026-10-02 04:00 UTC" and old_fields["As of"] == "-"
    assert payload["blocks"][1]["accessory"]["url"] == LINK
    assert "recon exceptions show 9f3c2a71b0" in payload["blocks"][2]["elements"][0]["text"]
    unknown = dict(f["text"].removeprefix("*").split("*\n", 1) for f in payload["blocks"][3]["fields"])
    assert unknown["Amount at risk"] == "125,000.00"  # no currency: no code, two decimals
    html = render.html_body(digest)
    assert "5 exception update(s) for revenue-ops-lead" in html and "and 3 more" in html


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_the_delivered_messages_carry_every_field_and_the_email_renders_in_chromium(con, cfg, http, smtp, tmp_path):
    linked = cfg.model_copy(update={"notifications": cfg.notifications.model_copy(
        update={"timeline_url": "https://recon.example.com/exceptions/{exception_id}"})})
    sync_exceptions(con, D1, [diff("SO-1", severity="critical", amount=5000),
                              diff("SO-1", "missing_fulfillment", "wms", "fulfillments", "low", amount=5000,
                                   expected_value="shipped")],
                    set(), ROLES, config=linked, now=NIGHT)
    assert flush(con, linked, NIGHT).failed == 0
    (exception_id,) = con.execute("select exception_id from recon.exceptions where severity = 'critical'"
                                  ).fetchall()[0]
    link = f"https://recon.example.com/exceptions/{exception_id}"
    expected = {"Order": "SO-1", "Diff": "Missing invoice (erp)", "Amount at risk": "EUR 5,000.00",
                "Due": "2026-10-02 04:00 UTC", "Owner": "revenue-ops", "Severity": "critical",
                "Customer": "CUS-SO-1", "As of": "2026-10-01"}
    (slack,) = [p["json"] for p in http.on(f"/slack/{SLACK_SECRET}") if "critical" in p["json"]["text"]]
    assert dict(f["text"].removeprefix("*").split("*\n", 1) for f in slack["blocks"][0]["fields"]) == expected
    assert slack["blocks"][0]["accessory"]["url"] == link
    (hook,) = [p["json"] for p in http.on("/hook") if p["json"]["kind"] == "immediate"]
    assert (hook["items"][0]["link"], hook["items"][0]["command"]) == (link, f"recon exceptions show {exception_id[:10]}")
    assert [d["diff_name"] for d in hook["items"][0]["diffs"]] == ["Missing invoice", "Missing fulfillment"]
    (mail,) = [m for m in smtp.messages if "critical" in m["Subject"]]
    assert mail.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.walk() if not p.is_multipart()}
    cells = Cells()
    cells.feed(parts["text/html"])
    assert cells.fields == expected and cells.links == [link]
    assert "missing_invoice" not in cells.text  # people read the diff's name, never its snake_case type
    assert all(f"{name + ':':<15} {value}" in parts["text/plain"] for name, value in expected.items())
    assert json.dumps(hook).count(SLACK_SECRET) == 0

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium): no PNG of the email")
    from test_report_browser import chromium

    page = tmp_path / "email.html"
    page.write_text(parts["text/html"], encoding="utf-8")
    shot = tmp_path / "notification-email.png"
    chromium(["--window-size=760,560", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri()],
             tmp_path / "profile")
    assert png_size(shot) == (760, 560)
    dom = chromium(["--dump-dom", page.as_uri()], tmp_path / "profile2")
    assert "EUR 5,000.00" in dom and "Open the timeline" in dom
    if os.environ.get("RECON_UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, ROOT / "docs" / "images" / "notification-email.png")


def test_a_failed_run_says_which_job_and_what_to_run():
    from dagster_project.defs.reporting.sensors import failure_item

    alert = message(failure_item("abcdef123456", "nightly_reconciliation", "2026-10-05", "dbt failed",
                                 "data-engineering"))
    slack = render.slack_payload(alert)
    assert slack["text"] == "[recon] critical: Run failed: nightly_reconciliation"
    assert dict(f["text"].removeprefix("*").split("*\n", 1) for f in slack["blocks"][0]["fields"]) == {
        "Job": "nightly_reconciliation", "Owner": "data-engineering", "Severity": "critical"}
    assert "run abcdef123456 of nightly_reconciliation failed for 2026-10-05: dbt failed" in slack["blocks"][0][
        "text"]["text"]
    assert slack["blocks"][1]["elements"][0]["text"] == "Next: run `recon run --date 2026-10-05`"
    assert render.webhook_payload(alert)["items"][0]["command"] == "recon run --date 2026-10-05"
    assert "Next: recon run --date 2026-10-05" in render.text_body(alert)
