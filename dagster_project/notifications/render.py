"""What a notification says, per channel: Slack Block Kit, email (HTML + plain text), webhook JSON.

Every item says what a person needs to act without opening anything else: the order, the diff by
its human name and system, the amount at risk formatted for its currency, the due time (the SLA runs
from the end of the as-of day, so "past due" is judged against that day, not the wall clock), the
owner, and the next step: ``recon exceptions show <short id>``, or a link to the timeline when
``notifications.timeline_url`` is configured. A message is one item (``immediate``) or a digest of
one owner's items. The webhook's JSON shape is documented in docs/exceptions.md#webhook-json.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2

from dagster_project.exceptions.read import SHORT_ID
from dagster_project.lib.money import format_money
from ingestion.catalogue import diff_title

_TITLES = {
    "opened": "New exception",
    "reopened": "Exception reopened",
    "escalated": "Exception escalated",
    "reassigned": "Exception handed over",
    "assigned": "Exception assigned",
}
SLACK_MAX_ITEMS = 20  # Slack allows 50 blocks; each item takes two
WEBHOOK_SCHEMA = "recon.notification/v1"
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def _due(value: Any) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.replace(tzinfo=None) if parsed.tzinfo else parsed


def diff_type_name(diff_type: str | None) -> str:
    """The diff type's human name from the catalogue (``missing_invoice`` -> ``Missing invoice``)."""
    return diff_title(diff_type) if diff_type else "-"


def is_run_failure(item: dict[str, Any]) -> bool:
    return item.get("event_type") == "run_failed"


def short_id(item: dict[str, Any]) -> str:
    return str(item.get("short_id") or str(item.get("exception_id") or "")[:SHORT_ID])


def command(item: dict[str, Any]) -> str:
    """What to run for this item: its own command, else ``recon exceptions show <short id>``."""
    return str(item.get("command") or f"recon exceptions show {short_id(item)}")


def link(item: dict[str, Any]) -> str | None:
    """The timeline URL (only when ``notifications.timeline_url`` is configured)."""
    url = item.get("link")
    if url is None and str(item.get("timeline") or "").startswith(("https://", "http://")):
        url = item["timeline"]  # queued by a release that kept the link in ``timeline``
    return url or None


def amount(item: dict[str, Any]) -> str:
    """``EUR 5,000.00``: the currency's own decimals; no code when the currency is unknown."""
    return format_money(item.get("amount_at_risk") or 0, item.get("currency"))


def due(item: dict[str, Any]) -> str:
    """``2026-10-02 04:00 UTC``, with ``(past due as of 2026-10-03)`` when it was due by the end of its as-of day."""
    when = _due(item.get("due_at"))
    if when is None:
        return "-"
    text = f"{when:%Y-%m-%d %H:%M} UTC"
    if item.get("overdue"):
        text += f" (past due as of {item.get('as_of_date')})"
    return text


def diff_label(item: dict[str, Any]) -> str:
    """``Missing invoice (erp)``."""
    return f"{diff_type_name(item.get('diff_type'))} ({item.get('system')})"


def reason(item: dict[str, Any]) -> str | None:
    """Why the event happened; None when it only repeats the title (``missing_invoice found`` of an opened item)."""
    text = item.get("reason")
    return None if not text or text == f"{item.get('diff_type')} found" else str(text)


def item_title(item: dict[str, Any]) -> str:
    if is_run_failure(item):
        return f"Run failed: {item.get('system')}"
    title = _TITLES.get(item.get("event_type", ""), "Exception")
    return f"{title}: {diff_type_name(item.get('diff_type'))} on order {item.get('order_id')}"


def subject(message: dict[str, Any]) -> str:
    items = message["items"]
    if message["kind"] == "digest":
        total = message.get("total_items", len(items))
        return f"[recon] {total} exception update(s) for {message['owner']}"
    item = items[0]
    if is_run_failure(item):
        return f"[recon] critical: {item_title(item)}"
    return f"[recon] {item.get('severity')}: {item_title(item)} ({item.get('system')}), {amount(item)} at risk"


def facts(item: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields every channel shows, in order: (label, text)."""
    if is_run_failure(item):
        return [("Job", str(item.get("system"))), ("Owner", str(item.get("owner"))),
                ("Severity", str(item.get("severity")))]
    return [
        ("Order", str(item.get("order_id"))),
        ("Diff", diff_label(item)),
        ("Amount at risk", amount(item)),
        ("Due", due(item)),
        ("Owner", str(item.get("owner"))),
        ("Severity", str(item.get("severity"))),
        ("Customer", str(item.get("customer_id") or "-")),
        ("As of", str(item.get("as_of_date") or "-")),
    ]


def order_diffs(item: dict[str, Any]) -> list[dict[str, str]]:
    """The order's open diffs across systems, for display (names and money formatted)."""
    return [{"system": str(d.get("system")), "diff": diff_type_name(d.get("diff_type")),
             "expected": str(d.get("expected") if d.get("expected") is not None else "-"),
             "actual": str(d.get("actual") if d.get("actual") is not None else "-"),
             "amount": format_money(d.get("amount_at_risk") or 0, item.get("currency"))}
            for d in item.get("diffs") or []]


def _more(message: dict[str, Any], shown: int) -> str | None:
    more = message.get("total_items", len(message["items"])) - shown
    return f"... and {more} more: recon exceptions list --owner {message['owner']}" if more > 0 else None


def _view(message: dict[str, Any]) -> dict[str, Any]:
    """What the email templates show."""
    items = [{"title": item_title(i), "reason": reason(i), "facts": facts(i), "diffs": order_diffs(i),
              "command": command(i), "link": link(i), "exception_id": i.get("exception_id"),
              "severity": str(i.get("severity")), "overdue": bool(i.get("overdue"))}
             for i in message["items"]]
    heading = (subject(message).removeprefix("[recon] ") if message["kind"] == "digest"
               else items[0]["title"])
    return {"heading": heading, "items": items, "more": _more(message, len(items)), "owner": message["owner"]}


def text_body(message: dict[str, Any]) -> str:
    """Plain-text body (the email's text/plain alternative)."""
    return _TEMPLATES.get_template("email.txt.j2").render(**_view(message)).rstrip() + "\n"


def html_body(message: dict[str, Any]) -> str:
    """HTML body (the email's text/html alternative): inline styles only, as mail clients need."""
    return _TEMPLATES.get_template("email.html.j2").render(**_view(message))


def _mrkdwn(text: Any) -> str:
    """Source text as Slack shows it literally: ``&``, ``<`` and ``>`` escaped (``<...>`` would be a link)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_action(item: dict[str, Any]) -> str:
    url = link(item)
    run = f"`{_mrkdwn(command(item))}`"
    return f"<{url}|Open the timeline> · or run {run}" if url else f"Next: run {run}"


def slack_payload(message: dict[str, Any]) -> dict[str, Any]:
    """Block Kit for an incoming webhook: per item a section (title, reason, the order's diffs; fields) and a context."""
    blocks: list[dict[str, Any]] = []
    items = message["items"]
    if message["kind"] == "digest":
        blocks.append({"type": "header", "text": {"type": "plain_text",
                                                  "text": subject(message).removeprefix("[recon] ")[:150]}})
    for item in items[:SLACK_MAX_ITEMS]:
        text = f"*{_mrkdwn(item_title(item))}*" + (f"\n_{_mrkdwn(reason(item))}_" if reason(item) else "")
        for d in order_diffs(item):
            text += _mrkdwn(f"\n• {d['diff']} ({d['system']}): expected {d['expected']}, actual {d['actual']}")
        section: dict[str, Any] = {
            "type": "section", "text": {"type": "mrkdwn", "text": text[:3000]},
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_mrkdwn(v)}"[:2000]} for k, v in facts(item)][:10]}
        if link(item):
            section["accessory"] = {"type": "button", "text": {"type": "plain_text", "text": "Open timeline"},
                                    "url": link(item)}
        blocks.append(section)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_action(item)}]})
    more = _more(message, min(len(items), SLACK_MAX_ITEMS))
    if more:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return {"text": subject(message), "blocks": blocks}


def webhook_item(item: dict[str, Any]) -> dict[str, Any]:
    """One item of the webhook JSON (docs/exceptions.md#webhook-json): raw values and their display text."""
    when = _due(item.get("due_at"))
    return {
        "event_id": item.get("event_id"), "event_type": item.get("event_type"), "reason": item.get("reason"),
        "actor": item.get("actor"), "exception_id": item.get("exception_id"), "short_id": short_id(item),
        "status": item.get("status"), "severity": item.get("severity"), "order_id": item.get("order_id"),
        "customer_id": item.get("customer_id"), "system": item.get("system"), "diff_type": item.get("diff_type"),
        "diff_name": diff_type_name(item.get("diff_type")),
        "amount_at_risk": None if item.get("amount_at_risk") is None else str(item["amount_at_risk"]),
        "currency": item.get("currency"), "amount_display": amount(item),
        "due_at": f"{when:%Y-%m-%dT%H:%M:%S}Z" if when else None, "overdue": bool(item.get("overdue")),
        "as_of_date": item.get("as_of_date"), "owner": item.get("owner"),
        "command": command(item), "link": link(item),
        "diffs": [{"system": d.get("system"), "diff_type": d.get("diff_type"),
                   "diff_name": diff_type_name(d.get("diff_type")), "expected": d.get("expected"),
                   "actual": d.get("actual"),
                   "amount_at_risk": None if d.get("amount_at_risk") is None else str(d["amount_at_risk"])}
                  for d in item.get("diffs") or []],
    }


def webhook_payload(message: dict[str, Any]) -> dict[str, Any]:
    """The webhook JSON for ticketing systems (``schema`` names its version)."""
    return {
        "schema": WEBHOOK_SCHEMA,
        "message_id": message["message_id"],
        "kind": message["kind"],
        "owner": message["owner"],
        "channel": message["channel"],
        "subject": subject(message),
        "total_items": message.get("total_items", len(message["items"])),
        "items": [webhook_item(i) for i in message["items"]],
    }
